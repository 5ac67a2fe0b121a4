//! A trigger's signal when no daemon is running (`steward trigger timer|on-failure` without
//! `steward serve`): it is routed by the same router the daemon uses, so dedup, maintenance
//! windows, flapping, cooldowns, rate limits and the daily budget apply the same way and every
//! decision is the same `routing` event. When the router queues the signal (or it joins a queued
//! job that no daemon is there to run), the job is claimed and run here and now, under the host
//! lock, and finished in the queue like the daemon's worker would.
//!
//! Routing takes `STATE/router.lock` from loading `router.json` to writing it back, so two
//! triggers firing at once (a timer and a failing unit) never lose each other's windows.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use crate::base::signal::Signal;
use crate::config::Config;
use crate::daemon::queue::{Job, JobOutcome, JobState, Queue, QueueError};
use crate::daemon::router::{Routed, Router, RouterError, RoutingDecision};
use crate::engine::agent::Observer;
use crate::engine::run::{self, RunError, RunReport, RunRequest};

#[derive(Debug, thiserror::Error)]
pub enum InlineError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Ledger(#[from] crate::base::ledger::LedgerError),
    #[error("cannot lock {path}: {message}")]
    Lock { path: String, message: String },
    #[error("the router gave no decision for the signal")]
    NoDecision,
}

/// What became of the signal.
#[derive(Debug)]
pub enum Inline {
    /// Not run here: the decision says why (held back, merged into a job another process runs,
    /// cooldown, …).
    NotRun(Routed),
    /// Routed to a job and run.
    Ran {
        routed: Routed,
        job: Box<Job>,
        report: RunReport,
    },
}

/// How the job runs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// How long to wait for another run holding the host lock.
    pub lock_wait: Duration,
    pub force_model: bool,
}

/// Routes `signal` and, when that gives a job to run, runs it.
pub async fn route_and_run(
    cfg: &Config,
    signal: &Signal,
    opts: RunOptions,
    observer: &mut dyn Observer,
    cancel: crate::base::cancel::Cancel,
) -> Result<Inline, InlineError> {
    let queue = Queue::open(&cfg.state_dir)?;
    let routed = route(cfg, &queue, signal)?;
    let job_id = match &routed.decision {
        RoutingDecision::Enqueue { job_id, .. } => job_id.clone(),
        // A queued job of the same fingerprint: no daemon runs it, so this trigger does.
        RoutingDecision::Merged { into } => into.clone(),
        _ => return Ok(Inline::NotRun(routed)),
    };
    let Some(job) = queue.claim_next_where(OffsetDateTime::now_utc(), |j| j.id == job_id)? else {
        // Running in another process: the merge is its record.
        queue.write_back()?;
        return Ok(Inline::NotRun(routed));
    };
    queue.ledger().event(
        "job_started",
        None,
        serde_json::json!({"job": job.id, "goal": job.goal, "subject": job.signal.subject,
            "fingerprint": job.signal.fingerprint, "attempt": job.attempts, "inline": true}),
    )?;
    let req = RunRequest {
        goal: job.goal.clone(),
        vars: job.vars.clone(),
        signal: job.signal.clone(),
        dry_run: false,
        force_model: opts.force_model,
        no_model: None,
        lock_wait: opts.lock_wait,
    };
    match run::execute_until(cfg, &req, observer, cancel).await {
        Ok(report) => {
            let outcome = match &report {
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
            };
            let job = queue.finish(&job, outcome, OffsetDateTime::now_utc())?;
            Ok(Inline::Ran {
                routed,
                job: Box::new(job),
                report,
            })
        }
        Err(e) => {
            // No daemon will pick it up: the job ends with the reason, and so does the trigger.
            queue.finish(
                &job,
                JobOutcome {
                    state: JobState::Failed,
                    run_id: None,
                    outcome: None,
                    reason: e.to_string(),
                    cost_usd: 0.0,
                },
                OffsetDateTime::now_utc(),
            )?;
            Err(e.into())
        }
    }
}

/// One signal through the router, its decision recorded and its state saved.
fn route(cfg: &Config, queue: &Queue, signal: &Signal) -> Result<Routed, InlineError> {
    let _lock = lock(&cfg.state_dir)?;
    let mut router = Router::open(cfg, queue.clone())?;
    // A job a dead process left `running` would absorb this signal as `merged` and never run:
    // its free claim lock proves the process gone, and it goes back to the queue first.
    let recovered = router.recover_queue(OffsetDateTime::now_utc())?;
    if !recovered.is_empty() {
        router.save_state()?;
    }
    let mut decided = router.route_all(std::slice::from_ref(signal), OffsetDateTime::now_utc())?;
    Ok(decided.pop().ok_or(InlineError::NoDecision)??)
}

fn lock(state_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, InlineError> {
    let path = state_dir.join("router.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| InlineError::Lock {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
        InlineError::Lock {
            path: path.display().to_string(),
            message: errno.to_string(),
        }
    })
}
