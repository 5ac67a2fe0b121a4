//! The checks a run takes before the agent (every phase, concurrently) and after it (one phase
//! at a time), and whether what was gathered needs a model's eyes.

use serde::{Deserialize, Serialize};

use crate::base::redact::Redactor;
use crate::base::signal::Source;
use crate::defs::check::{self, CheckEnv, CheckResult, Phase};
use crate::defs::goal::Goal;
use crate::defs::probe::ProbeResult;
use crate::defs::service::{ServiceContract, ServiceError};
use crate::engine::context::{Compared, HostContext};

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
/// unit, CI) always does; so does a probe that failed or timed out, any failing check, and what
/// the host snapshot says is new (see [`host_needs_attention`]).
pub(super) fn needs_attention(
    req: &RunRequest,
    context: &[ProbeResult],
    before: &ChecksBefore,
    host: &HostContext,
) -> bool {
    use crate::defs::probe::ProbeStatus;
    req.force_model
        || !matches!(req.signal.source, Source::Manual | Source::Timer)
        || context
            .iter()
            .any(|p| matches!(p.status, ProbeStatus::Failed | ProbeStatus::TimedOut))
        || before.all().iter().any(|c| c.status.is_failure())
        || host_needs_attention(host)
}

/// A change since the subject's last run calls for attention (a container died, a port closed,
/// a disk crossed a threshold); or, on the subject's first run with nothing to compare with, the
/// snapshot flags something as it stands. A flag that stood at the last run too was that run's
/// to look at: it does not wake the model again on every timer.
pub(super) fn host_needs_attention(host: &HostContext) -> bool {
    !host.attention.is_empty()
        || (matches!(host.compared, Compared::FirstRun) && !host.standing.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::context::host::Flag;
    use crate::engine::report::attention::{Attention, Who};

    fn host(compared: Compared) -> HostContext {
        HostContext {
            subject: "s".into(),
            snapshot: None,
            compared,
            changes: Vec::new(),
            attention: Vec::new(),
            standing: Vec::new(),
            problems: Vec::new(),
            last: None,
        }
    }

    #[test]
    fn new_attention_wakes_the_model_a_standing_flag_only_on_a_first_run() {
        let since = || Compared::LastRun { run: "r1".into() };
        assert!(!host_needs_attention(&host(since())));
        let mut died = host(since());
        died.attention.push(Attention {
            what: "container web exited 137".into(),
            who: Who::Agent,
            suggestion: String::new(),
            about: "container web".into(),
        });
        assert!(host_needs_attention(&died));
        let flag = Flag {
            what: "/ is 93% full".into(),
            name: "/".into(),
        };
        let mut standing = host(since());
        standing.standing.push(flag.clone());
        assert!(!host_needs_attention(&standing));
        let mut first = host(Compared::FirstRun);
        first.standing.push(flag);
        assert!(host_needs_attention(&first));
    }
}
