//! Who proposed an action, and what happens to an action when the reason for it goes away.
//!
//! One command on this host is one action. Each run that proposes it adds a contribution
//! (subject, the signal's fingerprint, rationale, goal, run, time); the same subject from the
//! same run counts once (its repeats only count up `proposals`). When an alert resolves, the
//! contributions of runs that acted on it are withdrawn from pending actions: an action nobody
//! else needs expires, one that still-firing subjects need stays pending for them. Approved
//! and decided actions are never touched: an operator's decision stands.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Action, ActionState, Proposal};

/// One proposal of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub subject: String,
    /// The fingerprint of the signal the proposing run acted on (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_fingerprint: Option<String>,
    pub rationale: String,
    pub goal: String,
    pub run_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Contribution {
    fn of(p: &Proposal, at: OffsetDateTime) -> Contribution {
        Contribution {
            subject: p.subject.clone(),
            signal_fingerprint: p.signal_fingerprint.clone(),
            rationale: p.rationale.clone(),
            goal: p.goal.clone(),
            run_id: p.run_id.clone(),
            at,
        }
    }

    /// Whether this contribution came from a run acting on the resolved alert: the same signal
    /// fingerprint, or, for records that carry none, the same subject.
    fn resolved_by(&self, signal_fingerprint: &str, subject: &str) -> bool {
        match &self.signal_fingerprint {
            Some(fp) => fp == signal_fingerprint,
            None => self.subject == subject,
        }
    }
}

/// What a resolved alert did to the pending actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolution {
    /// Expired: every contribution was withdrawn.
    pub expired: Vec<String>,
    /// Still pending for other subjects, without the resolved contribution.
    pub narrowed: Vec<String>,
}

/// A new pending action from its first proposal.
pub(super) fn first(id: String, p: Proposal, now: OffsetDateTime, ttl: time::Duration) -> Action {
    let contribution = Contribution::of(&p, now);
    Action {
        id,
        state: ActionState::Pending,
        subject: p.subject,
        argv: p.argv,
        rationale: p.rationale,
        checks: p.checks,
        state_fingerprint: p.state_fingerprint,
        goal: p.goal,
        run_id: p.run_id,
        rule: p.rule,
        created: now,
        expires: now + ttl,
        proposals: 1,
        decision: None,
        execution: None,
        executor: p.executor,
        contributions: vec![contribution],
        resolved: Vec::new(),
        expired_reason: None,
    }
}

/// Joins a proposal to the open action for the same command. The approval is re-checked
/// against the latest proposal's state (a fresh proposal confirms the command against the state
/// now), every contributing goal's post checks run after it, and a fresh proposal keeps the
/// action open for another lifetime.
pub(super) fn join(
    mut a: Action,
    p: &Proposal,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Action {
    a.proposals += 1;
    let seen = a
        .contributions
        .iter()
        .any(|c| c.subject == p.subject && c.run_id == p.run_id);
    if !seen {
        a.contributions.push(Contribution::of(p, now));
    }
    for check in &p.checks {
        if !a.checks.contains(check) {
            a.checks.push(check.clone());
        }
    }
    a.goal = p.goal.clone();
    a.state_fingerprint = p.state_fingerprint.clone();
    a.expires = a.expires.max(now + ttl);
    a
}

pub(super) enum Withdrawn {
    Untouched,
    Narrowed(Action),
    Expired(Action),
}

/// Withdraws the contributions the resolved alert accounts for.
pub(super) fn withdraw(
    mut a: Action,
    signal_fingerprint: &str,
    subject: &str,
    reason: &str,
) -> Withdrawn {
    let (gone, kept): (Vec<Contribution>, Vec<Contribution>) = a
        .contributions
        .clone()
        .into_iter()
        .partition(|c| c.resolved_by(signal_fingerprint, subject));
    if gone.is_empty() {
        return Withdrawn::Untouched;
    }
    if kept.is_empty() {
        a.expired_reason = Some(reason.to_string());
        return Withdrawn::Expired(a);
    }
    // The top-level fields describe a contribution that still stands.
    a.subject = kept[0].subject.clone();
    a.rationale = kept[0].rationale.clone();
    a.run_id = kept[0].run_id.clone();
    a.contributions = kept;
    a.resolved.extend(gone);
    Withdrawn::Narrowed(a)
}
