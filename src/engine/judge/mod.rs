//! Phase semantics as one pure function: given what the checks observed, what the agent's calls
//! did and what the agent said, derive the outcome. Deterministic and side-effect free so every
//! row of the table is testable.
//!
//! Order of the rules (the first that applies wins):
//!
//! 1. a static or preflight check fails → `aborted`, naming the checks; the agent never starts;
//! 2. the agent has not started, `model = "on_attention"`, every check given so far passes (or is
//!    unavailable) and no probe signals attention → `no_action`, no model call;
//! 3. the agent was not started (and 1–2 did not apply) → `failed`;
//! 4. the boundary was not proven → `aborted`; any other agent failure (no verdict) → `failed`;
//! 5. a post-action check fails → `failed`, whatever the model said; but when the agent changed
//!    nothing and its fix waits for approval (actions queued), and no invariant broke →
//!    `escalated`;
//! 6. an invariant that passed before fails after → `failed` (regression);
//! 7. actions were queued for approval → `escalated` (they wait for a human);
//! 8. verdict `fixed`, but no state-changing call ran and an attempt to act was held back
//!    (rejected or unanswered in wait mode, denied) → `escalated`: nothing was fixed;
//! 9. proposed actions in the verdict, or verdict `needs_attention` / `failed` → `escalated`;
//! 10. verdict `fixed` → `fixed`;
//! 11. verdict `ok` → `ok`, unless an invariant failed before and still fails → `escalated`.
//!
//! The rollback is decided beside the outcome: it runs only when the agent ran a state-changing
//! call (see [`acts`]) *and* a post-action check or invariant regressed (did not fail
//! before the run, fails after it). Otherwise it would undo what nobody did, such as an
//! operator's own last deploy.
//!
//! `unavailable` is never a failure, but every unavailable check is listed in the judgement.

use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::base::outcome::{ExitKind, Outcome};
use crate::engine::agent::{AgentFailure, AgentVerdict, VerdictStatus};

pub mod acts;

use crate::defs::check::{CheckResult, CheckStatus, ModelPolicy};
pub use acts::{Acts, NO_ACTS};

