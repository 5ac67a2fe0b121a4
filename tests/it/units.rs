//! The shipped trigger files against the real tools that judge them: `systemd-analyze verify` for
//! the units, `nix-instantiate --parse` for the NixOS module and package, `amtool check-config` for
//! the Alertmanager receiver. Under `CI=true` a missing tool fails the test; elsewhere it skips.
//!
//! What `systemd-analyze verify` (systemd 252) needs without systemd as PID 1: nothing but the
//! files. It exits 1 when an `ExecStart=` binary does not exist (hence the rewrite to the test's
//! own steward binary), but only *warns* and still exits 0 on unknown keys or bad values, so a
//! clean run means exit 0 **and** no output about these units. `--man=no` keeps it from needing
//! man pages for `Documentation=man:` entries; `SYSTEMD_LOG_LEVEL=info` pins the verbosity
//! whatever the caller's environment says. A template cannot be verified as such (it passes
//! vacuously), so the test instantiates each one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::require::tool;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const STEWARD: &str = env!("CARGO_BIN_EXE_steward");
const INSTALLED: &str = "/usr/local/bin/steward";

/// The shipped units, copied to `dir` with `ExecStart=` pointing at the test's binary, and each
/// template also written as the instance a real host would start.
fn stage_units(dir: &Path) -> Vec<PathBuf> {
    let units = Path::new(REPO).join("triggers");
    let instances: &[(&str, &[&str])] = &[
        ("steward.service", &["steward.service"]),
        (
            "steward-check@.service",
            &[
                "steward-check@.service",
                "steward-check@health-check.service",
            ],
        ),
        (
            "steward-check@.timer",
            &["steward-check@.timer", "steward-check@health-check.timer"],
        ),
        (
            "steward-onfailure@.service",
            &[
                "steward-onfailure@.service",
                "steward-onfailure@nginx.service.service",
                "steward-onfailure@mnt-my\\x2ddata.mount.service",
                // A failed template instance: an instance may itself contain `@`.
                "steward-onfailure@worker@3.service.service",
            ],
        ),
    ];
    let mut to_verify = Vec::new();
    for (file, names) in instances {
        let text = std::fs::read_to_string(units.join(file)).unwrap();
        assert!(
            !file.ends_with(".service") || text.contains(&format!("ExecStart={INSTALLED} ")),
            "{file}: ExecStart should run {INSTALLED}"
        );
        let text = text.replace(INSTALLED, STEWARD);
        for name in *names {
            let path = dir.join(name);
            std::fs::write(&path, &text).unwrap();
            if name.contains("@.") {
                continue;
            }
            to_verify.push(path);
        }
    }
    // A unit wired the way operators (and the NixOS module) wire theirs.
    let wired = dir.join("demo-failing.service");
    std::fs::write(
        &wired,
        format!(
            "[Unit]\nDescription=demo\nOnFailure=steward-onfailure@%n.service\n\n\
             [Service]\nType=oneshot\nExecStart={STEWARD} --version\n"
        ),
    )
    .unwrap();
    to_verify.push(wired);
    to_verify
}

fn verify(analyze: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(analyze)
        .arg("verify")
        .arg("--man=no")
        .args(files)
        .env("SYSTEMD_LOG_LEVEL", "info")
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Output lines about our files (a host's own units may have warnings of their own).
fn about_ours<'a>(text: &'a str, dir: &Path) -> Vec<&'a str> {
    let dir = dir.display().to_string();
    text.lines()
        .filter(|l| l.contains(&dir) || l.contains("steward") || l.contains("demo-failing"))
        .collect()
}

#[test]
fn units_verify_clean() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files = stage_units(dir.path());
    let (ok, text) = verify(&analyze, &files);
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    let ours = about_ours(&text, dir.path());
    assert!(ours.is_empty(), "warnings about steward's units:\n{text}");
}

#[test]
fn verify_would_catch_a_bad_unit() {
    // The checks above mean something only if verify reports what they look for.
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("steward-bad-key.service");
    std::fs::write(
        &bad_key,
        format!("[Service]\nExecStart={STEWARD} --version\nProtectSystm=strict\n"),
    )
    .unwrap();
    let (ok, text) = verify(&analyze, std::slice::from_ref(&bad_key));
    assert!(ok, "an unknown key is only a warning: {text}");
    assert!(
        about_ours(&text, dir.path())
            .iter()
            .any(|l| l.contains("ProtectSystm")),
        "{text}"
    );
    let missing = dir.path().join("steward-missing.service");
    std::fs::write(
        &missing,
        "[Service]\nExecStart=/nonexistent/steward trigger timer x\n",
    )
    .unwrap();
    let (ok, text) = verify(&analyze, &[missing]);
    assert!(!ok, "a missing ExecStart binary fails verify: {text}");
}

/// The units' command lines are ones the CLI accepts: each runs (as a dry run, with a captured
/// `systemctl show` for the failure handler) exactly as systemd would start it.
#[test]
fn unit_command_lines_are_accepted_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("anthropic-api-key"), "sk-test-not-real\n").unwrap();
    let show = dir.path().join("show.txt");
    std::fs::write(
        &show,
        "Id=nginx.service\nLoadState=loaded\nResult=exit-code\nExecMainStatus=1\nExecMainCode=1\n",
    )
    .unwrap();
    for (file, instance, extra) in [
        ("steward-check@.service", "health-check", vec![]),
        (
            "steward-onfailure@.service",
            "nginx.service",
            vec![
                "--show-output".to_string(),
                show.display().to_string(),
                "--journal-file".to_string(),
                "/dev/null".to_string(),
            ],
        ),
    ] {
        let text = std::fs::read_to_string(Path::new(REPO).join("triggers").join(file)).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        let argv: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|a| {
                a.replace("%i", instance)
                    .replace("%d", &creds.display().to_string())
            })
            .collect();
        let out = Command::new(STEWARD)
            .args(&argv)
            .args(&extra)
            .args(["--dry-run", "--state-dir"])
            .arg(dir.path().join("state"))
            .current_dir(dir.path())
            .env_remove("STEWARD_CONFIG")
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn nix_files_parse() {
    let Some(nix) = tool("nix-instantiate") else {
        return;
    };
    for file in ["nix/module.nix", "nix/package.nix"] {
        let out = Command::new(&nix)
            .arg("--parse")
            .arg(Path::new(REPO).join(file))
            // Even --parse opens Nix's state directory (creating it): keep it out of /nix.
            .env("HOME", std::env::temp_dir())
            .env(
                "NIX_STATE_DIR",
                std::env::temp_dir().join("steward-nix-state"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} does not parse:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn alertmanager_receiver_is_valid_config() {
    let Some(amtool) = tool("amtool") else {
        return;
    };
    let out = Command::new(amtool)
        .arg("check-config")
        .arg(Path::new(REPO).join("triggers/alertmanager-receiver.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ci_examples_call_steward_ci_with_the_push_range() {
    for file in ["ci/github-actions.yml", "ci/forgejo-actions.yml"] {
        let text = std::fs::read_to_string(Path::new(REPO).join("triggers").join(file)).unwrap();
        assert!(
            text.contains("steward ci --base ${{ github.event.before }} --head ${{ github.sha }}"),
            "{file}"
        );
    }
}
