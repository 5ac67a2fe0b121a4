//! What the router decides for a signal ([`RoutingDecision`], with its reason in [`Routed`]),
//! the exit code a trigger gets for it, and the events that record it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::RouterError;
use crate::base::ledger::{EventBatch, Ledger, LedgerError};
use crate::base::outcome::ExitKind;
use crate::base::signal::{Severity, Signal};

// ---------------------------------------------------------------------------------------------
// Decisions.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    Source,
    Overall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlapKind {
    Acute,
    Chronic,
}

/// What the router did with one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RoutingDecision {
    Enqueue {
        goal: String,
        vars: BTreeMap<String, String>,
        job_id: String,
    },
    /// The fingerprint is already queued or running: the signal joined that job.
    Merged {
        into: String,
    },
    Cooldown {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    /// `notify`: the operator must be told now (once per scope per hour).
    RateLimited {
        scope: RateScope,
        count: u32,
        limit: u32,
        notify: bool,
    },
    /// `notify`: the operator must be told now (once per UTC day).
    OverBudget {
        spent: f64,
        budget: f64,
        notify: bool,
    },
    /// The subject failed `count` times in the window: a human must look; `escalate` is true
    /// when this signal filed the escalation and the operator notice (once per window per
    /// subject, so a flapping alert does not page on every repeat).
    Flapping {
        kind: FlapKind,
        count: u32,
        escalate: bool,
    },
    Maintenance {
        window: String,
    },
    Resolved {
        cancelled: Vec<String>,
        /// Pending actions that expired: only runs acting on this alert had proposed them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expired_actions: Vec<String>,
        /// Pending actions still-firing subjects need: only this alert's proposal was withdrawn.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        narrowed_actions: Vec<String>,
    },
    NoRoute,
}

impl RoutingDecision {
    pub fn name(&self) -> &'static str {
        match self {
            RoutingDecision::Enqueue { .. } => "enqueue",
            RoutingDecision::Merged { .. } => "merged",
            RoutingDecision::Cooldown { .. } => "cooldown",
            RoutingDecision::RateLimited { .. } => "rate_limited",
            RoutingDecision::OverBudget { .. } => "over_budget",
            RoutingDecision::Flapping { .. } => "flapping",
            RoutingDecision::Maintenance { .. } => "maintenance",
            RoutingDecision::Resolved { .. } => "resolved",
            RoutingDecision::NoRoute => "no_route",
        }
    }

    /// The exit code of a trigger whose signal got this decision (see [`exit_for`]).
    pub fn exit(&self) -> ExitKind {
        exit_for(self.name())
    }

    /// Whether this decision told the operator (an `operator_notice` event).
    pub fn told_operator(&self) -> bool {
        matches!(
            self,
            RoutingDecision::Flapping { escalate: true, .. }
                | RoutingDecision::RateLimited { notify: true, .. }
                | RoutingDecision::OverBudget { notify: true, .. }
        )
    }
}

/// The exit code for a trigger whose signal was decided `decision` (a decision's name, as the
/// daemon answers it): a signal that was not run because of flapping is `needs_human` (6); one
/// held back by steward's own limits (rate limits, the daily budget) is `limited` (7); no route
/// is a configuration problem (`usage`, 2); a routing error is `error` (1). Queued, merged,
/// cooldown, maintenance and resolved are deliberate and exit 0, their reason printed.
pub fn exit_for(decision: &str) -> ExitKind {
    match decision {
        "flapping" => ExitKind::NeedsHuman,
        "rate_limited" | "over_budget" => ExitKind::Limited,
        "no_route" => ExitKind::Usage,
        "enqueue" | "merged" | "cooldown" | "maintenance" | "resolved" => ExitKind::Ok,
        _ => ExitKind::Error,
    }
}

/// A decision with its reason and the route that matched (if one did).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Routed {
    #[serde(flatten)]
    pub decision: RoutingDecision,
    pub reason: String,
    pub route: Option<String>,
}

/// A batch's decisions (see [`Router::decide_all`]), and what writing their record returned.
#[derive(Debug)]
pub struct Decided<T> {
    pub decisions: Vec<Result<Routed, RouterError>>,
    pub written: T,
}

/// A resolved alert withdraws what runs acting on it proposed: pending actions only they
/// proposed expire, actions other subjects still need lose only this alert's contribution.
/// Approved actions are untouched (see `approval::contribution`).
pub(super) fn withdraw_actions(
    ledger: &Ledger,
    s: &Signal,
) -> Result<crate::engine::approval::Resolution, RouterError> {
    let reason = format!(
        "alert {} resolved (fingerprint {}) before anyone approved it",
        s.subject, s.fingerprint
    );
    Ok(
        crate::engine::approval::Store::open(ledger.root())?.resolve(
            &s.fingerprint,
            &s.subject,
            &reason,
        )?,
    )
}

/// Whether a signal says its alert resolved: the per-alert `status` of an Alertmanager payload.
pub fn is_resolved(s: &Signal) -> bool {
    s.payload.get("status").and_then(|v| v.as_str()) == Some("resolved")
}

/// The events of one decision: `routing` always, plus the escalation or operator notice it
/// filed.
pub(super) fn record(
    events: &mut EventBatch,
    signal: &Signal,
    routed: &Routed,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    // The decision's own fields go under `detail`: flattened, a field such as the flapping
    // `kind` would collide with the event's own keys.
    #[derive(Serialize)]
    struct Routing<'a> {
        source: &'a str,
        subject: &'a str,
        fingerprint: &'a str,
        severity: Severity,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        decision: &'a str,
        reason: &'a str,
        route: Option<&'a str>,
        detail: &'a RoutingDecision,
        /// The signal's fields cut to their bound (see `signal::bound`).
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        truncated: &'a [String],
    }
    events.add(
        "routing",
        None,
        &Routing {
            source: signal.source.as_str(),
            subject: &signal.subject,
            fingerprint: &signal.fingerprint,
            severity: signal.severity,
            at: now,
            decision: routed.decision.name(),
            reason: &routed.reason,
            route: routed.route.as_deref(),
            detail: &routed.decision,
            truncated: &signal.truncated,
        },
    )?;
    match &routed.decision {
        RoutingDecision::Flapping {
            escalate: true,
            kind,
            count,
        } => {
            let detail = serde_json::json!({
                "cause": "flapping", "flapping": kind, "count": count,
                "subject": signal.subject, "fingerprint": signal.fingerprint,
                "source": signal.source.as_str(), "reason": routed.reason,
            });
            events.add("escalation", None, &detail)?;
            events.add("operator_notice", None, &detail)
        }
        RoutingDecision::RateLimited {
            notify: true,
            scope,
            count,
            limit,
        } => events.add(
            "operator_notice",
            None,
            &serde_json::json!({
                "cause": "rate_limit", "scope": scope, "count": count, "limit": limit,
                "subject": signal.subject, "source": signal.source.as_str(),
                "reason": routed.reason,
            }),
        ),
        RoutingDecision::OverBudget {
            notify: true,
            spent,
            budget,
        } => events.add(
            "operator_notice",
            None,
            &serde_json::json!({
                "cause": "daily_budget", "spent_usd": spent, "budget_usd": budget,
                "reason": routed.reason,
            }),
        ),
        _ => Ok(()),
    }
}
