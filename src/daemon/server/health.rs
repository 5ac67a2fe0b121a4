//! Whether the daemon can write its event log. A write that fails (a full disk) marks the daemon
//! degraded: `/healthz` answers 503 with the reason, so a monitor sees that alerts are being
//! refused (the webhooks answer 500 meanwhile, and nothing is queued without its record).
//!
//! The daemon recovers by itself: while degraded, the flusher looks once a second whether there
//! is room again (it writes, fsyncs and removes a probe file of [`PROBE_BYTES`] beside the event
//! log: a small event may still fit in the last page of a day file while a batch does not), and
//! then writes an `event_log_recovered` event (since when, why, how many writes failed). Once
//! that is written the mark is cleared; the event is the record of the outage.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::base::ledger::Ledger;

/// The room a probe asks for: a batch of a few dozen routing events.
const PROBE_BYTES: usize = 64 * 1024;

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
        if let Err(e) = room(&ledger.root().join("events")) {
            tracing::debug!("the event log has no room yet: {e}");
            return;
        }
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

/// Whether `PROBE_BYTES` can be written (and made durable) beside the event log.
fn room(events: &Path) -> std::io::Result<()> {
    let path = events.join(".probe");
    let written = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_data()
    });
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}
