//! The queue worker: one job at a time, while the daemon is not paused and its records can be
//! written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::shared::Shared;
use super::upkeep;
use crate::base::cancel::Cancel;
use crate::daemon::queue::{self, JobState, Queue};
use crate::engine::agent::QuietObserver;

/// Runs queued jobs one at a time until `stop` turns true (checked between jobs only: stopping a
/// run is the caller's decision, through `cancel`, or by dropping this future).
pub(super) async fn worker(
    shared: Arc<Shared>,
    queue: Queue,
    mut stop: watch::Receiver<bool>,
    cancel: Cancel,
) {
    let mut observer = QuietObserver;
    loop {
        if *stop.borrow() {
            return;
        }
        let cfg = shared.config();
        let poll = Duration::from_secs(cfg.serve.poll_secs);
        let mut idle = true;
        // No run starts while its record cannot be written (a full disk): the jobs wait.
        if !cfg.serve.paused && shared.health.degraded().is_none() {
            match queue::work_one_until(&cfg, &queue, &mut observer, cancel.clone()).await {
                Ok(Some(w)) => {
                    shared.metrics.worked(&w);
                    if let Some((spent, budget)) = w.over_budget {
                        shared.budget_spent(&w.job.id, spent, budget);
                    }
                    upkeep::log_job(&w);
                    // A requeued job met a busy host lock: wait before trying again.
                    idle = w.job.state == JobState::Queued;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("the queue worker failed: {e}");
                    shared.event("worker_error", serde_json::json!({"reason": e.to_string()}));
                }
            }
        }
        if idle {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
            // A process that died while it ran a job (an inline trigger) leaves it `running`:
            // its claim lock says so, and the job is queued again.
            shared.requeue_orphans();
        }
    }
}
