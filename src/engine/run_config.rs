//! The run's effective configuration, as the run itself holds it (config file, `-c` overrides,
//! `--state-dir`, a daemon's reloaded config), written into the run directory for the processes
//! claude starts for the run: steward's MCP server and the hook reading a `propose_action`'s
//! checks. Reading the config file again in those processes would miss the overrides and see
//! any edit made since the run started; this snapshot cannot drift from what the run uses.
//!
//! It holds the literal secrets of `[redact] secrets` (the server redacts with them), so it is
//! written like every run file: through `ledger::write_atomic`, whose temporary file is created
//! owner-only (0600) and renamed into place, never readable by others even for an instant; and
//! it lives only as long as the run: [`forget`] removes it when the run ends (or when a crashed
//! run is closed), so kept run directories and their backups hold no copy of the secrets.

use std::path::Path;

use crate::base::ledger::{self, LedgerError};
use crate::config::Config;

/// The snapshot's file in the run directory.
pub const RUN_CONFIG_FILE: &str = "steward-config.json";

/// Writes `cfg` as the run's effective configuration.
pub fn write(run_dir: &Path, cfg: &Config) -> Result<(), LedgerError> {
    ledger::write_json(&run_dir.join(RUN_CONFIG_FILE), cfg)
}

/// The run's effective configuration; a run without the file has none (fail closed: the
/// caller refuses rather than guess from the config file).
pub fn read(run_dir: &Path) -> Result<Config, LedgerError> {
    ledger::read_json(&run_dir.join(RUN_CONFIG_FILE))
}

/// Removes the snapshot once nothing of the run reads it any more. A failure is logged: the
/// file stays owner-only, and the run's record is true either way.
pub fn forget(run_dir: &Path) {
    let path = run_dir.join(RUN_CONFIG_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("could not remove {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigArgs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_snapshot_is_the_effective_config_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("steward.toml");
        std::fs::write(
            &file,
            "state_dir = \"state\"\n[redact]\nsecrets = [\"hunter2-secret\"]\n\
             [docker]\nhost = \"unix:///from/file.sock\"\n",
        )
        .unwrap();
        let cfg = Config::load(&ConfigArgs {
            file: Some(file),
            overrides: vec![
                "docker.host=\"unix:///from/override.sock\"".into(),
                "context_dir=\"/over/context\"".into(),
            ],
            state_dir: Some(dir.path().join("flag-state")),
        })
        .unwrap()
        .config;
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        write(&run, &cfg).unwrap();
        let back = read(&run).unwrap();
        // Every value the run holds, overrides and flags included, and nothing else.
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&cfg).unwrap()
        );
        assert_eq!(back.docker.host, "unix:///from/override.sock");
        assert_eq!(
            back.context_dir.as_deref(),
            Some(Path::new("/over/context"))
        );
        assert_eq!(back.state_dir, dir.path().join("flag-state"));
        assert_eq!(back.known_secrets(), cfg.known_secrets());
        let mode = std::fs::metadata(run.join(RUN_CONFIG_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }

    #[test]
    fn no_snapshot_is_an_error_and_forgetting_it_twice_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_err());
        write(dir.path(), &Config::default()).unwrap();
        forget(dir.path());
        assert!(!dir.path().join(RUN_CONFIG_FILE).exists());
        forget(dir.path());
    }
}
