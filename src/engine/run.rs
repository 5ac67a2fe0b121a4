//! One run: a signal and a goal become context, a prompt, a scoped claude process and a record.
//! Each stage writes its part of the record as it finishes, so a crash leaves a record that says
//! how far the run got.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::cancel::Cancel;
use crate::base::ledger::{Ledger, LedgerError, RunDir};
use crate::base::outcome::{ExitKind, Outcome};
use crate::base::redact::Redactor;
use crate::base::signal::{Signal, Source};
use crate::config::Config;
use crate::defs::bundled;
use crate::defs::check::{self, CheckEnv, CheckError, CheckResult, Phase};
use crate::defs::goal::{Goal, GoalError};
use crate::defs::knowledge::{self, KnowledgeError};
use crate::defs::policy::{self, ClaudeRules, Policy, PolicyError};
use crate::defs::probe::{self, ProbeError, ProbeResult};
use crate::engine::agent::{
    self, AgentFailure, AgentOutcome, AgentSpec, Denial, Observer, PermissionMode, Verdict,
};
use crate::engine::approval::{ApprovalMode, Executor};
use crate::engine::boundary::{self, ESCALATION_WINDOW, HookContext};
use crate::engine::judge::{self, Acts, AgentRun, Evidence, Judgement, NO_ACTS};
use crate::engine::memory::{Attempt, Memory, MemoryError};
use crate::engine::prompt::RenderInput;

pub mod history;
pub mod report;

pub use history::{RunSummary, list_runs};
pub use report::{RunDetail, show_run};

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
            | RunError::Workspace { .. }
            | RunError::ApprovalOutlastsRun { .. } => ExitKind::Usage,
            RunError::Cancelled { signal } => signal.exit_kind(),
            _ => ExitKind::Error,
        }
    }
}

pub use crate::defs::definitions::Definitions;

/// Checks run where the agent works, with the PATH claude gets.
pub fn check_env(cfg: &Config) -> CheckEnv {
    CheckEnv {
        path_env: cfg.claude.path.clone(),
        cwd: Some(cfg.workspace.clone()),
    }
}

pub fn redactor(cfg: &Config) -> Redactor {
    Redactor::new(cfg.known_secrets())
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

/// `result.json`: the summary of a run, written when it ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub id: String,
    pub goal: String,
    pub source: String,
    pub subject: String,
    pub outcome: Outcome,
    pub exit: ExitKind,
    pub exit_code: u8,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
    pub duration_ms: u64,
    /// Whether claude was started at all (deterministic-first and aborted runs skip it).
    pub agent_started: bool,
    /// What the run is charged against the daily budget; `cost_source` says where it came from.
    pub cost_usd: f64,
    /// Absent in records written before it existed (those are claude's report, or 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<CostSource>,
    pub num_turns: u32,
    pub permission_denials: Vec<Denial>,
    /// Calls steward's own policy hook denied or queued (from the audit log).
    #[serde(default)]
    pub policy_denials: usize,
    /// Pending actions filed during the run.
    #[serde(default)]
    pub actions_filed: Vec<String>,
    /// Wait-mode actions the run was waiting on when it was cancelled or crashed: expired, since
    /// nothing will run them now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_expired: Vec<String>,
    /// Calls steward's hook failed to decide (each was blocked); see the audit log.
    #[serde(default)]
    pub hook_errors: usize,
    pub failure: Option<AgentFailure>,
    pub verdict: Option<Verdict>,
    #[serde(default)]
    pub failed_checks: Vec<String>,
    #[serde(default)]
    pub regressions: Vec<String>,
    /// The calls of the agent that could change state (see `judge::acts`): what a `fixed` and a
    /// rollback rest on.
    #[serde(default)]
    pub state_changes: Vec<String>,
    /// Whether the goal's rollback ran, and why (absent: the goal has none, or the agent never
    /// ran).
    #[serde(default)]
    pub rollback: Option<RollbackRecord>,
    pub session_id: String,
    pub claude_exit_code: Option<i32>,
}

/// Where a run's `cost_usd` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// claude's result line (`total_cost_usd`, the CLI's own estimate).
    Reported,
    /// claude was never started: nothing was spent.
    NotStarted,
    /// claude ran but ended without a result line (killed at a timeout, interrupted while
    /// waiting for the API): what it spent is not known, and 0 is recorded.
    Unreported,
    /// The run crashed before claude reported its cost: charged at the run's budget cap
    /// (`--max-budget-usd`), an upper bound, so that a crash loop cannot spend past the daily
    /// budget unseen.
    BudgetCap,
}

impl CostSource {
    pub fn of(agent: Option<&AgentOutcome>) -> CostSource {
        match agent {
            None => CostSource::NotStarted,
            Some(a) if a.cost_reported => CostSource::Reported,
            // Stopped before spawning (a bad spec): nothing ran.
            Some(a) if matches!(a.failure, Some(AgentFailure::Spawn { .. })) => {
                CostSource::NotStarted
            }
            Some(_) => CostSource::Unreported,
        }
    }
}

/// The rollback decision of a run, and what the command did when it ran. Records written before
/// the decision was recorded only exist for rollbacks that ran, hence the defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRecord {
    #[serde(default = "RollbackDecision::ran")]
    pub decision: RollbackDecision,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackDecision {
    Ran,
    Skipped,
}

