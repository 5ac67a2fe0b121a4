//! Whether the daemon can write its event log. A write that fails (a full disk) marks the daemon
//! degraded: `/healthz` answers 503 with the reason, so a monitor sees that alerts are being
//! refused (the webhooks answer 500 meanwhile, and nothing is queued without its record).
//!
//! The daemon recovers by itself: while degraded, the flusher tries once a second to write an
//! `event_log_recovered` event (when, why, how many writes failed). The first that succeeds
//! proves the log writable again and clears the mark; it is also the record of the outage.

use std::sync::Mutex;

use time::OffsetDateTime;

use crate::ledger::Ledger;

#[derive(Debug, Default)]
pub(super) struct Health {
    trouble: Mutex<Option<Trouble>>,
}

/// Since when the event log cannot be written, and why.
#[derive(Debug, Clone)]
pub(super) struct Trouble {
    pub reason: String,
    pub since: OffsetDateTime,
    /// Writes that failed since.
    pub failed: u64,
}

impl Health {
    fn trouble(&self) -> std::sync::MutexGuard<'_, Option<Trouble>> {
        self.trouble
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A write to the event log failed.
    pub fn failed(&self, reason: impl std::fmt::Display) {
        let reason = format!("the event log cannot be written: {reason}");
        let mut trouble = self.trouble();
        match trouble.as_mut() {
            Some(t) => {
                t.failed += 1;
                t.reason = reason;
            }
            None => {
                tracing::error!("{reason}: degraded until it can be written again");
                *trouble = Some(Trouble {
                    reason,
                    since: OffsetDateTime::now_utc(),
                    failed: 1,
                });
            }
        }
    }

    pub fn degraded(&self) -> Option<Trouble> {
        self.trouble().clone()
    }

    /// While degraded: tries to record the recovery; clears the mark when that was written and
    /// no write failed meanwhile.
    pub fn probe(&self, ledger: &Ledger) {
        let Some(seen) = self.degraded() else {
            return;
        };
        let data = serde_json::json!({
            "since": seen.since.format(&time::format_description::well_known::Rfc3339).ok(),
            "reason": seen.reason,
            "failed_writes": seen.failed,
        });
        if ledger.event("event_log_recovered", None, data).is_err() {
            return;
        }
        let mut trouble = self.trouble();
        if trouble.as_ref().is_some_and(|t| t.failed == seen.failed) {
            *trouble = None;
            tracing::warn!(
                failed_writes = seen.failed,
                "the event log can be written again: no longer degraded"
            );
        }
    }
}
