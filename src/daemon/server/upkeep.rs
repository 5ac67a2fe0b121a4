//! The daemon's housekeeping: a log line per job that says what became of it, and the daily
//! retention pass of `[retention]`.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::shared::Shared;
use crate::daemon::queue::{JobState, Worked};
use crate::engine::run::RunReport;

/// How often the retention pass runs (after the one at start).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

/// One line per ended job, at info level when a run recorded it (whatever its outcome), at warn
/// when steward could not carry the job out: the journal then says what happened without
/// opening the ledger.
pub(super) fn log_job(w: &Worked) {
    let job = &w.job;
    match (&w.report, &w.error) {
        (Some(RunReport::Done(r)), _) => tracing::info!(
            job = %job.id,
            goal = %job.goal,
            subject = %job.signal.subject,
            outcome = %r.outcome,
            exit = r.exit_code,
            run = %r.id,
            actions = %r.actions_filed.join(","),
            "job ended: run {} {} ({}){}",
            r.id,
            r.outcome,
            r.reason,
            if r.actions_filed.is_empty() {
                String::new()
            } else {
                format!("; actions filed: {}", r.actions_filed.join(", "))
            }
        ),
        (Some(RunReport::Planned(_)), _) => {
            tracing::info!(job = %job.id, goal = %job.goal, "job ended: planned only, no run")
        }
        (None, error) => {
            let why = error.as_deref().unwrap_or("no reason recorded");
            if job.state == JobState::Queued {
                tracing::warn!(job = %job.id, goal = %job.goal, "job put back in the queue: {why}");
            } else {
                tracing::warn!(job = %job.id, goal = %job.goal, state = ?job.state,
                    "job ended without a run: {why}");
            }
        }
    }
}

/// `[retention] runs_days`: prunes at start and then once a day until `stop`. A pass that fails
/// is logged and recorded (`retention_failed`); the next day tries again.
pub(super) async fn retention(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let days = shared.config().retention.runs_days;
        if days > 0 {
            prune_once(&shared, days).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn prune_once(shared: &Arc<Shared>, days: u32) {
    let ledger = shared.ledger.clone();
    let queue = shared.queue.clone();
    let age = time::Duration::days(i64::from(days));
    let pass = tokio::task::spawn_blocking(move || {
        crate::daemon::retention::prune(&ledger, &queue, age, OffsetDateTime::now_utc(), false)
    })
    .await;
    match pass {
        Ok(Ok(mut p)) => {
            tracing::info!(
                removed = p.removed.len(),
                kept = p.kept.len(),
                event_days = p.event_days_removed.len(),
                "retention: runs older than {days} days pruned"
            );
            let path_env = shared.config().change_path().to_string();
            let branches =
                crate::daemon::retention::prune_change_branches(&shared.ledger, &path_env, &mut p);
            if let Err(e) = branches.await {
                tracing::error!("retention: change branches not pruned: {e}");
                shared.event(
                    "retention_failed",
                    serde_json::json!({"runs_days": days, "reason": format!("change branches: {e}")}),
                );
            }
        }
        Ok(Err(e)) => {
            tracing::error!("retention pass failed: {e}");
            shared.event(
                "retention_failed",
                serde_json::json!({"runs_days": days, "reason": e.to_string()}),
            );
        }
        Err(e) => tracing::error!("retention pass did not finish: {e}"),
    }
}
