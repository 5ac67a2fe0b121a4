//! One run: a signal and a goal become context, a prompt, a scoped claude process and a record.
//! Each stage writes its part of the record as it finishes, so a crash leaves a record that says
//! how far the run got. The stages are in `stages`, the record in `recorder` and `record`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::base::cancel::Cancel;
use crate::base::ledger::{Ledger, LedgerError};
use crate::base::outcome::ExitKind;
use crate::base::signal::Signal;
use crate::config::Config;
use crate::defs::bundled;
use crate::defs::check::CheckError;
use crate::defs::goal::GoalError;
use crate::defs::knowledge::KnowledgeError;
use crate::defs::policy::PolicyError;
use crate::defs::probe::ProbeError;
use crate::engine::agent::{self, Observer};
use crate::engine::memory::MemoryError;

mod approve;
mod change;
mod checks;
pub mod history;
mod host_lock;
mod knowledge;
mod load;
mod prepare;
mod record;
mod recorder;
pub mod report;
mod rollback;
mod stages;

pub use approve::approve_and_execute;
pub use checks::ChecksBefore;
pub use history::{RunSummary, list_runs};
pub use load::{Definitions, check_env, redactor};
pub use record::{
    CostSource, Plan, RollbackDecision, RollbackRecord, RunMeta, RunReport, RunResult,
    describe_failure,
};
pub(crate) use recorder::{count_hook_errors, policy_denials, queued_actions};
pub use report::{RunDetail, show_run};

use recorder::Recorder;
use stages::Setup;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Read(#[from] bundled::ReadError),
    #[error(transparent)]
    Goal(#[from] GoalError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Approval(#[from] crate::engine::approval::ApprovalError),
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    #[error("workspace {path} is not a directory")]
    Workspace { path: String },
    #[error(
        "goal `{goal}` waits up to {wait} s for approvals but the run may only take {run} s; \
         lower `approval_timeout_secs` or raise `timeout_secs`"
    )]
    ApprovalOutlastsRun { goal: String, wait: u64, run: u64 },
    #[error(transparent)]
    Change(#[from] change::ChangeRunError),
    /// A service contract that cannot be read (the run is about a service).
    #[error(transparent)]
    Service(#[from] crate::defs::service::ServiceError),
    #[error("cannot prepare claude's home: {0}")]
    Home(std::io::Error),
    #[error(
        "stopped by {signal} while waiting for the host lock: the run never started, nothing was recorded"
    )]
    Cancelled {
        signal: crate::base::cancel::StopSignal,
    },
}

impl RunError {
    /// Definition and configuration problems are the operator's to fix (usage); the rest are ours.
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            RunError::Goal(_)
            | RunError::Probe(_)
            | RunError::Check(_)
            | RunError::Knowledge(_)
            | RunError::Policy(_)
            | RunError::Config(_)
            | RunError::Service(_)
            | RunError::Workspace { .. }
            | RunError::ApprovalOutlastsRun { .. } => ExitKind::Usage,
            RunError::Cancelled { signal } => signal.exit_kind(),
            RunError::Change(e) if e.is_usage() => ExitKind::Usage,
            _ => ExitKind::Error,
        }
    }
}

/// What the operator (or a trigger) asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub goal: String,
    pub vars: BTreeMap<String, String>,
    pub signal: Signal,
    /// Gather and render, show the claude command, but start nothing and record nothing.
    pub dry_run: bool,
    /// Call the model even when the goal is deterministic-first and every check is green.
    pub force_model: bool,
    /// Decided before the run that the model has nothing to look at (e.g. a CI push that
    /// changes no file): the checks still run, and if they let the run go on it ends
    /// `no_action` with this reason, without a model call.
    pub no_model: Option<String>,
    /// How long to wait for another run to finish before giving up.
    pub lock_wait: Duration,
}

/// How long a proposed action waits for a human before it expires.
pub const ACTION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Runs one request end to end and records it. Failures of the agent and of checks are outcomes,
/// not errors; an `Err` means steward could not do its own job (definitions, state directory).
pub async fn execute(
    cfg: &Config,
    req: &RunRequest,
    observer: &mut dyn Observer,
) -> Result<RunReport, RunError> {
    execute_until(cfg, req, observer, Cancel::never()).await
}

