//! Notifications: telling a human what needs them, beside the pipeline. Nothing in a run waits
//! on this: notices are derived afterwards from what steward already recorded (the event log,
//! read from a persisted cursor, and the approval and change stores), written to a persistent
//! outbox in `STATE/notify/` (one file per message per target), and delivered by a pass that
//! `steward serve` runs every few seconds (`steward notify flush` on hosts without the daemon).
//!
//! - `collect`: the record → notices (event, severity, dedup key, the message).
//! - `message`: one notice's text: what happened, the host, the command, the page link.
//! - `outbox`: the files, dedup by key per target, the states and attempts.
//! - `deliver`: one pass: retries with exponential backoff, age and attempt bounds, the rate
//!   limit; every attempt recorded.
//! - `send` / `email`: each kind's wire format (HTTP with a timeout and a bounded answer; SMTP).
//! - `secret`: credentials from files or the systemd credential `notify-<name>`.

mod collect;
mod deliver;
mod email;
mod message;
mod outbox;
mod secret;
mod send;

pub use collect::{collect, degraded_now, queue_stuck};
pub use deliver::{Delivered, deliver_due, send_now};
pub use message::{About, Message, Notice, host_name};
pub use outbox::{Attempt, DeliveryState, Outbox, Outgoing};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Ledger(#[from] crate::base::ledger::LedgerError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the approval store: {0}")]
    Approvals(#[from] crate::engine::approval::ApprovalError),
    #[error("the change store: {0}")]
    Changes(#[from] crate::engine::change::store::StoreError),
    #[error("no [[notify]] target named `{0}`")]
    UnknownTarget(String),
}

/// What one pass did, for the log, the metrics and `steward notify flush`.
#[derive(Debug, Default)]
pub struct PassReport {
    /// New messages written to the outbox.
    pub queued: usize,
    /// Each delivery attempt: target, and whether it was delivered.
    pub attempts: Vec<Delivered>,
}

/// One whole pass: notices from the record (and `extra`, such as the daemon's degraded state
/// that no record holds) into the outbox, then every message that is due (with `all_now`: every
/// pending one) is attempted. One pass
/// at a time per state directory (`STATE/notify/.lock`): `serve` and `steward notify flush`
/// never send the same message twice.
pub async fn pass(
    cfg: &Config,
    extra: Vec<Notice>,
    all_now: bool,
) -> Result<PassReport, NotifyError> {
    let mut report = PassReport::default();
    if cfg.notify.is_empty() {
        return Ok(report);
    }
    let outbox = Outbox::open(&cfg.state_dir)?;
    let path = outbox.root().join(".lock");
    let _lock = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::base::flock::lock_exclusive(&path)
    })
    .await
    .map_err(|e| NotifyError::Read {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?
    .map_err(|source| NotifyError::Read { path, source })?;
    let mut notices = collect(cfg, &outbox)?;
    notices.extend(extra);
    report.queued = outbox.enqueue(cfg, &notices)?;
    report.attempts = deliver_due(cfg, &outbox, all_now).await?;
    Ok(report)
}
