//! Phase semantics as one pure function: given what the checks observed and what the agent said,
//! derive the outcome. Deterministic and side-effect free so every row of the table is testable.
//!
//! Order of the rules (the first that applies wins):
//!
//! 1. a static or preflight check fails → `aborted`, naming the checks; the agent never starts;
//! 2. the agent has not started, `model = "on_attention"`, every check given so far passes (or is
//!    unavailable) and no probe signals attention → `no_action`, no model call;
//! 3. the agent was not started (and 1–2 did not apply) → `failed`;
//! 4. the boundary was not proven → `aborted`; any other agent failure (no verdict) → `failed`;
//! 5. a post-action check fails → `failed` with rollback, whatever the model said;
//! 6. an invariant that passed before fails after → `failed` (regression) with rollback;
//! 7. proposed actions, or verdict `needs_attention` / `failed` → `escalated`;
//! 8. verdict `fixed` → `fixed`;
//! 9. verdict `ok` → `ok`, unless an invariant failed before and still fails → `escalated`.
//!
//! `unavailable` is never a failure, but every unavailable check is listed in the judgement.

use serde::{Deserialize, Serialize};

use crate::agent::{AgentFailure, Verdict, VerdictStatus};
use crate::outcome::{ExitKind, Outcome};

use super::{CheckResult, CheckStatus};

/// Whether a goal calls the model when the deterministic checks say nothing is wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPolicy {
    /// Always call the model (once the static and preflight checks pass).
    #[default]
    Always,
    /// Deterministic first: only when a check fails or a probe signals attention.
    OnAttention,
}

/// What happened to the agent.
#[derive(Debug, Clone, Copy)]
pub enum AgentRun<'a> {
    /// Not started (yet): the judge decides whether it may be.
    NotStarted,
    /// It ended without a verdict.
    Failed(&'a AgentFailure),
    Verdict(&'a Verdict),
}

/// Everything the judge looks at. `post` holds the latest post-action results: before the agent
/// (for the deterministic-first decision, if the pipeline ran them up front) or after it.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub static_: &'a [CheckResult],
    pub preflight: &'a [CheckResult],
    pub invariants_before: &'a [CheckResult],
    pub invariants_after: &'a [CheckResult],
    pub post: &'a [CheckResult],
    pub agent: AgentRun<'a>,
    pub model: ModelPolicy,
    /// Some probe's output needs attention (decided by the probe layer).
    pub attention: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: Outcome,
    pub exit: ExitKind,
    /// One sentence for the operator, naming the checks that decided.
    pub reason: String,
    /// Run the goal's rollback command.
    pub rollback: bool,
    /// Checks that failed (fail or error) in the phase that decided the outcome.
    pub failed_checks: Vec<String>,
    /// Invariants that passed before and fail after.
    pub regressions: Vec<String>,
    /// Invariants that failed before and still fail: not the run's fault, but not `ok` either.
    pub still_failing: Vec<String>,
    /// Reported, never counted as failures.
    pub unavailable: Vec<String>,
}

impl Judgement {
    /// A human must decide, for a reason outside the checks (e.g. repeated failures).
    pub fn escalated(reason: String) -> Judgement {
        Judgement {
            outcome: Outcome::Escalated,
            exit: ExitKind::NeedsHuman,
            reason,
            rollback: false,
            failed_checks: Vec::new(),
            regressions: Vec::new(),
            still_failing: Vec::new(),
            unavailable: Vec::new(),
        }
    }
}

fn failing(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.status.is_failure())
        .map(|r| r.name.clone())
        .collect()
}

