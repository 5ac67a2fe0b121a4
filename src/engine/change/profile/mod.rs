//! How a change reaches the host, per `[change] profile`: the profile's bundled static checks
//! (with the artefacts an approval is bound to and the blast radius an operator reviews), the
//! explicit rollback target, and the steps that apply, finish and roll back. The orchestration
//! around them (states, verification, the workspace branch) is `super::apply`.
//!
//! Every step is an argv run through `base::exec` (no shell, own process group, timeout), and
//! every step is recorded as it ran ([`Step`]), failed ones included.

use std::path::Path;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::base::exec;
use crate::base::redact::Redactor;
use crate::config::ChangeConfig;
use crate::defs::change::Profile;

use super::record::{
    Artefacts, BlastRadius, ChangeFile, ChangeRecord, RollbackTarget, Step, Validation,
    ValidatorSource,
};

pub mod command;
pub mod compose;
pub mod nixos;
pub mod nomad;

/// Output kept per step or validator: the end, where errors are.
pub const OUTPUT_TAIL: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A step ran and failed; the step is in the record with its output.
    #[error("{what} failed: {detail}")]
    StepFailed { what: String, detail: String },
    /// The profile cannot do this here (a missing setting, a tool this host lacks).
    #[error("the {profile:?} profile cannot {what}: {why}")]
    Unsupported {
        profile: Profile,
        what: &'static str,
        why: String,
    },
    /// A tool's output did not say what steward needs to know.
    #[error("cannot read the output of {what}: {detail}")]
    Parse { what: String, detail: String },
}

/// What every profile step needs: the host's `[change]` settings, the PATH and the redactor.
pub struct ProfileEnv<'a> {
    pub cfg: &'a ChangeConfig,
    pub path_env: &'a str,
    pub redactor: &'a Redactor,
}

