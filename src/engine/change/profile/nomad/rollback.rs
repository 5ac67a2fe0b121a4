//! Rolling a Nomad change back: each job the change touched returns to the version recorded
//! before it was applied (`nomad job revert JOB VERSION`, which registers that spec as a new
//! version), and a job the change created is stopped. Every job is tried even after one
//! fails; each is verified by reading the job again.

use std::path::Path;
use std::time::Instant;

use time::OffsetDateTime;

use super::super::super::record::{ChangeRecord, RollbackTarget, Step};
use super::super::{ProfileEnv, ProfileError, run_step};
use super::{PROFILE, argv, job_argv, read_job};

pub async fn rollback(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let RollbackTarget::JobVersions { versions } = &rec.rollback_target else {
        return Err(ProfileError::Unsupported {
            profile: PROFILE,
            what: "roll back",
            why: format!(
                "the rollback target is {:?}, not job versions",
                rec.rollback_target
            ),
        });
    };
    let mut first_error = None;
    for (job, version) in versions {
        if let Err(e) = revert(env, job, *version, dir, steps).await {
            first_error.get_or_insert(e);
        }
    }
    // Jobs the plan showed that have no recorded version: the change created them.
    for job in rec.blast_radius.nomad.keys() {
        if !versions.contains_key(job)
            && let Err(e) = stop_created(env, job, dir, steps).await
        {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn revert(
    env: &ProfileEnv<'_>,
    job: &str,
    version: u64,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let started = clock();
    let before = read_job(env, job, dir, steps).await?;
    if before.version == version && !before.stopped {
        let msg = format!("job {job} is at version {version}: nothing to revert");
        return verdict(steps, started, true, msg);
    }
    let revert = job_argv(job, |j| argv::revert(&env.cfg.nomad, j, version))?;
    run_step(env, "rollback", &revert, dir, steps).await?;
    let after = read_job(env, job, dir, steps).await?;
    // A revert registers version `version`'s spec as a new, higher version.
    let ok = after.version > before.version && !after.stopped;
    let msg = format!(
        "job {job}: version {} before the revert to {version}, {} after{}",
        before.version,
        after.version,
        if after.stopped { " (stopped)" } else { "" }
    );
    verdict(steps, started, ok, msg)
}

async fn stop_created(
    env: &ProfileEnv<'_>,
    job: &str,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    let started = clock();
    match read_job(env, job, dir, steps).await {
        Ok(state) if state.stopped => {
            let msg = format!("job {job} (created by the change) is stopped already");
            return verdict(steps, started, true, msg);
        }
        Ok(_) => {}
        Err(_) if not_registered(steps) => {
            let msg = format!("job {job} (created by the change) was never registered");
            return verdict(steps, started, true, msg);
        }
        Err(e) => return Err(e),
    }
    let stop = job_argv(job, |j| argv::stop(&env.cfg.nomad, j))?;
    run_step(env, "rollback", &stop, dir, steps).await?;
    let after = read_job(env, job, dir, steps).await?;
    let msg = format!(
        "job {job} (created by the change) is {}",
        if after.stopped {
            "stopped"
        } else {
            "still running"
        }
    );
    verdict(steps, started, after.stopped, msg)
}

/// The last step was `nomad job inspect` saying the job does not exist: "No job(s) with prefix
/// or ID %q found" (`command/meta.go`; older releases wrote "id").
fn not_registered(steps: &[Step]) -> bool {
    steps.last().is_some_and(|s| {
        s.what == "read_version"
            && s.exit_code == Some(1)
            && s.output
                .to_ascii_lowercase()
                .contains("no job(s) with prefix or id")
    })
}

fn clock() -> (OffsetDateTime, Instant) {
    (OffsetDateTime::now_utc(), Instant::now())
}

/// Records steward's own verification of one job as a `verify_version` step.
fn verdict(
    steps: &mut Vec<Step>,
    started: (OffsetDateTime, Instant),
    ok: bool,
    output: String,
) -> Result<(), ProfileError> {
    steps.push(Step {
        what: "verify_version".to_string(),
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
            what: "verify_version".to_string(),
            detail: output,
        })
    }
}
