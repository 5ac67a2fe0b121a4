//! The `nixos` profile: `nix flake check` and `nixos-rebuild build --flake DIR#HOST` on the
//! change (the built system's store path is the artefact an approval binds to); the current
//! system generation as the rollback target; `nixos-rebuild test` under an optional dead-man
//! timer to apply, `switch` to finish; rolling back switches to the recorded generation by
//! number. After each activation steward checks that `/run/current-system` is the system it
//! expected, so a record never says a system runs that does not.
//!
//! Not verified against a live NixOS here: the tests check the argv and the parsing of the
//! formats nixpkgs prints (`tests/data/nixos/SOURCES.md`).

use std::path::{Path, PathBuf};

use crate::defs::change::Profile;

use super::super::record::{ChangeFile, ChangeRecord, RollbackTarget, Step, ValidatorSource};
use super::{ProfileEnv, ProfileError, StaticReport, run_step, run_validator};

pub mod argv;
mod build;
pub mod parse;
mod verify;

pub use build::dry_activate;

const PROFILE: Profile = Profile::Nixos;

/// Where NixOS keeps its systems. The host's are [`SystemPaths::host`]; tests use a
/// temporary directory.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    /// `/nix/var/nix/profiles/system` → `system-N-link` → the generation's store path.
    pub profile: PathBuf,
    /// `/run/current-system`: what runs now.
    pub current: PathBuf,
    /// `/run/booted-system`: what the host booted.
    pub booted: PathBuf,
    pub store: PathBuf,
}

impl SystemPaths {
    pub fn host() -> SystemPaths {
        SystemPaths {
            profile: PathBuf::from(argv::SYSTEM_PROFILE),
            current: PathBuf::from("/run/current-system"),
            booted: PathBuf::from("/run/booted-system"),
            store: PathBuf::from("/nix/store"),
        }
    }
}

pub async fn static_checks(
    env: &ProfileEnv<'_>,
    dir: &Path,
    files: &[ChangeFile],
    round: u8,
) -> StaticReport {
    static_checks_at(env, dir, files, round, &SystemPaths::host()).await
}

/// `nix flake check`, then (with `nixos_host`) `nixos-rebuild build`, whose `./result` link names
/// the artefact. `dry-activate` is not run here: it executes the change's activation scripts
/// (as root) before anyone approved the change; see [`dry_activate`].
pub async fn static_checks_at(
    env: &ProfileEnv<'_>,
    dir: &Path,
    _files: &[ChangeFile],
    round: u8,
    paths: &SystemPaths,
) -> StaticReport {
    let mut report = StaticReport::default();
    let check = argv::flake_check(&env.cfg.nix);
    report
        .validations
        .push(run_validator(env, &check, dir, ValidatorSource::Profile, round).await);
    let Some(host) = env.cfg.nixos_host.as_deref() else {
        return report;
    };
    let build = build::run(env, dir, host, round, paths).await;
    if let Some(path) = build.store_path {
        report.artefacts.store_paths.insert(host.to_string(), path);
    }
    report.validations.push(build.validation);
    report.blast_radius.notes.push(
        "units: not known before approval (nixos-rebuild dry-activate runs the change's \
         activation scripts as root, so steward does not run it on an unapproved change)"
            .to_string(),
    );
    report
}

pub async fn rollback_target(_env: &ProfileEnv<'_>) -> Result<RollbackTarget, ProfileError> {
    rollback_target_at(&SystemPaths::host())
}

/// The generation the system profile points at now, by number and store path.
pub fn rollback_target_at(paths: &SystemPaths) -> Result<RollbackTarget, ProfileError> {
    let parse_err = |detail: String| ProfileError::Parse {
        what: format!(
            "the current system generation ({})",
            paths.profile.display()
        ),
        detail,
    };
    let link = std::fs::read_link(&paths.profile).map_err(|e| parse_err(e.to_string()))?;
    let name = link.to_str().filter(|n| !n.contains('/')).ok_or_else(|| {
        parse_err(format!(
            "links to `{}`, not `system-N-link`",
            link.display()
        ))
    })?;
    let number = parse::generation_number(name).map_err(|e| parse_err(e.0))?;
    let path = std::fs::canonicalize(&paths.profile).map_err(|e| parse_err(e.to_string()))?;
    let path = parse::system_store_path(&path, &paths.store).map_err(|e| parse_err(e.0))?;
    let generation = std::fs::canonicalize(paths.profile.with_file_name(name))
        .map_err(|e| parse_err(format!("{name}: {e}")))?;
    if generation != Path::new(&path) {
        return Err(parse_err(format!(
            "{name} is {} but the profile resolves to {path}",
            generation.display()
        )));
    }
    Ok(RollbackTarget::Generation { number, path })
}

pub async fn apply(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    apply_at(env, rec, dir, steps, &SystemPaths::host()).await
}