impl ProfileEnv<'_> {
    fn apply_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.apply_timeout_secs)
    }

    fn validate_timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.validate_timeout_secs)
    }

    /// `[change] env`, for executors and planning steps.
    fn executor_env(&self) -> Vec<(&str, &str)> {
        self.cfg
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// The static phase's bundled part, for one profile.
#[derive(Debug, Clone, Default)]
pub struct StaticReport {
    pub validations: Vec<Validation>,
    pub artefacts: Artefacts,
    pub blast_radius: BlastRadius,
}

/// The profile's bundled validators on the changed tree `dir`, with what they built or planned.
pub async fn static_checks(
    env: &ProfileEnv<'_>,
    profile: Profile,
    dir: &Path,
    files: &[ChangeFile],
    round: u8,
) -> StaticReport {
    match profile {
        Profile::Command => StaticReport::default(),
        Profile::Compose => compose::static_checks(env, dir, files, round).await,
        Profile::Nixos => nixos::static_checks(env, dir, files, round).await,
        Profile::Nomad => nomad::static_checks(env, dir, files, round).await,
    }
}

/// What a rollback would return to, read from the host now (before anything is applied).
pub async fn rollback_target(
    env: &ProfileEnv<'_>,
    profile: Profile,
    dir: &Path,
    base: &str,
    files: &[ChangeFile],
) -> Result<RollbackTarget, ProfileError> {
    match profile {
        Profile::Command | Profile::Compose => Ok(RollbackTarget::BaseCommit {
            sha: base.to_string(),
        }),
        Profile::Nixos => nixos::rollback_target(env).await,
        Profile::Nomad => nomad::rollback_target(env, dir, files).await,
    }
}

/// Applies the change from `dir` (the change's tree). The steps are appended to `steps`.
pub async fn apply(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    match rec.profile {
        Profile::Command => command::apply(env, rec, dir, steps).await,
        Profile::Compose => compose::apply(env, rec, dir, steps).await,
        Profile::Nixos => nixos::apply(env, rec, dir, steps).await,
        Profile::Nomad => nomad::apply(env, rec, dir, steps).await,
    }
}

/// After verification passed: what makes the change permanent (NixOS: `switch` and the
/// dead-man timer stopped). Nothing for the other profiles.
pub async fn finish(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    match rec.profile {
        Profile::Nixos => nixos::finish(env, rec, dir, steps).await,
        Profile::Command | Profile::Compose | Profile::Nomad => Ok(()),
    }
}

/// Returns the host to `rec.rollback_target`; `dir` holds the base commit's tree.
pub async fn rollback(
    env: &ProfileEnv<'_>,
    rec: &ChangeRecord,
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<(), ProfileError> {
    match rec.profile {
        Profile::Command => command::rollback(env, rec, dir, steps).await,
        Profile::Compose => compose::rollback(env, rec, dir, steps).await,
        Profile::Nixos => nixos::rollback(env, rec, dir, steps).await,
        Profile::Nomad => nomad::rollback(env, rec, dir, steps).await,
    }
}

/// Runs one executor step in `dir` with `[change] env`, records it in `steps`, and fails with
/// its exit when it did not succeed. Returns the step's stdout for parsing.
pub async fn run_step(
    env: &ProfileEnv<'_>,
    what: &str,
    argv: &[String],
    dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<String, ProfileError> {
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let cmd = exec::Command {
        argv,
        path_env: env.path_env,
        cwd: Some(dir),
        timeout: env.apply_timeout(),
        stdout_cap: 4 * OUTPUT_TAIL,
        stderr_tail: OUTPUT_TAIL,
    };
    let result = exec::run_env(&cmd, &env.executor_env()).await;
    let (ok, exit_code, output, stdout, detail) = match result {
        Ok(out) => {
            let ok = out.exit_code() == Some(0);
            let detail = if out.timed_out() {
                out.describe(env.apply_timeout())
            } else {
                format!("exit {}", exit_text(out.exit_code(), out.signal()))
            };
            let text = env.redactor.redact(&combined(&out.stdout, &out.stderr));
            (ok, out.exit_code(), tail(&text), out.stdout, detail)
        }
        Err(e) => (false, None, e.to_string(), String::new(), e.to_string()),
    };
    steps.push(Step {
        what: what.to_string(),
        argv: argv.to_vec(),
        started,
        duration_ms: clock.elapsed().as_millis() as u64,
        ok,
        exit_code,
        output,
        checks: None,
    });
    if ok {
        Ok(stdout)
    } else {
        Err(ProfileError::StepFailed {
            what: format!("{what} (`{}`)", argv.join(" ")),
            detail,
        })
    }
}

/// Runs one validator in `dir`. A goal's validators build agent-written code: they get a clean
/// environment (PATH, and HOME pointing at an empty directory), never `[change] env`.
pub async fn run_validator(
    env: &ProfileEnv<'_>,
    argv: &[String],
    dir: &Path,
    source: ValidatorSource,
    round: u8,
) -> Validation {
    let clock = Instant::now();
    let cmd = exec::Command {
        argv,
        path_env: env.path_env,
        cwd: Some(dir),
        timeout: env.validate_timeout(),
        stdout_cap: 4 * OUTPUT_TAIL,
        stderr_tail: OUTPUT_TAIL,
    };
    let home = tempfile::tempdir();
    let home_path = home
        .as_ref()
        .map(|h| h.path().display().to_string())
        .unwrap_or_else(|_| "/nonexistent".to_string());
    let mut extra: Vec<(&str, &str)> = vec![("HOME", home_path.as_str())];
    if source == ValidatorSource::Profile {
        extra.extend(env.executor_env());
    }
    let result = exec::run_env(&cmd, &extra).await;
    let duration_ms = clock.elapsed().as_millis() as u64;
    match result {
        Ok(out) => Validation {
            argv: argv.to_vec(),
            source,
            round,
            passed: out.exit_code() == Some(0),
            exit_code: out.exit_code(),
            timed_out: out.timed_out(),
            duration_ms,
            output: tail(&env.redactor.redact(&combined(&out.stdout, &out.stderr))),
            error: out
                .timed_out()
                .then(|| out.describe(env.validate_timeout())),
        },
        Err(e) => Validation {
            argv: argv.to_vec(),
            source,
            round,
            passed: false,
            exit_code: None,
            timed_out: false,
            duration_ms,
            output: String::new(),
            error: Some(e.to_string()),
        },
    }
}

fn combined(stdout: &str, stderr: &str) -> String {
    match (stdout.trim_end().is_empty(), stderr.trim_end().is_empty()) {
        (_, true) => stdout.to_string(),
        (true, false) => stderr.to_string(),
        (false, false) => format!("{}\n{}", stdout.trim_end(), stderr),
    }
}

/// The last [`OUTPUT_TAIL`] bytes, cut at a character boundary.
pub fn tail(text: &str) -> String {
    if text.len() <= OUTPUT_TAIL {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {} bytes before]\n{}", start, &text[start..])
}

fn exit_text(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("by signal {s}"),
        (None, None) => "unknown".to_string(),
    }
}
