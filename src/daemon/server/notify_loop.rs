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
    // The key of the degraded notice sent straight from memory, so it is sent once.
    let mut told_directly: Option<String> = None;
    loop {
        let cfg = shared.config();
        if !cfg.notify.is_empty() {
            let degraded = shared
                .health
                .degraded()
                .map(|t| notify::degraded_now(&t.reason, t.since));
            let mut extra: Vec<notify::Notice> = degraded.clone().into_iter().collect();
            extra.extend(stuck_jobs(&shared, &cfg));
            tokio::select! {
                done = notify::pass(&cfg, extra, first) => match done {
                    Ok(report) => count(&shared, &report),
                    Err(e) => {
                        tracing::error!("notification pass failed: {e}");
                        if let Some(n) = degraded.filter(|n| told_directly.as_ref() != Some(&n.key)) {
                            tell_directly(&shared, &cfg, &n).await;
                            told_directly = Some(n.key);
                        }
                    }
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

/// Jobs queued or running longer than `serve.stuck_secs` (none while the worker is paused on
/// purpose).
fn stuck_jobs(shared: &Shared, cfg: &crate::config::Config) -> Vec<notify::Notice> {
    if cfg.serve.paused {
        return Vec::new();
    }
    let Ok(jobs) = shared.queue.list() else {
        return Vec::new();
    };
    let now = time::OffsetDateTime::now_utc();
    let limit = i64::try_from(cfg.serve.stuck_secs).unwrap_or(i64::MAX);
    jobs.iter()
        .filter_map(|j| {
            let (what, since) = match j.state {
                crate::daemon::queue::JobState::Running => {
                    ("running", j.started.unwrap_or(j.updated))
                }
                crate::daemon::queue::JobState::Queued => ("queued", j.enqueued),
                _ => return None,
            };
            let secs = (now - since).whole_seconds();
            (secs > limit).then(|| notify::queue_stuck(&j.id, &j.signal.subject, what, secs))
        })
        .collect()
}

/// The outbox cannot be written (the disk that degraded the daemon is full): the degraded notice
/// goes to its targets from memory, one attempt each, and what came of it is logged.
async fn tell_directly(shared: &Shared, cfg: &crate::config::Config, n: &notify::Notice) {
    let redactor = crate::base::redact::Redactor::new(cfg.known_secrets());
    let message = notify::Message::new(
        n,
        &notify::host_name(),
        cfg.serve.public_url.as_deref(),
        &redactor,
    );
    for t in cfg.notify.iter().filter(|t| t.wants(&n.event, n.severity)) {
        let attempt = notify::send_now(cfg, t, &message).await;
        shared.metrics.notified(&t.name, attempt.ok);
        match &attempt.error {
            None => {
                tracing::warn!(target_name = %t.name, "told {} from memory (the outbox cannot be written)", n.event)
            }
            Some(e) => {
                tracing::error!(target_name = %t.name, "could not tell {} from memory: {e}", n.event)
            }
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