/// Starts the dead-man timer (when `deadman_secs` > 0), activates with `nixos-rebuild test`
/// (not the boot default) and checks that the approved system is the one running.
pub async fn apply_at(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
    paths: &SystemPaths,
) -> Result<(), ProfileError> {
    let host = host(env, "apply")?;
    let built = built(rec, host, "apply")?;
    let flake = flake(dir, host, "apply")?;
    if env.cfg.deadman_secs > 0 {
        let (_, target) = generation(rec, "start the dead-man timer")?;
        let unit = argv::deadman_unit(&rec.id);
        let start = argv::deadman_start(&unit, env.cfg.deadman_secs, target);
        run_step(env, "deadman_start", &start, dir, steps).await?;
    }
    let test = argv::rebuild(&env.cfg.nixos_rebuild, "test", &flake);
    run_step(env, "test", &test, dir, steps).await?;
    verify::running(steps, paths, built, None)
}

pub async fn finish(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    finish_at(env, rec, dir, steps, &SystemPaths::host()).await
}

/// Confirms (stops the dead-man timer) before `switch`, so a timer firing during `switch`
/// cannot leave the boot default and the running system disagreeing; a timer that already
/// fired fails the confirmation (`RemainAfterElapse=no` unloaded it) and the running-system
/// check.
pub async fn finish_at(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
    paths: &SystemPaths,
) -> Result<(), ProfileError> {
    let host = host(env, "finish")?;
    let built = built(rec, host, "finish")?;
    let flake = flake(dir, host, "finish")?;
    if env.cfg.deadman_secs > 0 {
        let stop = argv::deadman_stop(&argv::deadman_unit(&rec.id));
        run_step(env, "deadman_confirm", &stop, dir, steps).await?;
    }
    verify::running(steps, paths, built, None)?;
    let switch = argv::rebuild(&env.cfg.nixos_rebuild, "switch", &flake);
    run_step(env, "switch", &switch, dir, steps).await?;
    verify::running(steps, paths, built, Some(&paths.profile))
}

pub async fn rollback(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    rollback_at(env, rec, dir, steps, &SystemPaths::host()).await
}

/// Stops the dead-man timer (a failure is recorded, not fatal: a fired timer switched to the
/// same generation), makes generation N the boot default and activates it, as nixos-rebuild
/// `--rollback` does for "previous", then checks that it runs and is the boot default.
pub async fn rollback_at(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
    paths: &SystemPaths,
) -> Result<(), ProfileError> {
    let (number, target) = generation(rec, "roll back")?;
    if env.cfg.deadman_secs > 0 {
        let stop = argv::deadman_stop(&argv::deadman_unit(&rec.id));
        let _recorded = run_step(env, "deadman_stop", &stop, dir, steps).await;
    }
    let profile = paths.profile.display().to_string();
    let set = argv::set_generation(&profile, number);
    run_step(env, "rollback_profile", &set, dir, steps).await?;
    run_step(env, "rollback", &argv::activate(target), dir, steps).await?;
    verify::running(steps, paths, target, Some(&paths.profile))
}

/// Whether the new system (the system profile, after `switch`) needs a reboot to take full
/// effect. The orchestrator calls it after [`finish`] succeeded and sets
/// `ChangeRecord::reboot_needed` from it. With no readable `/run/booted-system` it says yes.
pub fn reboot_needed() -> bool {
    reboot_needed_at(&SystemPaths::host())
}

pub fn reboot_needed_at(paths: &SystemPaths) -> bool {
    parse::needs_reboot(
        &parse::boot_files(&paths.booted),
        &parse::boot_files(&paths.profile),
    )
}

fn unsupported(what: &'static str, why: impl Into<String>) -> ProfileError {
    ProfileError::Unsupported {
        profile: PROFILE,
        what,
        why: why.into(),
    }
}

fn host<'a>(env: &'a ProfileEnv<'_>, what: &'static str) -> Result<&'a str, ProfileError> {
    env.cfg
        .nixos_host
        .as_deref()
        .ok_or_else(|| unsupported(what, "`[change] nixos_host` is not set in steward.toml"))
}

/// The approved artefact: the system the static phase built for `host`.
fn built<'a>(
    rec: &'a ChangeRecord,
    host: &str,
    what: &'static str,
) -> Result<&'a str, ProfileError> {
    rec.artefacts
        .store_paths
        .get(host)
        .map(String::as_str)
        .ok_or_else(|| unsupported(what, format!("the change has no built system for `{host}`")))
}

fn generation<'a>(
    rec: &'a ChangeRecord,
    what: &'static str,
) -> Result<(u64, &'a str), ProfileError> {
    match &rec.rollback_target {
        RollbackTarget::Generation { number, path } => Ok((*number, path.as_str())),
        other => Err(unsupported(
            what,
            format!("the rollback target is {other:?}, not a system generation"),
        )),
    }
}

/// `DIR#HOST`; a directory whose name nix would read as part of the reference is refused.
fn flake(dir: &Path, host: &str, what: &'static str) -> Result<String, ProfileError> {
    let shown = dir.display().to_string();
    if shown.contains(['#', '?']) || dir.to_str().is_none() {
        return Err(unsupported(
            what,
            format!("`{shown}` cannot be written as a flake reference"),
        ));
    }
    Ok(argv::flake_ref(dir, host))
}

#[cfg(test)]
mod tests;
