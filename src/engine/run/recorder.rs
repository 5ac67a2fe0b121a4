//! The recorder: a run's record as it is written, stage by stage (`run.json`), then the result
//! (`result.json` and the `run_finished` event), also when a stop request ends the run.

use std::time::Instant;

use time::OffsetDateTime;

use crate::base::ledger::{Ledger, RunDir};
use crate::base::outcome::Outcome;
use crate::base::redact::Redactor;
use crate::base::signal::Signal;
use crate::defs::policy::AuditEntry;
use crate::engine::agent::{AgentFailure, AgentOutcome};
use crate::engine::boundary;
use crate::engine::judge::Judgement;

use super::{CostSource, RollbackRecord, RunError, RunMeta, RunReport, RunRequest, RunResult};

/// The run's record as it is being written: stage by stage, then the result.
pub(super) struct Recorder<'a> {
    ledger: &'a Ledger,
    pub(super) run: RunDir,
    pub(super) meta: RunMeta,
    req: &'a RunRequest,
    started: OffsetDateTime,
    clock: Instant,
    /// The agent's state-changing calls, once known.
    pub(super) state_changes: Vec<String>,
    /// The change set the run filed, once filed.
    pub(super) change: Option<super::record::ChangeSummary>,
    /// Held until the result is written: the proof that this run's steward is alive.
    _live: crate::engine::liveness::RunLock,
    /// Wait-mode actions expired because the run was cancelled.
    actions_expired: Vec<String>,
}

impl<'a> Recorder<'a> {
    pub(super) fn start(
        ledger: &'a Ledger,
        req: &'a RunRequest,
        redactor: &Redactor,
    ) -> Result<Self, RunError> {
        let started = OffsetDateTime::now_utc();
        let run = ledger.create_run(&req.goal)?;
        let live = crate::engine::liveness::hold(&run)?;
        let meta = RunMeta {
            id: run.id.clone(),
            goal: req.goal.clone(),
            stage: "started".into(),
            started,
            pid: std::process::id(),
            vars: req
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), redactor.redact(v)))
                .collect(),
            agent: None,
        };
        run.write_json("run.json", &meta)?;
        let mut signal = req.signal.clone();
        redact_signal(redactor, &mut signal);
        run.write_json("signal.json", &signal)?;
        ledger.event(
            "run_started",
            Some(&run.id),
            serde_json::json!({"goal": req.goal, "source": req.signal.source.as_str(), "subject": req.signal.subject}),
        )?;
        Ok(Recorder {
            ledger,
            run,
            meta,
            req,
            started,
            clock: Instant::now(),
            state_changes: Vec::new(),
            change: None,
            _live: live,
            actions_expired: Vec::new(),
        })
    }

    pub(super) fn stage(&mut self, stage: &str) -> Result<(), RunError> {
        self.meta.stage = stage.to_string();
        Ok(self.run.write_json("run.json", &self.meta)?)
    }

    /// A stop request ended the run in its current stage: the record is completed as
    /// `cancelled`, and the wait-mode actions it was blocked on expire (nothing will run them).
    pub(super) fn cancelled(
        &mut self,
        stop: crate::base::cancel::Request,
        agent: Option<AgentOutcome>,
    ) -> Result<RunReport, RunError> {
        let stage = self.meta.stage.clone();
        let mut reason = format!("cancelled by {} during stage `{stage}`", stop.signal);
        match agent.as_ref().and_then(|a| a.failure.as_ref()) {
            Some(AgentFailure::Cancelled { killed: false, .. }) => {
                reason.push_str(": claude was interrupted and ended within its grace")
            }
            Some(AgentFailure::Cancelled { killed: true, .. }) => reason.push_str(
                ": claude's process group was killed (no end within the grace, or a second signal)",
            ),
            _ if stop.urgent => reason.push_str(" (a second signal: stopped at once)"),
            _ => {}
        }
        reason.push_str("; nothing after that stage ran");
        let store = crate::engine::approval::Store::open(self.ledger.root())?;
        let expired = store.expire_for_run(&self.run.id)?;
        if !expired.is_empty() {
            reason.push_str(&format!(
                "; wait-mode action(s) expired: {}",
                expired.join(", ")
            ));
        }
        let exit = stop.signal.exit_kind();
        let judgement = Judgement {
            outcome: Outcome::Cancelled,
            exit,
            reason: reason.clone(),
            ..Judgement::escalated(String::new())
        };
        let audit = boundary::read_audit(&self.run.path)?;
        self.actions_expired = expired;
        self.finish(&judgement, agent, None, &audit)
    }

    pub(super) fn finish(
        &mut self,
        judgement: &Judgement,
        agent: Option<AgentOutcome>,
        rollback: Option<RollbackRecord>,
        audit: &[AuditEntry],
    ) -> Result<RunReport, RunError> {
        self.stage("done")?;
        // The agent and the processes it started have ended: nothing reads the config any more.
        crate::engine::run_config::forget(&self.run.path);
        let a = agent.as_ref();
        let actions_filed = queued_actions(audit);
        let (outcome, exit) = (judgement.outcome, judgement.exit);
        let result = RunResult {
            id: self.run.id.clone(),
            goal: self.req.goal.clone(),
            source: self.req.signal.source.as_str().to_string(),
            subject: self.req.signal.subject.clone(),
            outcome,
            exit,
            exit_code: exit.code(),
            reason: judgement.reason.clone(),
            started: self.started,
            finished: OffsetDateTime::now_utc(),
            duration_ms: self.clock.elapsed().as_millis() as u64,
            agent_started: a.is_some(),
            cost_usd: a.map_or(0.0, |a| a.cost_usd),
            cost_source: Some(CostSource::of(a)),
            num_turns: a.map_or(0, |a| a.num_turns),
            permission_denials: a.map(|a| a.denials.clone()).unwrap_or_default(),
            policy_denials: policy_denials(audit),
            actions_filed,
            actions_expired: std::mem::take(&mut self.actions_expired),
            hook_errors: count_hook_errors(audit),
            failure: a.and_then(|a| a.failure.clone()),
            verdict: a.and_then(|a| a.verdict.clone()),
            failed_checks: judgement.failed_checks.clone(),
            regressions: judgement.regressions.clone(),
            state_changes: std::mem::take(&mut self.state_changes),
            rollback,
            change: self.change.clone(),
            session_id: a.map(|a| a.session_id.clone()).unwrap_or_default(),
            claude_exit_code: a.and_then(|a| a.exit_code),
        };
        self.run.write_json("result.json", &result)?;
        crate::engine::catalog::record(self.ledger, &result);
        self.ledger.event(
            "run_finished",
            Some(&self.run.id),
            serde_json::json!({
                "goal": result.goal, "outcome": result.outcome, "reason": result.reason,
                "cost_usd": result.cost_usd, "duration_ms": result.duration_ms,
                "denials": result.permission_denials.len(),
                "agent_started": result.agent_started,
                "cost_source": result.cost_source,
                "actions_expired": result.actions_expired,
            }),
        )?;
        Ok(RunReport::Done(Box::new(result)))
    }
}