/// What happened to the agent.
#[derive(Debug, Clone, Copy)]
pub enum AgentRun<'a> {
    /// Not started (yet): the judge decides whether it may be.
    NotStarted,
    /// It ended without a verdict.
    Failed(&'a AgentFailure),
    Verdict(&'a AgentVerdict),
}

/// Everything the judge looks at. `post` holds the latest post-action results: before the agent
/// (for the deterministic-first decision, if the pipeline ran them up front) or after it;
/// `post_before` the ones observed before the agent, to tell a regression from an old failure.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub static_: &'a [CheckResult],
    pub preflight: &'a [CheckResult],
    pub invariants_before: &'a [CheckResult],
    pub invariants_after: &'a [CheckResult],
    pub post_before: &'a [CheckResult],
    pub post: &'a [CheckResult],
    pub agent: AgentRun<'a>,
    /// What the agent's tool calls did (empty when it did not run).
    pub acts: &'a Acts,
    pub model: ModelPolicy,
    /// The context needs a model's eyes: a probe failed, a check failed, the host snapshot shows
    /// something new (decided by the run's gathering stage).
    pub attention: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: Outcome,
    pub exit: ExitKind,
    /// One sentence for the operator, naming the checks that decided.
    pub reason: String,
    /// Run the goal's rollback command: the agent changed state and a check regressed.
    pub rollback: bool,
    /// Why the rollback runs or not; empty when the agent never started.
    #[serde(default)]
    pub rollback_reason: String,
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
        Judgement::outside_the_checks(Outcome::Escalated, ExitKind::NeedsHuman, reason)
    }

    /// Nothing for the model to do, decided before the run (e.g. a push that changes no file).
    pub fn no_action(reason: String) -> Judgement {
        Judgement::outside_the_checks(Outcome::NoAction, ExitKind::Ok, reason)
    }

    fn outside_the_checks(outcome: Outcome, exit: ExitKind, reason: String) -> Judgement {
        Judgement {
            outcome,
            exit,
            reason,
            rollback: false,
            rollback_reason: String::new(),
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

fn names(list: &[String]) -> String {
    list.iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Results that fail after and did not fail before (passed, were unavailable, or were not
/// observed: an unobserved check that fails counts the same way, loudly).
fn newly_failing(before: &[CheckResult], after: &[CheckResult]) -> Vec<String> {
    after
        .iter()
        .filter(|a| a.status.is_failure())
        .filter(|a| {
            !before
                .iter()
                .any(|b| b.name == a.name && b.status.is_failure())
        })
        .map(|a| a.name.clone())
        .collect()
}

impl Evidence<'_> {
    fn before_agent(&self) -> impl Iterator<Item = &CheckResult> {
        self.static_
            .iter()
            .chain(self.preflight)
            .chain(self.invariants_before)
            .chain(self.post)
    }

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
        let regressions = newly_failing(self.invariants_before, self.invariants_after);
        let mut still: Vec<String> = failing(self.invariants_after)
            .into_iter()
            .filter(|n| !regressions.contains(n))
            .collect();
        if self.invariants_after.is_empty() {
            // Not re-observed (e.g. the agent never ran): what failed before still stands.
            still = failing(self.invariants_before);
        }
        (regressions, still)
    }

    /// Whether the goal's rollback runs, and why (see the module docs).
    fn rollback_decision(&self) -> (bool, String) {
        let mut regressed = newly_failing(self.post_before, self.post);
        for n in self.invariant_changes().0 {
            if !regressed.contains(&n) {
                regressed.push(n);
            }
        }
        if regressed.is_empty() {
            let failing_now: Vec<String> = failing(self.post)
                .into_iter()
                .chain(failing(self.invariants_after))
                .collect();
            let why = if failing_now.is_empty() {
                "no post-action check or invariant fails".to_string()
            } else {
                format!(
                    "{} already failed before the run, so nothing the run did broke it",
                    names(&failing_now)
                )
            };
            return (false, why);
        }
        if !self.acts.changed_state() {
            let held = if self.acts.held_back() {
                format!(" (held back: {})", self.acts.describe_held_back())
            } else {
                String::new()
            };
            return (
                false,
                format!(
                    "{} regressed, but the agent ran no state-changing call{held}; a rollback \
                     would undo what nobody did",
                    names(&regressed),
                ),
            );
        }
        (
            true,
            format!(
                "{} passed before the run and failed after it, and the agent changed state: {}",
                names(&regressed),
                self.acts.changed.join("; ")
            ),
        )
    }

    fn base(&self, outcome: Outcome, exit: ExitKind, reason: String) -> Judgement {
        let (regressions, still_failing) = self.invariant_changes();
        Judgement {
            outcome,
            exit,
            reason,
            rollback: false,
            rollback_reason: String::new(),
            failed_checks: Vec::new(),
            regressions,
            still_failing,
            unavailable: self.unavailable(),
        }
    }

    /// The deterministic-first reason: passed and unavailable checks counted apart.
    fn no_action_reason(&self) -> String {
        let mut passed: Vec<&str> = Vec::new();
        for r in self.before_agent() {
            if r.status == CheckStatus::Pass && !passed.contains(&r.name.as_str()) {
                passed.push(&r.name);
            }
        }
        let unavailable = self.unavailable();
        if unavailable.is_empty() {
            format!(
                "no action: all {} check(s) passed, no probe needs attention and the host shows \
                 nothing new; the model was not called",
                passed.len()
            )
        } else {
            format!(
                "no action: {} check(s) passed, {} unavailable here ({}), none failed; no probe \
                 needs attention and the host shows nothing new; the model was not called",
                passed.len(),
                unavailable.len(),
                unavailable.join(", ")
            )
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
            return Some(ev.base(Outcome::NoAction, ExitKind::Ok, ev.no_action_reason()));
        }
    }
    None
}

/// The outcome of a run, and whether its rollback runs. Pure: the same evidence always gives
/// the same judgement.
pub fn judge(ev: &Evidence<'_>) -> Judgement {
    if let Some(j) = gate(ev) {
        return j;
    }
    let mut j = after_agent(ev);
    (j.rollback, j.rollback_reason) = ev.rollback_decision();
    j
}

/// After the agent ran, one rule after the other; the first that applies decides.
fn after_agent(ev: &Evidence<'_>) -> Judgement {
    let verdict = match agent_ended(ev) {
        ControlFlow::Continue(v) => v,
        ControlFlow::Break(j) => return j,
    };
    let (regressions, still) = ev.invariant_changes();
    if let Some(j) = post_failed(ev, verdict, &regressions) {
        return j;
    }
    if let Some(j) = regressed(ev, regressions) {
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
    queued(ev, verdict, &still_note)
        .or_else(|| fixed_without_change(ev, verdict, &still_note))
        .or_else(|| proposed_unfiled(ev, verdict, &still_note))
        .unwrap_or_else(|| by_status(ev, verdict, &still, &still_note))
}

/// The agent's verdict, or the judgement of an agent that never gave one.
fn agent_ended<'a>(ev: &Evidence<'a>) -> ControlFlow<Judgement, &'a AgentVerdict> {
    match ev.agent {
        AgentRun::NotStarted => ControlFlow::Break(ev.base(
            Outcome::Failed,
            ExitKind::AgentFailed,
            "the agent was not started although the checks allowed it".into(),
        )),
        AgentRun::Failed(AgentFailure::BoundaryNotProven { message }) => {
            ControlFlow::Break(ev.base(
                Outcome::Aborted,
                ExitKind::Aborted,
                format!("boundary not proven: {message}"),
            ))
        }
        AgentRun::Failed(f) => {
            let mut j = ev.base(
                Outcome::Failed,
                ExitKind::AgentFailed,
                format!("agent failed: {}", crate::engine::run::describe_failure(f)),
            );
            j.failed_checks = failing(ev.post);
            ControlFlow::Break(j)
        }
        AgentRun::Verdict(v) => ControlFlow::Continue(v),
    }
}

/// A failing post-action check overrules the agent, unless the fix waits for a human.
fn post_failed(
    ev: &Evidence<'_>,
    verdict: &AgentVerdict,
    regressions: &[String],
) -> Option<Judgement> {
    let acts = ev.acts;
    let post_failed = failing(ev.post);
    if post_failed.is_empty() {
        return None;
    }
    // The fix waits for a human, so its post-action checks cannot pass yet: an escalation,
    // not a failure. A broken invariant still fails the run.
    if !acts.changed_state() && !acts.queued.is_empty() && regressions.is_empty() {
        let mut j = ev.base(
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!(
                "{} action(s) wait for approval (`steward actions list`): {}; post-action \
                 check(s) still failing: {}",
                acts.queued.len(),
                acts.queued.join(", "),
                describe(ev.post, &post_failed)
            ),
        );
        j.failed_checks = post_failed;
        return Some(j);
    }
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
    Some(j)
}

/// An invariant that held before the run and fails after it fails the run.
fn regressed(ev: &Evidence<'_>, regressions: Vec<String>) -> Option<Judgement> {
    if regressions.is_empty() {
        return None;
    }
    let mut j = ev.base(
        Outcome::Failed,
        ExitKind::ValidationFailed,
        format!(
            "regression: invariant(s) {} held before the run and fail after it",
            describe(ev.invariants_after, &regressions)
        ),
    );
    j.failed_checks = regressions;
    Some(j)
}

/// Actions filed for approval: a human decides.
fn queued(ev: &Evidence<'_>, verdict: &AgentVerdict, still_note: &str) -> Option<Judgement> {
    let acts = ev.acts;
    if acts.queued.is_empty() {
        return None;
    }
    Some(ev.base(
        Outcome::Escalated,
        ExitKind::NeedsHuman,
        format!(
            "{} action(s) wait for approval (`steward actions list`): {}; the agent says `{}`: \
             {}{still_note}",
            acts.queued.len(),
            acts.queued.join(", "),
            status_str(&verdict.status),
            verdict.summary
        ),
    ))
}

/// `fixed` claimed while every state-changing call was held back: not fixed.
fn fixed_without_change(
    ev: &Evidence<'_>,
    verdict: &AgentVerdict,
    still_note: &str,
) -> Option<Judgement> {
    let acts = ev.acts;
    if !(verdict.status == VerdictStatus::Fixed && !acts.changed_state() && acts.held_back()) {
        return None;
    }
    Some(ev.base(
        Outcome::Escalated,
        ExitKind::NeedsHuman,
        format!(
            "not fixed: the agent reported `fixed`, but no state-changing call ran ({}): \
             {}{still_note}",
            acts.describe_held_back(),
            verdict.summary
        ),
    ))
}

/// Actions proposed only in the verdict, none filed: a human must look.
fn proposed_unfiled(
    ev: &Evidence<'_>,
    verdict: &AgentVerdict,
    still_note: &str,
) -> Option<Judgement> {
    if verdict.proposed_actions.is_empty() {
        return None;
    }
    Some(ev.base(
        Outcome::Escalated,
        ExitKind::NeedsHuman,
        format!(
            "needs a human: the agent proposes {} action(s) in its verdict, none filed for \
             approval (see `steward runs show`): {}{still_note}",
            verdict.proposed_actions.len(),
            verdict.summary
        ),
    ))
}

/// Nothing else applied: the agent's own status, with invariants that still fail keeping an
/// `ok` from standing.
fn by_status(
    ev: &Evidence<'_>,
    verdict: &AgentVerdict,
    still: &[String],
    still_note: &str,
) -> Judgement {
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

#[cfg(test)]
mod table;
