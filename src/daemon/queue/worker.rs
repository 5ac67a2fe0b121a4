//! The queue's worker: claims the next job, checks the daily budget, records the start, runs the
//! job's goal and settles the job by what became of the run.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Job, JobOutcome, JobState, Queue, QueueError};
use crate::base::cancel::Cancel;
use crate::base::ledger::LedgerError;
use crate::config::Config;
use crate::engine::agent::Observer;
use crate::engine::run::{self, RunReport, RunRequest};

/// What the worker did with one job.
#[derive(Debug)]
pub struct Worked {
    pub job: Job,
    /// The run's report, when `run::execute` got that far.
    pub report: Option<RunReport>,
    /// Why there is no report (steward could not carry the job out, or the host stayed busy).
    pub error: Option<String>,
    /// `(spent, budget)` when the job was cancelled because the daily budget is spent: the
    /// daemon tells the operator (once a day).
    pub over_budget: Option<(f64, f64)>,
}

impl Worked {
    /// A job that ended without a run report, for `reason`.
    fn without_report(job: Job, reason: String) -> Worked {
        Worked {
            job,
            report: None,
            error: Some(reason),
            over_budget: None,
        }
    }
}

/// Claims the next job (skipping subjects in a maintenance window), runs it, records it. Over
/// the daily budget the claimed job is cancelled instead (with an event): no run starts.
///
/// The host lock is the one the CLI uses: `run::execute` takes it itself, waiting up to
/// `router.lock_wait_secs`. Taking it here as well would deadlock, since `flock` locks belong to
/// an open file and a second open in the same process conflicts with the first. If the lock
/// stays busy past the wait, the job goes back to the queue. The run's `cost_usd` lands in its
/// `result.json`, which is where the router's daily budget reads spend from.
pub async fn work_one(
    cfg: &Config,
    queue: &Queue,
    observer: &mut dyn Observer,
) -> Result<Option<Worked>, QueueError> {
    work_one_until(cfg, queue, observer, Cancel::never()).await
}

/// [`work_one`], stoppable: a run stopped by `cancel` (the daemon is stopping) is recorded
/// `cancelled` by `run::execute_until`, and its job goes back to the queue, since the daemon
/// stopping is not the job failing.
pub async fn work_one_until(
    cfg: &Config,
    queue: &Queue,
    observer: &mut dyn Observer,
    cancel: Cancel,
) -> Result<Option<Worked>, QueueError> {
    let now = OffsetDateTime::now_utc();
    let Some(job) = claim(cfg, queue, now)? else {
        return Ok(None);
    };
    if let Some(worked) = refuse_over_budget(cfg, queue, &job, now)? {
        return Ok(Some(worked));
    }
    record_start(queue, &job)?;
    let req = RunRequest {
        goal: job.goal.clone(),
        vars: job.vars.clone(),
        signal: job.signal.clone(),
        dry_run: false,
        force_model: false,
        no_model: None,
        lock_wait: Duration::from_secs(cfg.router.lock_wait_secs),
    };
    let ran = run::execute_until(cfg, &req, observer, cancel).await;
    settle(queue, job, ran).map(Some)
}

/// The next queued job whose subject is in no maintenance window, claimed.
fn claim(cfg: &Config, queue: &Queue, now: OffsetDateTime) -> Result<Option<Job>, QueueError> {
    let maintenance = crate::config::maintenance::Maintenance::compile(&cfg.router.maintenance)?;
    queue.claim_next_where(now, |j| {
        maintenance.active(&j.signal.subject, now).is_none()
    })
}

/// Over the daily budget no run starts, whenever the job was queued: the job is cancelled.
fn refuse_over_budget(
    cfg: &Config,
    queue: &Queue,
    job: &Job,
    now: OffsetDateTime,
) -> Result<Option<Worked>, QueueError> {
    let spent = crate::engine::run_index::spent_on_day(queue.ledger(), now)?;
    if spent < cfg.router.daily_budget_usd {
        return Ok(None);
    }
    let reason = format!(
        "today's runs cost ${spent:.4}, the daily budget is ${:.2}: not started",
        cfg.router.daily_budget_usd
    );
    let job = queue.cancel(job, &reason, now)?;
    Ok(Some(Worked {
        over_budget: Some((spent, cfg.router.daily_budget_usd)),
        ..Worked::without_report(job, reason)
    }))
}

/// `job_started`. No run starts without its record (a full disk): the job goes back to the queue.
fn record_start(queue: &Queue, job: &Job) -> Result<(), QueueError> {
    if let Err(e) = queue.ledger().event(
        "job_started",
        None,
        serde_json::json!({"job": job.id, "goal": job.goal, "subject": job.signal.subject,
            "fingerprint": job.signal.fingerprint, "attempt": job.attempts}),
    ) {
        queue.put_back(job, &format!("its start could not be recorded: {e}"));
        return Err(e.into());
    }
    Ok(())
}