fn redact_signal(redactor: &Redactor, signal: &mut Signal) {
    for v in signal
        .annotations
        .values_mut()
        .chain(signal.labels.values_mut())
    {
        *v = redactor.redact(v);
    }
    if let Ok(text) = serde_json::to_string(&signal.payload)
        && let Ok(v) = serde_json::from_str(&redactor.redact(&text))
    {
        signal.payload = v;
    }
}

/// Calls steward's hook could not decide (it blocked them): a crash, a timeout, an unreadable
/// policy, or a hook that died and left Claude's own rules to refuse the call.
pub(crate) fn count_hook_errors(audit: &[AuditEntry]) -> usize {
    audit
        .iter()
        .filter(|e| e.decision == "error" && e.reason != boundary::RAN_WITHOUT_HOOK)
        .count()
}

/// The pending actions a run's calls were queued as, each once: the same proposal made twice
/// is one action (filed once, its `proposals` counted up).
pub(crate) fn queued_actions(audit: &[AuditEntry]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in audit.iter().filter_map(boundary::filed_action) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Calls steward's hook denied or queued; the "waiting" line of a wait-mode call is not one.
pub(crate) fn policy_denials(audit: &[AuditEntry]) -> usize {
    audit
        .iter()
        .filter(|e| e.decision != "allow" && !boundary::is_intermediate(e))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_errors_exclude_breaches() {
        let entry = |decision: &str, reason: &str| AuditEntry {
            time: String::new(),
            session_id: None,
            tool_use_id: None,
            tool: "Bash".into(),
            input: serde_json::Value::Null,
            decision: decision.into(),
            rule: None,
            reason: reason.into(),
        };
        let audit = [
            entry("error", "steward policy hook could not decide"),
            entry("error", boundary::RAN_WITHOUT_HOOK),
            entry("deny", "no rule"),
        ];
        assert_eq!(count_hook_errors(&audit), 1);
    }
}
