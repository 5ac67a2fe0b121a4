//! The daemon's notification pass (`daemon::notify::pass`) every [`NOTIFY_EVERY`], beside the
//! worker: it reads what runs recorded, so no run waits on a delivery. It also tells the
//! daemon's degraded state, which only lives in memory (a full disk cannot record it), and
//! counts deliveries and failures by target for `/metrics`. The first pass after the start
//! attempts every undelivered message at once; a stop ends a pass in the middle (each attempt
//! is written when it ends, so an interrupted one is simply made again at the next start).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::shared::Shared;
use crate::daemon::notify::{self, PassReport};

/// How often the pass runs.
const NOTIFY_EVERY: Duration = Duration::from_secs(2);

pub(super) async fn notify_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut first = true;
    loop {
        let cfg = shared.config();
        if !cfg.notify.is_empty() {
            let extra = shared
                .health
                .degraded()
                .map(|t| notify::degraded_now(&t.reason, t.since))
                .into_iter()
                .collect();
            tokio::select! {
                done = notify::pass(&cfg, extra, first) => match done {
                    Ok(report) => count(&shared, &report),
                    Err(e) => tracing::error!("notification pass failed: {e}"),
                },
                _ = stop.changed() => {}
            }
            first = false;
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(NOTIFY_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

fn count(shared: &Shared, report: &PassReport) {
    for d in &report.attempts {
        shared.metrics.notified(&d.target, d.ok);
        if !d.ok {
            tracing::warn!(target_name = %d.target, key = %d.key, state = ?d.state,
                "notification not delivered: {}",
                d.error.as_deref().unwrap_or("no reason recorded"));
        }
    }
}