impl RollbackDecision {
    fn ran() -> RollbackDecision {
        RollbackDecision::Ran
    }
}

impl RollbackRecord {
    fn skipped(argv: &[String], reason: String) -> RollbackRecord {
        RollbackRecord {
            decision: RollbackDecision::Skipped,
            reason,
            argv: argv.to_vec(),
            exit_code: None,
            timed_out: false,
            output: String::new(),
            error: None,
        }
    }

    /// A rollback that ran and exited 0 in time.
    pub fn succeeded(&self) -> bool {
        self.decision == RollbackDecision::Ran
            && self.exit_code == Some(0)
            && !self.timed_out
            && self.error.is_none()
    }

    /// One line for an operator: ran or skipped, the command, its result, why.
    pub fn describe(&self) -> String {
        let cmd = if self.argv.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{}`", self.argv.join(" "))
        };
        match self.decision {
            RollbackDecision::Skipped => format!("skipped {cmd}: {}", self.reason),
            RollbackDecision::Ran => {
                let result = match (&self.error, self.timed_out, self.exit_code) {
                    (Some(e), _, _) => format!("could not run: {e}"),
                    (None, true, _) => "timed out".to_string(),
                    (None, false, Some(0)) => "exit 0, succeeded".to_string(),
                    (None, false, Some(c)) => format!("exit {c}, failed"),
                    (None, false, None) => "killed by a signal, failed".to_string(),
                };
                if self.reason.is_empty() {
                    format!("ran {cmd}: {result}")
                } else {
                    format!("ran {cmd}: {result}; because {}", self.reason)
                }
            }
        }
    }
}

/// `run.json`: written at the start and after each stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub goal: String,
    pub stage: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// The steward process running it. Whether it is alive is proven by the run's lock
    /// (`run.lock`, see [`crate::engine::liveness`]), not by this pid.
    pub pid: u32,
    /// The variables the goal was rendered with (redacted).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// claude's process tree once started: what a later steward ends if this one dies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::engine::agent::process::Tree>,
}

/// What a dry run shows.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub goal: String,
    pub prompt: String,
    pub argv: Vec<String>,
    pub rules: ClaudeRules,
    pub context: Vec<ProbeResult>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RunReport {
    Done(Box<RunResult>),
    Planned(Box<Plan>),
}

impl RunReport {
    pub fn exit(&self) -> ExitKind {
        match self {
            RunReport::Done(r) => r.exit,
            RunReport::Planned(_) => ExitKind::Ok,
        }
    }
}

fn check_request(defs: &Definitions, req: &RunRequest) -> Result<Goal, RunError> {
    let goal = defs.goal(&req.goal)?;
    for var in &goal.required_vars {
        if !req.vars.contains_key(var) {
            return Err(GoalError::MissingVar {
                goal: goal.name.clone(),
                var: var.clone(),
            }
            .into());
        }
    }
    // Unknown check names are a definition error: found before anything runs.
    for phase in Phase::ALL {
        defs.checks.for_phase(&goal.checks, phase)?;
    }
    Ok(goal)
}

/// The checks that run before the agent, by phase. Post checks run before too: they are the
/// evidence for deterministic-first and the state a proposal is fingerprinted against.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChecksBefore {
    pub static_: Vec<CheckResult>,
    pub preflight: Vec<CheckResult>,
    pub invariants: Vec<CheckResult>,
    pub post: Vec<CheckResult>,
}

impl ChecksBefore {
    fn all(&self) -> Vec<CheckResult> {
        self.static_
            .iter()
            .chain(&self.preflight)
            .chain(&self.invariants)
            .chain(&self.post)
            .cloned()
            .collect()
    }

    /// The state a proposal is made against: every check's status, nothing that varies by time.
    fn fingerprint(&self) -> String {
        let obs: Vec<(String, String)> = self
            .all()
            .iter()
            .map(|c| (c.name.clone(), format!("{:?}", c.status)))
            .collect();
        crate::engine::approval::state_fingerprint(&obs)
    }
}

async fn phase_results(
    defs: &Definitions,
    goal: &Goal,
    phase: Phase,
    env: &CheckEnv,
    redactor: &Redactor,
) -> Result<Vec<CheckResult>, RunError> {
    let selected = defs.checks.for_phase(&goal.checks, phase)?;
    Ok(check::run_checks_in(&selected, env)
        .await
        .iter()
        .map(|r| r.redacted(redactor))
        .collect())
}

async fn checks_before(
    defs: &Definitions,
    goal: &Goal,
    env: &CheckEnv,
    redactor: &Redactor,
) -> Result<ChecksBefore, RunError> {
    let (s, p, i, post) = tokio::join!(
        phase_results(defs, goal, Phase::Static, env, redactor),
        phase_results(defs, goal, Phase::Preflight, env, redactor),
        phase_results(defs, goal, Phase::Invariant, env, redactor),
        phase_results(defs, goal, Phase::Post, env, redactor),
    );
    Ok(ChecksBefore {
        static_: s?,
        preflight: p?,
        invariants: i?,
        post: post?,
    })
}

/// Whether the gathered context needs a model's eyes: a signal from outside (an alert, a failed
/// unit, CI) always does; so does a probe that failed or timed out, or any failing check.
fn needs_attention(req: &RunRequest, context: &[ProbeResult], before: &ChecksBefore) -> bool {
    use crate::defs::probe::ProbeStatus;
    req.force_model
        || !matches!(req.signal.source, Source::Manual | Source::Timer)
        || context
            .iter()
            .any(|p| matches!(p.status, ProbeStatus::Failed | ProbeStatus::TimedOut))
        || before.all().iter().any(|c| c.status.is_failure())
}

/// Everything in a run up to the point where claude would start.
struct Prepared {
    prompt: String,
    spec: AgentSpec,
    rules: ClaudeRules,
}

#[allow(clippy::too_many_arguments)]
fn prepare(
    cfg: &Config,
    defs: &Definitions,
    goal: &Goal,
    req: &RunRequest,
    redactor: &Redactor,
    context: &[ProbeResult],
    checks: &[CheckResult],
    history: &[Attempt],
    home: &Path,
    run_dir: &Path,
) -> Result<Prepared, RunError> {
    if !cfg.workspace.is_dir() {
        return Err(RunError::Workspace {
            path: cfg.workspace.display().to_string(),
        });
    }
    let rules = policy::claude_rules(&goal.name, &goal.tools, &goal.policy, &cfg.workspace)?;
    // The compiled policy steward's hook enforces, from the same goal policy as the rules.
    Policy::build(&goal.name, &goal.policy, &cfg.workspace)?
        .to_file(&run_dir.join(boundary::POLICY_FILE))?;
    let notes = knowledge::select(
        &defs.notes,
        &goal.name,
        &goal.knowledge_tags,
        &req.signal.labels,
    );
    let nonce = format!("steward-boundary-{}", uuid::Uuid::new_v4().simple());
    let prompt = crate::engine::prompt::render(
        goal,
        &RenderInput {
            signal: &req.signal,
            context,
            knowledge: &notes,
            vars: &req.vars,
            nonce: &nonce,
            workspace: &cfg.workspace,
            checks,
            history,
        },
    )?;
    // Probe output is redacted already; this pass covers operator text and anything rendered.
    let prompt = redactor.redact(&prompt);
    let exe = std::env::current_exe().map_err(RunError::Home)?;
    let timeout_secs = goal.timeout_secs.unwrap_or(cfg.limits.timeout_secs);
    // The goal file can only check this against its own `timeout_secs`; the config default is
    // known here. A run killed by its wall clock mid-wait would lose the operator's decision.
    if goal.approval == ApprovalMode::Wait && goal.approval_timeout_secs >= timeout_secs {
        return Err(RunError::ApprovalOutlastsRun {
            goal: goal.name.clone(),
            wait: goal.approval_timeout_secs,
            run: timeout_secs,
        });
    }
    let (permission_mode, prompt_tool) = match goal.approval {
        ApprovalMode::Queue => (PermissionMode::DontAsk, None),
        // dontAsk ignores the prompt tool (reference §3.3), so only a wait run uses default mode;
        // the hook still decides allow and deny before claude's own rules are consulted.
        ApprovalMode::Wait => (
            PermissionMode::Default,
            Some(crate::engine::prompt_tool::prompt_tool(
                &exe,
                run_dir,
                Duration::from_secs(goal.approval_timeout_secs),
            )),
        ),
    };
    let spec = AgentSpec {
        claude_bin: cfg.claude_bin(),
        workspace: cfg.workspace.clone(),
        home: home.to_path_buf(),
        prompt: prompt.clone(),
        model: goal
            .model
            .clone()
            .unwrap_or_else(|| cfg.claude.model.clone()),
        tools: rules.tools.clone(),
        allowed_tools: rules.allowed.clone(),
        disallowed_tools: rules.disallowed.clone(),
        max_turns: goal.max_turns.unwrap_or(cfg.limits.max_turns),
        budget_usd: goal.budget_usd.unwrap_or(cfg.limits.budget_usd),
        session_id: uuid::Uuid::new_v4(),
        settings: boundary::claude_settings(&nonce, &exe, run_dir),
        permission_mode,
        prompt_tool,
        nonce,
        auth_env: cfg.claude_auth()?,
        path_env: cfg.claude.path.clone(),
        max_retries: cfg.claude.max_retries,
        timeout: Duration::from_secs(timeout_secs),
        kill_grace: Duration::from_secs(cfg.claude.kill_grace_secs),
        pid_namespace: cfg.claude.pid_namespace,
    };
    Ok(Prepared {
        prompt,
        spec,
        rules,
    })
}

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
    let defs = Definitions::load(cfg)?;
    let redactor = redactor(cfg);
    // A typo or a missing variable is the operator's to fix, and leaves no record behind.
    let goal = check_request(&defs, req)?;
    let env = check_env(cfg);
    let probes = defs.catalog.select(&goal.probes)?;

    if req.dry_run {
        let (context, before) = tokio::join!(
            probe::gather(&probes, &redactor, &cfg.claude.path),
            checks_before(&defs, &goal, &env, &redactor)
        );
        let before = before?;
        let scratch = tempfile::tempdir().map_err(RunError::Home)?;
        let p = prepare(
            cfg,
            &defs,
            &goal,
            req,
            &redactor,
            &context,
            &before.all(),
            &[],
            scratch.path(),
            scratch.path(),
        )?;
        return Ok(RunReport::Planned(Box::new(Plan {
            goal: goal.name,
            prompt: p.prompt,
            argv: agent::argv(&p.spec),
            rules: p.rules,
            context,
            checks: before.all(),
        })));
    }

    let ledger = Ledger::open(&cfg.state_dir)?;
    let _lock = lock_unless_stopped(&ledger, req, &cancel).await?;
    // Holding the host lock, no other run is live: whatever a dead steward left is ended and
    // recorded before this run starts acting.
    crate::engine::recover::recover_logged(&ledger);
    let mut rec = Recorder::start(&ledger, req, &redactor)?;
    // This goal loaded; what else did not is part of the record (and was logged at warn).
    if !defs.errors.is_empty() {
        rec.run.write_json("definition-errors.json", &defs.errors)?;
    }

    // Before anything may change: checks and context, concurrently.
    rec.stage("checks")?;
    let gathered = cancel
        .or_stop(async {
            tokio::join!(
                probe::gather(&probes, &redactor, &cfg.claude.path),
                checks_before(&defs, &goal, &env, &redactor)
            )
        })
        .await;
    let (context, before) = match gathered {
        Ok(v) => v,
        Err(stop) => return rec.cancelled(stop, None),
    };
    let before = before?;
    rec.run.write_json("context.json", &context)?;
    rec.run.write_json("checks-before.json", &before)?;
    let model = goal.checks.model;
    let attention = needs_attention(req, &context, &before);
    let evidence = |agent, acts| Evidence {
        static_: &before.static_,
        preflight: &before.preflight,
        invariants_before: &before.invariants,
        invariants_after: &before.invariants,
        post_before: &before.post,
        post: &before.post,
        agent,
        acts,
        model,
        attention,
    };
    if let Some(j) = judge::gate(&evidence(AgentRun::NotStarted, &NO_ACTS)) {
        return rec.finish(&j, None, None, &[]);
    }
    if let Some(reason) = &req.no_model {
        return rec.finish(&Judgement::no_action(reason.clone()), None, None, &[]);
    }

    // The same goal on the same subject that failed twice recently goes to a human instead.
    let memory = Memory::open(&cfg.state_dir);
    let action_key = format!("goal:{}", goal.name);
    let history = memory.recent(&req.signal.subject, 5)?;
    if memory.should_escalate(&req.signal.subject, &action_key, ESCALATION_WINDOW)? {
        let j = Judgement::escalated(format!(
            "`{}` on `{}` already failed twice in the last {} h: a human must look",
            goal.name,
            req.signal.subject,
            ESCALATION_WINDOW.as_secs() / 3600
        ));
        return rec.finish(&j, None, None, &[]);
    }

    rec.stage("prompt")?;
    let home = tempfile::Builder::new()
        .prefix("claude-home-")
        .tempdir_in(ledger.tmp_dir())
        .map_err(RunError::Home)?;
    let prepared = prepare(
        cfg,
        &defs,
        &goal,
        req,
        &redactor,
        &context,
        &before.all(),
        &history,
        home.path(),
        &rec.run.path,
    )?;
    rec.run.write_json(
        boundary::HOOK_CONTEXT_FILE,
        &HookContext {
            state_dir: cfg.state_dir.clone(),
            run_id: rec.run.id.clone(),
            goal: goal.name.clone(),
            subject: req.signal.subject.clone(),
            signal_fingerprint: Some(req.signal.fingerprint.clone()),
            state_fingerprint: before.fingerprint(),
            checks: goal.checks.post.clone(),
            action_ttl_secs: ACTION_TTL.as_secs(),
            approval: goal.approval,
            approval_timeout_secs: goal.approval_timeout_secs,
        },
    )?;
    rec.run.write_text("prompt.md", &prepared.prompt)?;
    let mut argv_record = vec![prepared.spec.claude_bin.display().to_string()];
    argv_record.extend(agent::argv(&prepared.spec));
    rec.run.write_json("claude-argv.json", &argv_record)?;
    rec.run.write_json("agent-spec.json", &prepared.spec)?;

    rec.stage("agent")?;
    let mut transcript = rec.run.appender("transcript.jsonl")?;
    let mut write_line = |line: &str| -> std::io::Result<()> {
        transcript
            .line(&redactor.redact(line))
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let mut meta = rec.meta.clone();
    let run_dir = rec.run.clone();
    // Recorded before claude's output is read: if steward dies now, the next start knows what
    // to end.
    let mut record_tree = |tree: &agent::process::Tree| -> std::io::Result<()> {
        meta.agent = Some(tree.clone());
        run_dir
            .write_json("run.json", &meta)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let control = agent::Control {
        cancel: cancel.clone(),
        spawned: &mut record_tree,
    };
    let agent_outcome =
        agent::run_controlled(&prepared.spec, &mut write_line, observer, control).await?;
    rec.meta.agent = meta.agent;
    transcript.sync()?;
    drop(home);
    if let Some(AgentFailure::Cancelled { signal, killed }) = agent_outcome.failure {
        let stop = crate::base::cancel::Request {
            signal,
            urgent: killed,
        };
        return rec.cancelled(stop, Some(agent_outcome));
    }
    if let Some(v) = &agent_outcome.verdict {
        rec.run.write_json("verdict.json", v)?;
    }

    // After the agent: steward's own checks decide, not the model's claim.
    rec.stage("validation")?;
    let validated = cancel
        .or_stop(async {
            tokio::join!(
                phase_results(&defs, &goal, Phase::Invariant, &env, &redactor),
                phase_results(&defs, &goal, Phase::Post, &env, &redactor),
            )
        })
        .await;
    let (invariants_after, post) = match validated {
        Ok(v) => v,
        Err(stop) => return rec.cancelled(stop, Some(agent_outcome)),
    };
    let (invariants_after, post) = (invariants_after?, post?);
    rec.run.write_json(
        "checks-after.json",
        &serde_json::json!({"invariants": invariants_after, "post": post}),
    )?;
    let agent_run = match (&agent_outcome.failure, &agent_outcome.verdict) {
        (Some(f), _) => AgentRun::Failed(f),
        (None, Some(v)) => AgentRun::Verdict(v),
        (None, None) => AgentRun::Failed(&NO_VERDICT),
    };
    // Calls claude refused before the hook join the audit first: they count as denied.
    let unhooked = boundary::audit_unhooked_calls(&rec.run.path)?;
    let audit = boundary::read_audit(&rec.run.path)?;
    let acts = Acts::from_audit(&audit);
    let mut judgement = judge::judge(&Evidence {
        invariants_after: &invariants_after,
        post: &post,
        ..evidence(agent_run, &acts)
    });
    if unhooked.ran > 0 {
        // A tool ran without steward's hook deciding: whatever the checks say, this run was not
        // inside the boundary, and nothing it reports can be trusted.
        judgement = Judgement {
            outcome: Outcome::Failed,
            exit: ExitKind::AgentFailed,
            reason: format!(
                "boundary breach: {} tool call(s) ran without a decision of steward's policy hook (see the audit log)",
                unhooked.ran
            ),
            ..judgement
        };
    }
    judgement = escalate_hook_errors(judgement, count_hook_errors(&audit));
    let rollback = match goal.checks.rollback.as_deref() {
        Some(argv) if !argv.is_empty() && judgement.rollback => {
            rec.stage("rollback")?;
            let mut record = match cancel.or_urgent(run_rollback(argv, cfg, &redactor)).await {
                Ok(r) => r,
                // A half-done rollback is worse than a finished one: only an urgent stop ends it.
                Err(stop) => return rec.cancelled(stop, Some(agent_outcome)),
            };
            record.reason = judgement.rollback_reason.clone();
            // A rollback is never success, and one that failed leaves the host in doubt.
            judgement.reason = format!(
                "{}; rollback {}",
                judgement.reason,
                if record.succeeded() {
                    "ran and succeeded"
                } else {
                    "ran and FAILED (see `steward runs show`)"
                }
            );
            Some(record)
        }
        Some(argv) if !argv.is_empty() => Some(RollbackRecord::skipped(
            argv,
            judgement.rollback_reason.clone(),
        )),
        // No rollback command: worth recording only when one would have run.
        _ if judgement.rollback => Some(RollbackRecord::skipped(
            &[],
            format!(
                "the goal has no `rollback` command; one would have run: {}",
                judgement.rollback_reason
            ),
        )),
        _ => None,
    };
    // Only what the agent did and the checks judged counts as an attempt (not an API outage).
    if agent_outcome.failure.is_none()
        && let Err(e) = memory.record_now(&req.signal.subject, &action_key, judgement.outcome)
    {
        tracing::warn!("could not record the outcome in effectiveness memory: {e}");
    }
    rec.state_changes = acts.changed;
    rec.finish(&judgement, Some(agent_outcome), rollback, &audit)
}

/// Every call the hook failed on was blocked, so the boundary held; but a run steward could not
/// fully police is for a human to look at, not `ok` or `fixed`.
fn escalate_hook_errors(judgement: Judgement, hook_errors: usize) -> Judgement {
    if hook_errors == 0 || !matches!(judgement.outcome, Outcome::Ok | Outcome::Fixed) {
        return judgement;
    }
    Judgement::escalated(format!(
        "steward's policy hook failed on {hook_errors} call(s) (each was blocked; see the audit \
         log); the agent reported: {}",
        judgement.reason
    ))
}

/// Calls steward's hook could not decide (it blocked them): a crash, a timeout, an unreadable
/// policy, or a hook that died and left Claude's own rules to refuse the call.
pub(crate) fn count_hook_errors(audit: &[crate::defs::policy::AuditEntry]) -> usize {
    audit
        .iter()
        .filter(|e| e.decision == "error" && e.reason != boundary::RAN_WITHOUT_HOOK)
        .count()
}

/// The pending actions a run's calls were queued as, each once: the same proposal made twice
/// is one action (filed once, its `proposals` counted up).
pub(crate) fn queued_actions(audit: &[crate::defs::policy::AuditEntry]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in audit.iter().filter_map(boundary::filed_action) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Calls steward's hook denied or queued; the "waiting" line of a wait-mode call is not one.
pub(crate) fn policy_denials(audit: &[crate::defs::policy::AuditEntry]) -> usize {
    audit
        .iter()
        .filter(|e| e.decision != "allow" && !boundary::is_intermediate(e))
        .count()
}

static NO_VERDICT: AgentFailure = AgentFailure::NoVerdict {
    message: String::new(),
};

async fn run_rollback(argv: &[String], cfg: &Config, redactor: &Redactor) -> RollbackRecord {
    let out =
        crate::engine::approval::run_argv(argv, Duration::from_secs(300), &cfg.claude.path).await;
    match out {
        Ok(o) => RollbackRecord {
            decision: RollbackDecision::Ran,
            reason: String::new(),
            argv: argv.to_vec(),
            exit_code: o.exit_code(),
            timed_out: o.timed_out(),
            output: redactor.redact(&format!("{}{}", o.stdout, o.stderr)),
            error: None,
        },
        Err(e) => RollbackRecord {
            decision: RollbackDecision::Ran,
            reason: String::new(),
            argv: argv.to_vec(),
            exit_code: None,
            timed_out: false,
            output: String::new(),
            error: Some(e),
        },
    }
}

/// The host lock, waited for without blocking the runtime, unless a stop request comes first.
async fn lock_unless_stopped(
    ledger: &Ledger,
    req: &RunRequest,
    cancel: &Cancel,
) -> Result<crate::base::ledger::LockGuard, RunError> {
    let purpose = format!("goal {}", req.goal);
    let deadline = Instant::now() + req.lock_wait;
    loop {
        match ledger.lock(&purpose, Duration::ZERO) {
            Ok(guard) => return Ok(guard),
            Err(LedgerError::Busy { .. }) if Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
        let pause = tokio::time::sleep(Duration::from_millis(100));
        if let Err(stop) = cancel.or_stop(pause).await {
            return Err(RunError::Cancelled {
                signal: stop.signal,
            });
        }
    }
}

/// The run's record as it is being written: stage by stage, then the result.
struct Recorder<'a> {
    ledger: &'a Ledger,
    run: RunDir,
    meta: RunMeta,
    req: &'a RunRequest,
    started: OffsetDateTime,
    clock: Instant,
    /// The agent's state-changing calls, once known.
    state_changes: Vec<String>,
    /// Held until the result is written: the proof that this run's steward is alive.
    _live: crate::engine::liveness::RunLock,
    /// Wait-mode actions expired because the run was cancelled.
    actions_expired: Vec<String>,
}

impl<'a> Recorder<'a> {
    fn start(
        ledger: &'a Ledger,
        req: &'a RunRequest,
        redactor: &Redactor,
    ) -> Result<Self, RunError> {
        let started = OffsetDateTime::now_utc();
        let run = ledger.create_run(&req.goal)?;
        let live = crate::engine::liveness::hold(&run)?;
        let meta = RunMeta {
            id: run.id.clone(),
            goal: req.goal.clone(),
            stage: "started".into(),
            started,
            pid: std::process::id(),
            vars: req
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), redactor.redact(v)))
                .collect(),
            agent: None,
        };
        run.write_json("run.json", &meta)?;
        let mut signal = req.signal.clone();
        redact_signal(redactor, &mut signal);
        run.write_json("signal.json", &signal)?;
        ledger.event(
            "run_started",
            Some(&run.id),
            serde_json::json!({"goal": req.goal, "source": req.signal.source.as_str(), "subject": req.signal.subject}),
        )?;
        Ok(Recorder {
            ledger,
            run,
            meta,
            req,
            started,
            clock: Instant::now(),
            state_changes: Vec::new(),
            _live: live,
            actions_expired: Vec::new(),
        })
    }

    fn stage(&mut self, stage: &str) -> Result<(), RunError> {
        self.meta.stage = stage.to_string();
        Ok(self.run.write_json("run.json", &self.meta)?)
    }

    /// A stop request ended the run in its current stage: the record is completed as
    /// `cancelled`, and the wait-mode actions it was blocked on expire (nothing will run them).
    fn cancelled(
        &mut self,
        stop: crate::base::cancel::Request,
        agent: Option<AgentOutcome>,
    ) -> Result<RunReport, RunError> {
        let stage = self.meta.stage.clone();
        let mut reason = format!("cancelled by {} during stage `{stage}`", stop.signal);
        match agent.as_ref().and_then(|a| a.failure.as_ref()) {
            Some(AgentFailure::Cancelled { killed: false, .. }) => {
                reason.push_str(": claude was interrupted and ended within its grace")
            }
            Some(AgentFailure::Cancelled { killed: true, .. }) => reason.push_str(
                ": claude's process group was killed (no end within the grace, or a second signal)",
            ),
            _ if stop.urgent => reason.push_str(" (a second signal: stopped at once)"),
            _ => {}
        }
        reason.push_str("; nothing after that stage ran");
        let store = crate::engine::approval::Store::open(self.ledger.root())?;
        let expired = store.expire_for_run(&self.run.id)?;
        if !expired.is_empty() {
            reason.push_str(&format!(
                "; wait-mode action(s) expired: {}",
                expired.join(", ")
            ));
        }
        let exit = stop.signal.exit_kind();
        let judgement = Judgement {
            outcome: Outcome::Cancelled,
            exit,
            reason: reason.clone(),
            ..Judgement::escalated(String::new())
        };
        let audit = boundary::read_audit(&self.run.path)?;
        self.actions_expired = expired;
        self.finish(&judgement, agent, None, &audit)
    }

    fn finish(
        &mut self,
        judgement: &Judgement,
        agent: Option<AgentOutcome>,
        rollback: Option<RollbackRecord>,
        audit: &[crate::defs::policy::AuditEntry],
    ) -> Result<RunReport, RunError> {
        self.stage("done")?;
        let a = agent.as_ref();
        let actions_filed = queued_actions(audit);
        let (outcome, exit) = (judgement.outcome, judgement.exit);
        let result = RunResult {
            id: self.run.id.clone(),
            goal: self.req.goal.clone(),
            source: self.req.signal.source.as_str().to_string(),
            subject: self.req.signal.subject.clone(),
            outcome,
            exit,
            exit_code: exit.code(),
            reason: judgement.reason.clone(),
            started: self.started,
            finished: OffsetDateTime::now_utc(),
            duration_ms: self.clock.elapsed().as_millis() as u64,
            agent_started: a.is_some(),
            cost_usd: a.map_or(0.0, |a| a.cost_usd),
            cost_source: Some(CostSource::of(a)),
            num_turns: a.map_or(0, |a| a.num_turns),
            permission_denials: a.map(|a| a.denials.clone()).unwrap_or_default(),
            policy_denials: policy_denials(audit),
            actions_filed,
            actions_expired: std::mem::take(&mut self.actions_expired),
            hook_errors: count_hook_errors(audit),
            failure: a.and_then(|a| a.failure.clone()),
            verdict: a.and_then(|a| a.verdict.clone()),
            failed_checks: judgement.failed_checks.clone(),
            regressions: judgement.regressions.clone(),
            state_changes: std::mem::take(&mut self.state_changes),
            rollback,
            session_id: a.map(|a| a.session_id.clone()).unwrap_or_default(),
            claude_exit_code: a.and_then(|a| a.exit_code),
        };
        self.run.write_json("result.json", &result)?;
        self.ledger.event(
            "run_finished",
            Some(&self.run.id),
            serde_json::json!({
                "goal": result.goal, "outcome": result.outcome, "reason": result.reason,
                "cost_usd": result.cost_usd, "duration_ms": result.duration_ms,
                "denials": result.permission_denials.len(),
                "agent_started": result.agent_started,
                "cost_source": result.cost_source,
                "actions_expired": result.actions_expired,
            }),
        )?;
        Ok(RunReport::Done(Box::new(result)))
    }
}

pub fn describe_failure(f: &AgentFailure) -> String {
    match f {
        AgentFailure::Spawn { message } => format!("could not start claude: {message}"),
        AgentFailure::ApiError { status, message } => match status {
            Some(s) => format!("API error {s}: {message}"),
            None => format!("API error: {message}"),
        },
        AgentFailure::MaxTurns { message } => format!("max turns: {message}"),
        AgentFailure::Budget { message } => format!("budget exhausted: {message}"),
        AgentFailure::Timeout { after_secs } => format!("timed out after {after_secs} s"),
        AgentFailure::Crash {
            exit_code,
            signal,
            stderr,
        } => format!(
            "claude crashed (exit {}, signal {}): {}",
            exit_code.map_or("-".into(), |c| c.to_string()),
            signal.map_or("-".into(), |s| s.to_string()),
            stderr.trim()
        ),
        AgentFailure::NoResult { exit_code } => format!(
            "claude ended without a result line (exit {})",
            exit_code.map_or("-".into(), |c| c.to_string())
        ),
        AgentFailure::Malformed { message } => format!("malformed output: {message}"),
        AgentFailure::NoVerdict { message } => format!("no structured verdict: {message}"),
        AgentFailure::BoundaryNotProven { message } => format!("boundary not proven: {message}"),
        AgentFailure::Execution { message } => format!("error during execution: {message}"),
        AgentFailure::Cancelled { signal, killed } => format!(
            "cancelled by {signal}: claude {}",
            if *killed {
                "was killed"
            } else {
                "was interrupted and ended within its grace"
            }
        ),
    }
}

fn redact_signal(redactor: &Redactor, signal: &mut Signal) {
    for v in signal
        .annotations
        .values_mut()
        .chain(signal.labels.values_mut())
    {
        *v = redactor.redact(v);
    }
    if let Ok(text) = serde_json::to_string(&signal.payload)
        && let Ok(v) = serde_json::from_str(&redactor.redact(&text))
    {
        signal.payload = v;
    }
}

/// A wait-mode action is only worth approving while its run waits on it. When that run's
/// steward is gone, the action expires here, with an error that says why.
fn waiting_run_alive(
    ledger: &Ledger,
    store: &crate::engine::approval::Store,
    action: &crate::engine::approval::Action,
) -> Result<(), RunError> {
    let Some(run_id) = action.run_id.as_deref() else {
        return Ok(());
    };
    let life = match ledger.run(run_id) {
        Ok(run) => match run.read_json::<RunMeta>("run.json") {
            Ok(meta) => crate::engine::liveness::life(&run, meta.pid),
            Err(_) => return Ok(()),
        },
        Err(_) => crate::engine::liveness::Life::Crashed {
            reason: "its record is gone".into(),
        },
    };
    if matches!(
        life,
        crate::engine::liveness::Life::Running | crate::engine::liveness::Life::Unknown { .. }
    ) {
        return Ok(());
    }
    if action.state == crate::engine::approval::ActionState::Pending {
        store.expire(
            &action.id,
            &format!("its run {run_id} is {}", life.as_str()),
        )?;
    }
    Err(crate::engine::approval::ApprovalError::RunEnded {
        id: action.id.clone(),
        run: run_id.to_string(),
        state: life.as_str().to_string(),
    }
    .into())
}

/// `steward actions approve`: the state must still be what the proposal saw, then steward's
/// executor runs the argv (no shell) under the host lock, runs the action's checks, and records
/// the outcome, in the action and in effectiveness memory. An action a run is waiting on is only
/// approved (returned in state `approved`): the waiting run's agent runs it.
pub async fn approve_and_execute(
    cfg: &Config,
    id: &str,
    by: &str,
    note: Option<String>,
    timeout: Duration,
) -> Result<crate::engine::approval::Action, RunError> {
    let store = crate::engine::approval::Store::open(&cfg.state_dir)?;
    let action = store.get(id)?;
    let defs = Definitions::load(cfg)?;
    let redactor = redactor(cfg);
    let env = check_env(cfg);
    // The same checks, re-run now, must give the same statuses as when it was proposed.
    let current = match defs.goal(&action.goal) {
        Ok(goal) => checks_before(&defs, &goal, &env, &redactor)
            .await?
            .fingerprint(),
        Err(_) => ChecksBefore::default().fingerprint(),
    };
    let ledger = Ledger::open(&cfg.state_dir)?;
    if action.executor == Executor::Agent {
        // An approval nobody is waiting for would never run: the run ended (cancelled, crashed).
        waiting_run_alive(&ledger, &store, &action)?;
        // A run is blocked on this decision and holds the host lock; its agent runs the command
        // inside that run, so approving only records the decision.
        let approved = store.approve(id, by, note, &current)?;
        ledger.event(
            "action_approved",
            action.run_id.as_deref(),
            serde_json::json!({"action": id, "by": by, "executor": "agent"}),
        )?;
        return Ok(approved);
    }
    let _lock = ledger.lock(&format!("action {id}"), Duration::from_secs(30))?;
    store.approve(id, by, note, &current)?;
    ledger.event(
        "action_approved",
        action.run_id.as_deref(),
        serde_json::json!({"action": id, "by": by}),
    )?;
    let (action, exec) = store
        .execute(id, timeout, &cfg.claude.path, &redactor)
        .await?;
    let selected = defs.checks.select(&action.checks)?;
    let results: Vec<CheckResult> = check::run_checks_in(&selected, &env)
        .await
        .iter()
        .map(|r| r.redacted(&redactor))
        .collect();
    let passed = !results.iter().any(|r| r.status.is_failure());
    let results_json = results
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let done = store.finish(action, exec, results_json, passed)?;
    let outcome = if done.state == crate::engine::approval::ActionState::Done {
        Outcome::Fixed
    } else {
        Outcome::Failed
    };
    // Every subject it was proposed for is remembered as attempted (one run, one outcome).
    let memory = Memory::open(&cfg.state_dir);
    for subject in done.subjects() {
        memory.record_now(subject, &done.argv.join(" "), outcome)?;
    }
    ledger.event(
        "action_executed",
        done.run_id.as_deref(),
        serde_json::json!({"action": id, "state": done.state, "argv": done.argv}),
    )?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(outcome: Outcome) -> Judgement {
        Judgement {
            outcome,
            ..Judgement::escalated("the agent's reason".to_string())
        }
    }

    #[test]
    fn a_failed_hook_keeps_a_run_from_ok_or_fixed() {
        for outcome in [Outcome::Ok, Outcome::Fixed] {
            let j = escalate_hook_errors(judged(outcome), 2);
            assert_eq!(j.outcome, Outcome::Escalated);
            assert_eq!(j.exit, ExitKind::NeedsHuman);
            assert!(j.reason.contains("failed on 2 call(s)"), "{}", j.reason);
        }
        assert_eq!(
            escalate_hook_errors(judged(Outcome::Ok), 0).outcome,
            Outcome::Ok
        );
        // A worse outcome stands as it is.
        assert_eq!(
            escalate_hook_errors(judged(Outcome::Failed), 1).outcome,
            Outcome::Failed
        );
    }

    #[test]
    fn hook_errors_exclude_breaches() {
        let entry = |decision: &str, reason: &str| crate::defs::policy::AuditEntry {
            time: String::new(),
            session_id: None,
            tool_use_id: None,
            tool: "Bash".into(),
            input: serde_json::Value::Null,
            decision: decision.into(),
            rule: None,
            reason: reason.into(),
        };
        let audit = [
            entry("error", "steward policy hook could not decide"),
            entry("error", boundary::RAN_WITHOUT_HOOK),
            entry("deny", "no rule"),
        ];
        assert_eq!(count_hook_errors(&audit), 1);
    }
}