/// [`execute`], stoppable by `cancel`: the stage the run is in is interrupted (claude gets SIGINT
/// and its grace, then SIGKILL; a probe or check is killed), nothing after it runs, and the run is
/// recorded `cancelled` with the signal's exit code. A rollback already running goes on unless
/// the stop is urgent. Stopped before its record began (waiting for the host lock), it records
/// nothing and returns [`RunError::Cancelled`].
pub async fn execute_until(
    cfg: &Config,
    req: &RunRequest,
    observer: &mut dyn Observer,
    cancel: Cancel,
) -> Result<RunReport, RunError> {
    let mut setup = Setup::load(cfg, req)?;
    if req.dry_run {
        return stages::plan(setup).await;
    }
    let change_off = change::preflight(&mut setup).await?;
    let ledger = Ledger::open(&cfg.state_dir)?;
    let purpose = format!("goal {}", req.goal);
    let _lock = host_lock::wait(&ledger, &purpose, req.lock_wait, &cancel).await?;
    // Holding the host lock, no other run is live: whatever a dead steward left is ended and
    // recorded before this run starts acting.
    crate::engine::recover::recover_logged(&ledger);
    crate::engine::recover::recover_changes(&ledger, &_lock);
    let mut rec = Recorder::start(&ledger, req, &setup.redactor)?;
    // This goal loaded; what else did not is part of the record (and was logged at warn).
    if !setup.defs.errors.is_empty() {
        rec.run
            .write_json("definition-errors.json", &setup.defs.errors)?;
    }
    if let Some(why) = &change_off {
        tracing::warn!(goal = %setup.goal.name, "{why}");
        rec.run.write_text("change-mode.txt", why)?;
    }
    // Before anything may change: checks and context, concurrently.
    let gathered = match stages::gather(&setup, &mut rec, &cancel).await? {
        Ok(g) => g,
        Err(stop) => return rec.cancelled(stop, None),
    };
    let history = match stages::pre_checks(&setup, &gathered)? {
        Ok(history) => history,
        Err(judgement) => return rec.finish(&judgement, None, None, &[]),
    };
    // A change run works in a worktree of its own; the live checkout is never the agent's.
    let change_run = match change::open(&setup, &rec.run.id).await {
        Ok(c) => c,
        Err(e) => return rec.finish(&change::not_opened(&e), None, None, &[]),
    };
    let (prepared, home) = stages::render(
        &setup,
        &mut rec,
        &ledger,
        &gathered,
        &history,
        change_run.as_ref(),
    )?;
    let mut agent = stages::run_agent(&setup, &mut rec, &prepared, observer, &cancel).await?;
    let mut concluded = None;
    if let Some(run) = change_run {
        let (last, c) =
            change::conclude(&setup, &mut rec, run, &prepared, agent, observer, &cancel).await;
        (agent, concluded) = (last, Some(c));
    }
    drop(home);
    if let Some(change::Concluded::Stopped(stop)) = concluded {
        return rec.cancelled(stop, Some(agent));
    }
    if let Some(stop) = stages::agent_stopped(&agent) {
        return rec.cancelled(stop, Some(agent));
    }
    if let Some(v) = &agent.verdict {
        rec.run.write_json("verdict.json", v)?;
    }
    let after = match stages::post_checks(&setup, &mut rec, &cancel).await? {
        Ok(after) => after,
        Err(stop) => return rec.cancelled(stop, Some(agent)),
    };
    let stages::Judged {
        mut judgement,
        audit,
        acts,
    } = stages::judge_run(&setup, &rec, &gathered, &after, &agent)?;
    if let Some(c) = &concluded {
        judgement = change::judge_change(judgement, c);
    }
    let rollback = rollback::rollback(
        &mut rec,
        cfg,
        &setup.goal,
        &setup.redactor,
        &mut judgement,
        &cancel,
    );
    let rollback = match rollback.await? {
        Ok(record) => record,
        Err(stop) => return rec.cancelled(stop, Some(agent)),
    };
    stages::remember(&setup, &agent, &judgement);
    knowledge::propose(
        &ledger,
        &rec.run,
        &req.goal,
        agent.verdict.as_ref(),
        &setup.redactor,
    );
    rec.state_changes = acts.changed;
    rec.finish(&judgement, Some(agent), rollback, &audit)
}