/// What the run's result makes of the job: a cancelled run (the daemon stopping) or a busy host
/// lock puts it back in the queue, a report finishes it `done`, any other error `failed`.
fn settle(
    queue: &Queue,
    job: Job,
    ran: Result<RunReport, run::RunError>,
) -> Result<Worked, QueueError> {
    match ran {
        Ok(RunReport::Done(r)) if r.outcome == crate::base::outcome::Outcome::Cancelled => {
            let reason = format!(
                "the daemon stopped during run {} (recorded `cancelled`); back in the queue",
                r.id
            );
            queue.requeue(&job, &reason, OffsetDateTime::now_utc())?;
            Ok(Worked {
                report: Some(RunReport::Done(r)),
                ..Worked::without_report(requeued(job), reason)
            })
        }
        Err(e @ run::RunError::Cancelled { .. }) => {
            let reason = format!("{e}; back in the queue");
            queue.requeue(&job, &reason, OffsetDateTime::now_utc())?;
            Ok(Worked::without_report(requeued(job), reason))
        }
        Ok(report) => {
            let job = queue.finish(&job, outcome_of(&report), OffsetDateTime::now_utc())?;
            Ok(Worked {
                job,
                report: Some(report),
                error: None,
                over_budget: None,
            })
        }
        Err(run::RunError::Ledger(e @ LedgerError::Busy { .. })) => {
            let reason = e.to_string();
            queue.requeue(&job, &reason, OffsetDateTime::now_utc())?;
            Ok(Worked::without_report(job, reason))
        }
        Err(e) => {
            let reason = e.to_string();
            let failed = JobOutcome {
                state: JobState::Failed,
                run_id: None,
                outcome: None,
                reason: reason.clone(),
                cost_usd: 0.0,
            };
            let job = queue.finish(&job, failed, OffsetDateTime::now_utc())?;
            Ok(Worked::without_report(job, reason))
        }
    }
}

/// The job as it is back in the queue.
fn requeued(job: Job) -> Job {
    Job {
        state: JobState::Queued,
        ..job
    }
}

/// A finished run's report as the job's outcome.
fn outcome_of(report: &RunReport) -> JobOutcome {
    match report {
        RunReport::Done(r) => JobOutcome {
            state: JobState::Done,
            run_id: Some(r.id.clone()),
            outcome: Some(r.outcome.to_string()),
            reason: r.reason.clone(),
            cost_usd: r.cost_usd,
        },
        RunReport::Planned(_) => JobOutcome {
            state: JobState::Done,
            run_id: None,
            outcome: None,
            reason: "planned only".into(),
            cost_usd: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::{T0, events, sig};
    use super::*;
    use crate::base::ledger::Ledger;

    #[tokio::test]
    async fn worker_records_a_job_steward_cannot_run() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            state_dir: dir.path().to_path_buf(),
            workspace: dir.path().to_path_buf(),
            ..Config::default()
        };
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "no-such-goal", BTreeMap::new(), T0)
            .unwrap();
        let worked = work_one(&cfg, &q, &mut crate::engine::agent::QuietObserver)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(worked.job.state, JobState::Failed);
        assert!(worked.report.is_none());
        let err = worked.error.unwrap();
        assert!(err.contains("no-such-goal"), "{err}");
        assert!(q.list().unwrap().is_empty());
        assert_eq!(events(dir.path(), "job_finished"), 1);
        // Nothing left to do.
        assert!(
            work_one(&cfg, &q, &mut crate::engine::agent::QuietObserver)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn worker_shares_the_cli_host_lock_and_requeues_when_busy() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            state_dir: dir.path().to_path_buf(),
            workspace: dir.path().to_path_buf(),
            ..Config::default()
        };
        cfg.router.lock_wait_secs = 0;
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "health-check", BTreeMap::new(), T0)
            .unwrap();
        // A one-shot CLI run holds the host lock.
        let guard = Ledger::open(dir.path())
            .unwrap()
            .lock("cli run", Duration::ZERO)
            .unwrap();
        let worked = work_one(&cfg, &q, &mut crate::engine::agent::QuietObserver)
            .await
            .unwrap()
            .unwrap();
        drop(guard);
        assert!(worked.report.is_none());
        assert!(worked.error.unwrap().contains("another steward run"));
        let jobs = q.list().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, JobState::Queued);
        assert_eq!(events(dir.path(), "job_requeued"), 1);
        // No run was recorded.
        assert!(
            Ledger::open(dir.path())
                .unwrap()
                .run_ids()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn worker_starts_nothing_over_the_daily_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            state_dir: dir.path().to_path_buf(),
            workspace: dir.path().to_path_buf(),
            ..Config::default()
        };
        let now = OffsetDateTime::now_utc();
        let id = format!(
            "{:04}{:02}{:02}T000000Z-incident-abcdef",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let run = dir.path().join("runs").join(id);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("result.json"), r#"{"cost_usd": 6.0}"#).unwrap();
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "health-check", BTreeMap::new(), T0)
            .unwrap();
        let worked = work_one(&cfg, &q, &mut crate::engine::agent::QuietObserver)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(worked.job.state, JobState::Cancelled);
        assert!(worked.error.unwrap().contains("daily budget"));
        assert!(q.list().unwrap().is_empty());
        assert_eq!(events(dir.path(), "job_cancelled"), 1);
        assert_eq!(
            Ledger::open(dir.path()).unwrap().run_ids().unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn worker_leaves_jobs_in_a_maintenance_window_queued() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            state_dir: dir.path().to_path_buf(),
            workspace: dir.path().to_path_buf(),
            ..Config::default()
        };
        cfg.router.maintenance = vec![crate::config::MaintenanceWindow {
            start: Some("2000-01-01T00:00:00Z".into()),
            end: Some("2999-01-01T00:00:00Z".into()),
            ..Default::default()
        }];
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let worked = work_one(&cfg, &q, &mut crate::engine::agent::QuietObserver)
            .await
            .unwrap();
        assert!(worked.is_none());
        assert_eq!(q.list().unwrap()[0].state, JobState::Queued);
    }
}
