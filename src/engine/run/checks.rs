//! The checks a run takes before the agent (every phase, concurrently) and after it (one phase
//! at a time), and whether what was gathered needs a model's eyes.

use serde::{Deserialize, Serialize};

use crate::base::redact::Redactor;
use crate::base::signal::Source;
use crate::defs::check::{self, CheckEnv, CheckResult, Phase};
use crate::defs::goal::Goal;
use crate::defs::probe::ProbeResult;
use crate::defs::service::{ServiceContract, ServiceError};

use super::{Definitions, RunError, RunRequest};

/// The checks that run before the agent, by phase. Post checks run before too: they are the
/// evidence for deterministic-first and the state a proposal is fingerprinted against.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChecksBefore {
    pub static_: Vec<CheckResult>,
    pub preflight: Vec<CheckResult>,
    pub invariants: Vec<CheckResult>,
    pub post: Vec<CheckResult>,
}

impl ChecksBefore {
    pub(super) fn all(&self) -> Vec<CheckResult> {
        self.static_
            .iter()
            .chain(&self.preflight)
            .chain(&self.invariants)
            .chain(&self.post)
            .cloned()
            .collect()
    }

    /// The state a proposal is made against: every check's status, nothing that varies by time.
    pub(super) fn fingerprint(&self) -> String {
        let obs: Vec<(String, String)> = self
            .all()
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.status)))
            .collect();
        crate::engine::approval::state_fingerprint(&obs)
    }
}

pub(super) async fn phase_results(
    defs: &Definitions,
    goal: &Goal,
    phase: Phase,
    env: &CheckEnv,
    redactor: &Redactor,
) -> Result<Vec<CheckResult>, RunError> {
    let selected = defs.checks.for_phase(&goal.checks, phase)?;
    Ok(check::run_checks_in(&selected, env)
        .await
        .iter()
        .map(|r| r.redacted(redactor))
        .collect())
}

pub(super) async fn checks_before(
    defs: &Definitions,
    goal: &Goal,
    env: &CheckEnv,
    redactor: &Redactor,
) -> Result<ChecksBefore, RunError> {
    let (s, p, i, post) = tokio::join!(
        phase_results(defs, goal, Phase::Static, env, redactor),
        phase_results(defs, goal, Phase::Preflight, env, redactor),
        phase_results(defs, goal, Phase::Invariant, env, redactor),
        phase_results(defs, goal, Phase::Post, env, redactor),
    );
    Ok(ChecksBefore {
        static_: s?,
        preflight: p?,
        invariants: i?,
        post: post?,
    })
}

/// The declared service a run is about: a `service` variable naming one, else the signal's
/// subject when it names one (a manual or timer signal's subject is its goal, not a service).
pub(super) fn service_of(
    workspace: &std::path::Path,
    req: &RunRequest,
) -> Result<Option<ServiceContract>, ServiceError> {
    let named = req
        .vars
        .get("service")
        .map(String::as_str)
        .or(match req.signal.source {
            Source::Manual | Source::Timer => None,
            _ => Some(req.signal.subject.as_str()),
        });
    let Some(named) = named else { return Ok(None) };
    // Only a service that has a directory is read (with every other contract, for its
    // dependencies): an alert about something else is not blocked by a contract's typo.
    if !crate::defs::service::is_safe_name(named)
        || !workspace.join("services").join(named).is_dir()
    {
        return Ok(None);
    }
    crate::defs::service::find(workspace, named)
}

/// A run about a declared service takes the contract's healthcheck as one more post-action
/// check (before and after the agent, like the goal's own): it counts like any post check. A
/// check of the same name in the context files is a conflict, not a silent override.
pub(super) fn add_service_healthcheck(
    workspace: &std::path::Path,
    req: &RunRequest,
    defs: &mut Definitions,
    goal: &mut Goal,
) -> Result<(), RunError> {
    let Some(contract) = service_of(workspace, req)? else {
        return Ok(());
    };
    let Some(check) = contract.healthcheck else {
        return Ok(());
    };
    if let Some(existing) = defs.checks.get(&check.name) {
        return Err(check::CheckError::Duplicate {
            name: check.name.clone(),
            first: existing.origin.clone(),
            second: check.origin.clone(),
            file: contract.file.display().to_string(),
        }
        .into());
    }
    goal.checks.post.push(check.name.clone());
    defs.checks.checks.push(check);
    Ok(())
}

/// Whether the gathered context needs a model's eyes: a signal from outside (an alert, a failed
/// unit, CI) always does; so does a probe that failed or timed out, or any failing check.
pub(super) fn needs_attention(
    req: &RunRequest,
    context: &[ProbeResult],
    before: &ChecksBefore,
) -> bool {
    use crate::defs::probe::ProbeStatus;
    req.force_model
        || !matches!(req.signal.source, Source::Manual | Source::Timer)
        || context
            .iter()
            .any(|p| matches!(p.status, ProbeStatus::Failed | ProbeStatus::TimedOut))
        || before.all().iter().any(|c| c.status.is_failure())
}
