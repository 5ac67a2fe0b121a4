//! The `nomad` profile: for each changed job file (`*.nomad`, `*.nomad.hcl`), `nomad job
//! validate` and `nomad job plan` (its Job Modify Index is the artefact an approval binds to,
//! its per-group counts the blast radius); each job's current version as the rollback target;
//! `nomad job run -check-index N`, which monitors the deployment, to apply; `nomad job revert
//! JOB VERSION` (and a check that a new version is registered) to roll back.
//!
//! Not verified against a live cluster here: the tests check the argv and the parsing of the
//! outputs Nomad documents (`tests/data/nomad/SOURCES.md`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::defs::change::Profile;

use super::super::record::{
    ChangeFile, ChangeRecord, RollbackTarget, Step, Validation, ValidatorSource,
};
use super::{ProfileEnv, ProfileError, StaticReport, run_step, run_validator};

pub mod argv;
pub mod parse;
mod rollback;

pub use rollback::rollback;

const PROFILE: Profile = Profile::Nomad;

/// The job files of the change that exist after it (a deleted file is not run; see
/// [`static_checks`]).
fn job_files(files: &[ChangeFile]) -> impl Iterator<Item = &ChangeFile> {
    files
        .iter()
        .filter(|f| f.status != "deleted" && argv::is_job_file(&f.path))
}

/// The path as nomad gets it: `./` first, so it is never read as a flag or as a go-getter URL
/// (`github.com/...`), only as the file in the tree.
fn local(path: &str) -> String {
    format!("./{path}")
}

/// Validate and plan each job file. Plan exits 1 when allocations would change: still a valid
/// plan. A plan steward cannot read, or one that cannot place every allocation, fails.
pub async fn static_checks(
    env: &ProfileEnv<'_>,
    dir: &Path,
    files: &[ChangeFile],
    round: u8,
) -> StaticReport {
    let mut report = StaticReport::default();
    let nomad = &env.cfg.nomad;
    for file in job_files(files) {
        let arg = local(&file.path);
        let validate = argv::validate(nomad, &arg);
        report
            .validations
            .push(run_validator(env, &validate, dir, ValidatorSource::Profile, round).await);
        let plan = argv::plan(nomad, &arg);
        let mut v = run_validator(env, &plan, dir, ValidatorSource::Profile, round).await;
        if let Some(plan) = judge_plan(&mut v) {
            report
                .artefacts
                .nomad_modify_index
                .insert(file.path.clone(), plan.modify_index);
            report.blast_radius.nomad.insert(plan.job, plan.updates);
        }
        report.validations.push(v);
    }
    for file in files
        .iter()
        .filter(|f| f.status == "deleted" && argv::is_job_file(&f.path))
    {
        report.blast_radius.notes.push(format!(
            "{}: deleted; steward does not stop the job it defined (`nomad job stop` by hand)",
            file.path
        ));
    }
    report
}

/// Reads a plan validator's output; sets `passed` from what the plan says, not only its exit.
fn judge_plan(v: &mut Validation) -> Option<parse::Plan> {
    if v.timed_out || v.error.is_some() || !matches!(v.exit_code, Some(0) | Some(1)) {
        return None;
    }
    match parse::plan(&v.output) {
        Ok(plan) => {
            v.passed = !plan.placement_failed;
            if plan.placement_failed {
                v.error = Some("the scheduler could not place every allocation".to_string());
            }
            Some(plan)
        }
        Err(e) => {
            v.passed = false;
            v.error = Some(format!("cannot read the plan: {e}"));
            None
        }
    }
}

/// Each changed job's current version (`nomad job inspect`). A job the plan shows as new
/// (Job Modify Index 0) has none: rolling back stops it instead.
pub async fn rollback_target(
    env: &ProfileEnv<'_>,
    dir: &Path,
    files: &[ChangeFile],
) -> Result<RollbackTarget, ProfileError> {
    let mut versions = BTreeMap::new();
    let mut scratch = Vec::new();
    for file in job_files(files) {
        let plan = plan_of(env, dir, &file.path, &mut scratch).await?;
        if plan.modify_index == 0 {
            continue;
        }
        let state = read_job(env, &plan.job, dir, &mut scratch).await?;
        versions.insert(plan.job, state.version);
    }
    Ok(RollbackTarget::JobVersions { versions })
}

async fn plan_of(
    env: &ProfileEnv<'_>,
    dir: &Path,
    file: &str,
    scratch: &mut Vec<Step>,
) -> Result<parse::Plan, ProfileError> {
    let argv = argv::plan(&env.cfg.nomad, &local(file));
    // Exit 1 is a plan with changes: read the output of either.
    let stdout = match run_step(env, "plan", &argv, dir, scratch).await {
        Ok(out) => out,
        Err(e) => match scratch.last() {
            Some(s) if s.exit_code == Some(1) => s.output.clone(),
            _ => return Err(e),
        },
    };
    parse::plan(&stdout).map_err(|e| ProfileError::Parse {
        what: format!("`{}`", argv.join(" ")),
        detail: e.0,
    })
}

/// `nomad job inspect JOB` → its version and whether it is stopped (a recorded step).
async fn read_job(
    env: &ProfileEnv<'_>,
    job: &str,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<parse::JobState, ProfileError> {
    let argv = job_argv(job, |j| argv::inspect(&env.cfg.nomad, j))?;
    let stdout = run_step(env, "read_version", &argv, dir, steps).await?;
    parse::inspect(&stdout, job).map_err(|e| ProfileError::Parse {
        what: format!("`{}`", argv.join(" ")),
        detail: e.0,
    })
}

/// An argv naming `job`, refused when the ID could be read as a flag or is not one Nomad
/// prints (a record edited by hand, say).
fn job_argv(job: &str, build: impl Fn(&str) -> Vec<String>) -> Result<Vec<String>, ProfileError> {
    if parse::valid_job_id(job) {
        Ok(build(job))
    } else {
        Err(ProfileError::Parse {
            what: "the change record".to_string(),
            detail: format!("`{job}` is not a job ID steward passes to nomad"),
        })
    }
}

/// `nomad job run -check-index N FILE` per job file, N from the plan the approval saw; `run`
/// waits for the deployment and exits non-zero when it fails. A deployment that did not end
/// `successful` fails the step even if nomad exited 0.
pub async fn apply(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    for file in job_files(&rec.files) {
        let index = *rec
            .artefacts
            .nomad_modify_index
            .get(&file.path)
            .ok_or_else(|| ProfileError::Unsupported {
                profile: PROFILE,
                what: "apply",
                why: format!(
                    "the change has no planned Job Modify Index for {}",
                    file.path
                ),
            })?;
        let run = argv::run(&env.cfg.nomad, index, &local(&file.path));
        let stdout = run_step(env, "apply", &run, dir, steps).await?;
        deployment_succeeded(&stdout, &run, steps)?;
    }
    Ok(())
}

fn deployment_succeeded(
    stdout: &str,
    run: &[String],
    steps: &mut [Step],
) -> Result<(), ProfileError> {
    let what = format!("apply (`{}`)", run.join(" "));
    let detail = match parse::deployment(stdout) {
        Ok(None) => return Ok(()),
        Ok(Some(d)) if d.status == "successful" => return Ok(()),
        Ok(Some(d)) => format!("deployment {} ended `{}`", d.id, d.status),
        Err(e) => format!("cannot read the deployment's outcome: {e}"),
    };
    if let Some(step) = steps.last_mut() {
        step.ok = false;
        step.output.push_str(&format!("\n[steward] {detail}"));
    }
    Err(ProfileError::StepFailed { what, detail })
}

#[cfg(test)]
mod tests;
