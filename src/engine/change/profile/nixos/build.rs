//! Building the change's system (`nixos-rebuild build`, static phase) and reading what it
//! built; and `dry-activate`, the incomplete preview of which units would change.

use std::path::Path;

use super::super::super::record::{Validation, ValidatorSource};
use super::super::{ProfileEnv, ProfileError, run_validator};
use super::{SystemPaths, argv, flake, parse};

/// The build's validator and, when it passed, the store path of the system it built.
pub struct Build {
    pub validation: Validation,
    pub store_path: Option<String>,
}

/// `nixos-rebuild build --flake DIR#HOST` in an empty directory of its own, so the `./result`
/// link it leaves names this build and nothing lands in the change's tree.
pub async fn run(
    env: &ProfileEnv<'_>,
    dir: &Path,
    host: &str,
    round: u8,
    paths: &SystemPaths,
) -> Build {
    let argv_for = |flake: &str| argv::rebuild(&env.cfg.nixos_rebuild, "build", flake);
    let flake = match flake(dir, host, "build") {
        Ok(f) => f,
        Err(e) => return refused(argv_for(&format!("{}#{host}", dir.display())), round, e),
    };
    let build = argv_for(&flake);
    let out = match tempfile::tempdir() {
        Ok(out) => out,
        Err(e) => return refused(build, round, e),
    };
    let mut validation =
        run_validator(env, &build, out.path(), ValidatorSource::Profile, round).await;
    if !validation.passed {
        return Build {
            validation,
            store_path: None,
        };
    }
    match result_link(out.path(), paths) {
        Ok(path) => Build {
            validation,
            store_path: Some(path),
        },
        Err(detail) => {
            // It exited 0, but steward cannot say what it built: not a pass.
            validation.passed = false;
            validation.error = Some(format!("built, but {detail}"));
            Build {
                validation,
                store_path: None,
            }
        }
    }
}

fn result_link(out: &Path, paths: &SystemPaths) -> Result<String, String> {
    let link = out.join("result");
    let target = std::fs::read_link(&link)
        .map_err(|e| format!("it left no `result` link naming the system ({e})"))?;
    parse::system_store_path(&target, &paths.store)
        .map_err(|e| format!("its `result` link is not a system: {e}"))
}

fn refused(argv: Vec<String>, round: u8, why: impl std::fmt::Display) -> Build {
    Build {
        validation: Validation {
            argv,
            source: ValidatorSource::Profile,
            round,
            passed: false,
            exit_code: None,
            timed_out: false,
            duration_ms: 0,
            output: String::new(),
            error: Some(why.to_string()),
        },
        store_path: None,
    }
}

/// `nixos-rebuild dry-activate --flake DIR#HOST`: the units switch-to-configuration says it
/// would stop, restart, reload or start, as blast-radius lines (`restart: nginx.service`).
///
/// Never a gate (nixpkgs documents dry-activate as incomplete), and not run by the static
/// phase: it runs the change's activation scripts that support dry activation, as root, so
/// call it only on a change an operator approved. Needs root on the NixOS host.
pub async fn dry_activate(
    env: &ProfileEnv<'_>,
    dir: &Path,
    host: &str,
) -> Result<Vec<String>, ProfileError> {
    let flake = flake(dir, host, "dry-activate")?;
    let argv = argv::rebuild(&env.cfg.nixos_rebuild, "dry-activate", &flake);
    let out = tempfile::tempdir().map_err(|e| ProfileError::StepFailed {
        what: "dry-activate".to_string(),
        detail: e.to_string(),
    })?;
    let v = run_validator(env, &argv, out.path(), ValidatorSource::Profile, 0).await;
    if !v.passed {
        return Err(ProfileError::StepFailed {
            what: format!("dry-activate (`{}`)", argv.join(" ")),
            detail: v
                .error
                .unwrap_or_else(|| format!("exit {:?}: {}", v.exit_code, v.output)),
        });
    }
    parse::dry_activation(&v.output)
        .map(|d| d.units())
        .map_err(|e| ProfileError::Parse {
            what: "nixos-rebuild dry-activate".to_string(),
            detail: e.0,
        })
}