fn describe(results: &[CheckResult], names: &[String]) -> String {
    names
        .iter()
        .map(|n| {
            let detail = results
                .iter()
                .find(|r| &r.name == n)
                .and_then(|r| r.detail.as_deref())
                .unwrap_or("");
            if detail.is_empty() {
                format!("`{n}`")
            } else {
                format!("`{n}` ({detail})")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Evidence<'_> {
    fn unavailable(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self
            .static_
            .iter()
            .chain(self.preflight)
            .chain(self.invariants_before)
            .chain(self.invariants_after)
            .chain(self.post)
        {
            if r.status == CheckStatus::Unavailable && !out.contains(&r.name) {
                out.push(r.name.clone());
            }
        }
        out
    }

    /// (regressions, still failing): invariants matched by name between before and after.
    fn invariant_changes(&self) -> (Vec<String>, Vec<String>) {
        let mut regressions = Vec::new();
        let mut still = Vec::new();
        for after in self
            .invariants_after
            .iter()
            .filter(|r| r.status.is_failure())
        {
            match self.invariants_before.iter().find(|b| b.name == after.name) {
                Some(before) if before.status.is_failure() => still.push(after.name.clone()),
                // Passed or was unavailable before and fails now: the run broke it. An
                // invariant never observed before counts the same way (fail loudly).
                _ => regressions.push(after.name.clone()),
            }
        }
        if self.invariants_after.is_empty() {
            // Not re-observed (e.g. the agent never ran): what failed before still stands.
            still = failing(self.invariants_before);
        }
        (regressions, still)
    }

    fn base(&self, outcome: Outcome, exit: ExitKind, reason: String) -> Judgement {
        let (regressions, still_failing) = self.invariant_changes();
        Judgement {
            outcome,
            exit,
            reason,
            rollback: false,
            failed_checks: Vec::new(),
            regressions,
            still_failing,
            unavailable: self.unavailable(),
        }
    }
}

/// The decision before the agent starts: `Some` (aborted or no_action) means do not start it.
pub fn gate(ev: &Evidence<'_>) -> Option<Judgement> {
    let mut blocking = failing(ev.static_);
    blocking.extend(failing(ev.preflight));
    if !blocking.is_empty() {
        let all: Vec<CheckResult> = ev.static_.iter().chain(ev.preflight).cloned().collect();
        let mut j = ev.base(
            Outcome::Aborted,
            ExitKind::Aborted,
            format!(
                "aborted before the agent: {} failed",
                describe(&all, &blocking)
            ),
        );
        j.failed_checks = blocking;
        return Some(j);
    }
    // Only before the agent: once it has run, its work is judged, even if the checks it was
    // called for are green now (that is what `fixed` means).
    if ev.model == ModelPolicy::OnAttention
        && !ev.attention
        && matches!(ev.agent, AgentRun::NotStarted)
    {
        let any_failure = [ev.invariants_before, ev.post]
            .iter()
            .any(|rs| rs.iter().any(|r| r.status.is_failure()));
        if !any_failure {
            let n =
                ev.static_.len() + ev.preflight.len() + ev.invariants_before.len() + ev.post.len();
            let unavailable = ev.unavailable();
            let mut reason = format!(
                "no action: all {n} check(s) green and no probe needs attention; the model was not called"
            );
            if !unavailable.is_empty() {
                reason.push_str(&format!(" ({} unavailable here)", unavailable.join(", ")));
            }
            return Some(ev.base(Outcome::NoAction, ExitKind::Ok, reason));
        }
    }
    None
}

/// The outcome of a run. Pure: the same evidence always gives the same judgement.
pub fn judge(ev: &Evidence<'_>) -> Judgement {
    if let Some(j) = gate(ev) {
        return j;
    }
    let verdict = match ev.agent {
        AgentRun::NotStarted => {
            return ev.base(
                Outcome::Failed,
                ExitKind::AgentFailed,
                "the agent was not started although the checks allowed it".into(),
            );
        }
        AgentRun::Failed(AgentFailure::BoundaryNotProven { message }) => {
            return ev.base(
                Outcome::Aborted,
                ExitKind::Aborted,
                format!("boundary not proven: {message}"),
            );
        }
        AgentRun::Failed(f) => {
            let mut j = ev.base(
                Outcome::Failed,
                ExitKind::AgentFailed,
                format!("agent failed: {}", crate::run::describe_failure(f)),
            );
            // If post checks were still run and fail, the agent may have left a change behind.
            j.failed_checks = failing(ev.post);
            j.rollback = !j.failed_checks.is_empty() || !j.regressions.is_empty();
            return j;
        }
        AgentRun::Verdict(v) => v,
    };

    let post_failed = failing(ev.post);
    if !post_failed.is_empty() {
        let mut j = ev.base(
            Outcome::Failed,
            ExitKind::ValidationFailed,
            format!(
                "post-action check(s) failed: {} (the agent said `{}`; a failing check overrules it)",
                describe(ev.post, &post_failed),
                status_str(&verdict.status)
            ),
        );
        j.failed_checks = post_failed;
        j.rollback = true;
        return j;
    }

    let (regressions, still) = ev.invariant_changes();
    if !regressions.is_empty() {
        let mut j = ev.base(
            Outcome::Failed,
            ExitKind::ValidationFailed,
            format!(
                "regression: invariant(s) {} held before the run and fail after it",
                describe(ev.invariants_after, &regressions)
            ),
        );
        j.failed_checks = regressions;
        // Undoing the run's change is exactly what rollback is for.
        j.rollback = true;
        return j;
    }
    let still_note = if still.is_empty() {
        String::new()
    } else {
        format!(
            "; invariant(s) {} already failed before the run and still fail",
            describe(ev.invariants_after, &still)
        )
    };

    if !verdict.proposed_actions.is_empty() {
        return ev.base(
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!(
                "needs a human: {} proposed action(s) await approval: {}{still_note}",
                verdict.proposed_actions.len(),
                verdict.summary
            ),
        );
    }
    match verdict.status {
        VerdictStatus::NeedsAttention => ev.base(
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!("needs a human: {}{still_note}", verdict.summary),
        ),
        VerdictStatus::Failed => ev.base(
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!(
                "the agent could not complete the goal: {}{still_note}",
                verdict.summary
            ),
        ),
        VerdictStatus::Fixed => ev.base(
            Outcome::Fixed,
            ExitKind::Ok,
            format!(
                "fixed, post-action checks pass: {}{still_note}",
                verdict.summary
            ),
        ),
        VerdictStatus::Ok if !still.is_empty() => ev.base(
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!("cannot be ok: {}{still_note}", verdict.summary),
        ),
        VerdictStatus::Ok => ev.base(Outcome::Ok, ExitKind::Ok, verdict.summary.clone()),
    }
}

fn status_str(s: &VerdictStatus) -> &'static str {
    match s {
        VerdictStatus::Ok => "ok",
        VerdictStatus::Fixed => "fixed",
        VerdictStatus::NeedsAttention => "needs_attention",
        VerdictStatus::Failed => "failed",
    }
}
