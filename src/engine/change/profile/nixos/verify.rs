//! steward's own check after each activation: the system running (and, after `switch` or a
//! rollback, the boot default) is the one it meant, read from the symlinks NixOS keeps.

use std::path::Path;
use std::time::Instant;

use time::OffsetDateTime;

use super::super::super::record::Step;
use super::super::ProfileError;
use super::SystemPaths;

/// Records a `verify_generation` step: `current` (and `profile`, when given) resolve to
/// `expected`. Fails when they do not.
pub fn running(
    steps: &mut Vec<Step>,
    paths: &SystemPaths,
    expected: &str,
    profile: Option<&Path>,
) -> Result<(), ProfileError> {
    let started = (OffsetDateTime::now_utc(), Instant::now());
    let mut lines = vec![resolves(&paths.current, expected)];
    if let Some(profile) = profile {
        lines.push(resolves(profile, expected));
    }
    let ok = lines.iter().all(|(ok, _)| *ok);
    let output = lines
        .into_iter()
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n");
    steps.push(Step {
        what: "verify_generation".to_string(),
        argv: Vec::new(),
        started: started.0,
        duration_ms: started.1.elapsed().as_millis() as u64,
        ok,
        exit_code: None,
        output: output.clone(),
        checks: None,
    });
    if ok {
        Ok(())
    } else {
        Err(ProfileError::StepFailed {
            what: "verify_generation".to_string(),
            detail: output,
        })
    }
}

fn resolves(link: &Path, expected: &str) -> (bool, String) {
    match std::fs::canonicalize(link) {
        Ok(p) if p == Path::new(expected) => (true, format!("{} is {expected}", link.display())),
        Ok(p) => (
            false,
            format!("{} is {}, not {expected}", link.display(), p.display()),
        ),
        Err(e) => (false, format!("{}: {e}", link.display())),
    }
}
