//! One run: a signal and a goal become context, a prompt, a scoped claude process and a record.
//! Each stage writes its part of the record as it finishes, so a crash leaves a record that says
//! how far the run got.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::agent::{
    self, AgentFailure, AgentOutcome, AgentSpec, Denial, Observer, Verdict, VerdictStatus,
};
use crate::bundled::{self, Kind, SourceFile};
use crate::check::{CheckEnv, CheckError, CheckSet};
use crate::config::Config;
use crate::goal::{self, Goal, GoalError, RenderInput};
use crate::knowledge::{self, KnowledgeError, Note};
use crate::ledger::{Ledger, LedgerError, RunDir};
use crate::outcome::{ExitKind, Outcome};
use crate::policy::{self, ClaudeRules, PolicyError};
use crate::probe::{self, Catalog, ProbeDefaults, ProbeError, ProbeResult};
use crate::redact::Redactor;
use crate::signal::Signal;

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
    #[error("cannot prepare claude's home: {0}")]
    Home(std::io::Error),
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
            | RunError::Workspace { .. } => ExitKind::Usage,
            _ => ExitKind::Error,
        }
    }
}

/// Goals, probes and notes as the config sees them (bundled plus operator directories).
pub struct Definitions {
    pub goal_files: Vec<SourceFile>,
    pub catalog: Catalog,
    pub checks: CheckSet,
    pub notes: Vec<Note>,
}

impl Definitions {
    pub fn load(cfg: &Config) -> Result<Definitions, RunError> {
        let goal_files =
            bundled::files(Kind::Goals, cfg.goals_dir.as_deref(), cfg.no_bundled, "md")?;
        let context_files = bundled::files(
            Kind::Context,
            cfg.context_dir.as_deref(),
            cfg.no_bundled,
            "toml",
        )?;
        let note_files = bundled::files(
            Kind::Knowledge,
            cfg.knowledge_dir.as_deref(),
            cfg.no_bundled,
            "md",
        )?;
        let catalog = Catalog::load(&context_files, probe_defaults(cfg))?;
        let checks = CheckSet::load(&context_files)?;
        let notes = knowledge::load(&note_files)?;
        Ok(Definitions {
            goal_files,
            catalog,
            checks,
            notes,
        })
    }

    pub fn goal(&self, name: &str) -> Result<Goal, RunError> {
        Ok(goal::find(&self.goal_files, name)?)
    }

    pub fn goals(&self) -> Result<Vec<Goal>, RunError> {
        Ok(goal::load_all(&self.goal_files)?)
    }
}

pub fn probe_defaults(cfg: &Config) -> ProbeDefaults {
    ProbeDefaults {
        timeout: Duration::from_secs(cfg.limits.probe_timeout_secs),
        max_bytes: cfg.limits.probe_max_bytes,
    }
}

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
    /// How long to wait for another run to finish before giving up.
    pub lock_wait: Duration,
}

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
    pub cost_usd: f64,
    pub num_turns: u32,
    pub permission_denials: Vec<Denial>,
    pub failure: Option<AgentFailure>,
    pub verdict: Option<Verdict>,
    pub session_id: String,
    pub claude_exit_code: Option<i32>,
}

/// `run.json`: written at the start and after each stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub goal: String,
    pub stage: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub pid: u32,
}

/// What a dry run shows.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub goal: String,
    pub prompt: String,
    pub argv: Vec<String>,
    pub rules: ClaudeRules,
    pub context: Vec<ProbeResult>,
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

/// Settings passed with `--settings`: steward's hooks. The SessionStart hook proves they loaded.
pub fn claude_settings(nonce: &str) -> serde_json::Value {
    serde_json::json!({
        "includeGitInstructions": false,
        "hooks": {
            "SessionStart": [{
                "hooks": [{"type": "command", "command": format!("echo {nonce}"), "timeout": 10}]
            }]
        }
    })
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
    Ok(goal)
}

/// Everything in a run up to the point where claude would start.
struct Prepared {
    goal: Goal,
    context: Vec<ProbeResult>,
    prompt: String,
    spec: AgentSpec,
    rules: ClaudeRules,
}

async fn prepare(
    cfg: &Config,
    defs: &Definitions,
    req: &RunRequest,
    redactor: &Redactor,
    home: &std::path::Path,
) -> Result<Prepared, RunError> {
    if !cfg.workspace.is_dir() {
        return Err(RunError::Workspace {
            path: cfg.workspace.display().to_string(),
        });
    }
    let goal = check_request(defs, req)?;
    let rules = policy::claude_rules(&goal.name, &goal.tools, &goal.policy, &cfg.workspace)?;
    let probes = defs.catalog.select(&goal.probes)?;
    let context = probe::gather(&probes, redactor, &cfg.claude.path).await;
    let notes = knowledge::select(
        &defs.notes,
        &goal.name,
        &goal.knowledge_tags,
        &req.signal.labels,
    );
    let nonce = format!("steward-boundary-{}", uuid::Uuid::new_v4().simple());
    let prompt = goal::render(
        &goal,
        &RenderInput {
            signal: &req.signal,
            context: &context,
            knowledge: &notes,
            vars: &req.vars,
            nonce: &nonce,
            workspace: &cfg.workspace,
        },
    )?;
    // Probe output is redacted already; this pass covers operator text and anything rendered.
    let prompt = redactor.redact(&prompt);
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
        settings: claude_settings(&nonce),
        nonce,
        auth_env: cfg.claude_auth()?,
        path_env: cfg.claude.path.clone(),
        max_retries: cfg.claude.max_retries,
        timeout: Duration::from_secs(goal.timeout_secs.unwrap_or(cfg.limits.timeout_secs)),
        kill_grace: Duration::from_secs(cfg.claude.kill_grace_secs),
    };
    Ok(Prepared {
        goal,
        context,
        prompt,
        spec,
        rules,
    })
}

/// Runs one request end to end and records it. Failures of the agent are outcomes, not errors;
/// an `Err` means steward could not do its own job (definitions, state directory).
pub async fn execute(
    cfg: &Config,
    req: &RunRequest,
    observer: &mut dyn Observer,
) -> Result<RunReport, RunError> {
    let defs = Definitions::load(cfg)?;
    let redactor = redactor(cfg);
    // A typo or a missing variable is the operator's to fix, and leaves no record behind.
    check_request(&defs, req)?;
    if req.dry_run {
        let home = tempfile::tempdir().map_err(RunError::Home)?;
        let p = prepare(cfg, &defs, req, &redactor, home.path()).await?;
        return Ok(RunReport::Planned(Box::new(Plan {
            goal: p.goal.name,
            prompt: p.prompt,
            argv: agent::argv(&p.spec),
            rules: p.rules,
            context: p.context,
        })));
    }

    let ledger = Ledger::open(&cfg.state_dir)?;
    let _lock = ledger.lock(&format!("goal {}", req.goal), req.lock_wait)?;
    let started = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let run = ledger.create_run(&req.goal)?;
    let mut meta = RunMeta {
        id: run.id.clone(),
        goal: req.goal.clone(),
        stage: "started".into(),
        started,
        pid: std::process::id(),
    };
    run.write_json("run.json", &meta)?;
    let mut signal = req.signal.clone();
    redact_signal(&redactor, &mut signal);
    run.write_json("signal.json", &signal)?;
    ledger.event(
        "run_started",
        Some(&run.id),
        serde_json::json!({"goal": req.goal, "source": req.signal.source.as_str(), "subject": req.signal.subject}),
    )?;

    let home = tempfile::Builder::new()
        .prefix("claude-home-")
        .tempdir_in(ledger.tmp_dir())
        .map_err(RunError::Home)?;
    let prepared = match prepare(cfg, &defs, req, &redactor, home.path()).await {
        Ok(p) => p,
        Err(e) => {
            // The definitions broke between load and use, or the workspace vanished: record it.
            finish(
                &ledger,
                &run,
                req,
                started,
                clock,
                Outcome::Aborted,
                ExitKind::Aborted,
                format!("could not prepare the run: {e}"),
                None,
            )?;
            return Err(e);
        }
    };
    run.write_json("context.json", &prepared.context)?;
    run.write_text("prompt.md", &prepared.prompt)?;
    let argv = agent::argv(&prepared.spec);
    let mut argv_record = vec![prepared.spec.claude_bin.display().to_string()];
    argv_record.extend(argv.iter().cloned());
    run.write_json("claude-argv.json", &argv_record)?;
    run.write_json("agent-spec.json", &prepared.spec)?;
    meta.stage = "agent".into();
    run.write_json("run.json", &meta)?;

    let mut transcript = run.appender("transcript.jsonl")?;
    let mut write_line = |line: &str| -> std::io::Result<()> {
        transcript
            .line(&redactor.redact(line))
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let agent_outcome = agent::run(&prepared.spec, &mut write_line, observer).await?;
    transcript.sync()?;
    drop(home);

    if let Some(v) = &agent_outcome.verdict {
        run.write_json("verdict.json", v)?;
    }
    let (outcome, exit, reason) = judge(&prepared.goal, &agent_outcome);
    meta.stage = "done".into();
    run.write_json("run.json", &meta)?;
    let result = finish(
        &ledger,
        &run,
        req,
        started,
        clock,
        outcome,
        exit,
        reason,
        Some(agent_outcome),
    )?;
    Ok(RunReport::Done(Box::new(result)))
}

/// Derives the outcome from what the agent delivered. (Validation phases refine this later: a
/// failing check always overrules the model.)
fn judge(goal: &Goal, a: &AgentOutcome) -> (Outcome, ExitKind, String) {
    if let Some(f) = &a.failure {
        return match f {
            AgentFailure::BoundaryNotProven { message } => (
                Outcome::Aborted,
                ExitKind::Aborted,
                format!("boundary not proven: {message}"),
            ),
            other => (
                Outcome::Failed,
                ExitKind::AgentFailed,
                format!("agent failed: {}", describe_failure(other)),
            ),
        };
    }
    let Some(v) = &a.verdict else {
        return (
            Outcome::Failed,
            ExitKind::AgentFailed,
            "agent failed: no structured verdict".into(),
        );
    };
    match v.status {
        VerdictStatus::Ok if v.proposed_actions.is_empty() => (
            Outcome::Ok,
            ExitKind::Ok,
            format!("{}: {}", goal.name, v.summary),
        ),
        VerdictStatus::Fixed => (Outcome::Fixed, ExitKind::Ok, v.summary.clone()),
        VerdictStatus::Ok | VerdictStatus::NeedsAttention => (
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!("needs a human: {}", v.summary),
        ),
        VerdictStatus::Failed => (
            Outcome::Escalated,
            ExitKind::NeedsHuman,
            format!("the agent could not complete the goal: {}", v.summary),
        ),
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

#[allow(clippy::too_many_arguments)]
fn finish(
    ledger: &Ledger,
    run: &RunDir,
    req: &RunRequest,
    started: OffsetDateTime,
    clock: Instant,
    outcome: Outcome,
    exit: ExitKind,
    reason: String,
    agent: Option<AgentOutcome>,
) -> Result<RunResult, RunError> {
    let a = agent.as_ref();
    let result = RunResult {
        id: run.id.clone(),
        goal: req.goal.clone(),
        source: req.signal.source.as_str().to_string(),
        subject: req.signal.subject.clone(),
        outcome,
        exit,
        exit_code: exit.code(),
        reason,
        started,
        finished: OffsetDateTime::now_utc(),
        duration_ms: clock.elapsed().as_millis() as u64,
        cost_usd: a.map_or(0.0, |a| a.cost_usd),
        num_turns: a.map_or(0, |a| a.num_turns),
        permission_denials: a.map(|a| a.denials.clone()).unwrap_or_default(),
        failure: a.and_then(|a| a.failure.clone()),
        verdict: a.and_then(|a| a.verdict.clone()),
        session_id: a.map(|a| a.session_id.clone()).unwrap_or_default(),
        claude_exit_code: a.and_then(|a| a.exit_code),
    };
    run.write_json("result.json", &result)?;
    ledger.event(
        "run_finished",
        Some(&run.id),
        serde_json::json!({
            "goal": result.goal, "outcome": result.outcome, "reason": result.reason,
            "cost_usd": result.cost_usd, "duration_ms": result.duration_ms,
            "denials": result.permission_denials.len(),
        }),
    )?;
    Ok(result)
}

/// One line per run for `steward runs list`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub goal: String,
    pub outcome: String,
    pub cost_usd: f64,
    pub duration_ms: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn list_runs(ledger: &Ledger) -> Result<Vec<RunSummary>, RunError> {
    let mut out = Vec::new();
    for id in ledger.run_ids()? {
        let run = ledger.run(&id)?;
        if run.exists("result.json") {
            match run.read_json::<RunResult>("result.json") {
                Ok(r) => out.push(RunSummary {
                    id,
                    goal: r.goal,
                    outcome: r.outcome.to_string(),
                    cost_usd: r.cost_usd,
                    duration_ms: r.duration_ms,
                    reason: r.reason,
                    error: None,
                }),
                Err(e) => out.push(unreadable(id, e)),
            }
        } else {
            match run.read_json::<RunMeta>("run.json") {
                Ok(m) => out.push(RunSummary {
                    id,
                    goal: m.goal,
                    outcome: Outcome::Running.to_string(),
                    cost_usd: 0.0,
                    duration_ms: 0,
                    reason: format!("no result yet; last stage `{}` (pid {})", m.stage, m.pid),
                    error: None,
                }),
                Err(e) => out.push(unreadable(id, e)),
            }
        }
    }
    Ok(out)
}

fn unreadable(id: String, e: LedgerError) -> RunSummary {
    RunSummary {
        id,
        goal: "?".into(),
        outcome: "unreadable".into(),
        cost_usd: 0.0,
        duration_ms: 0,
        reason: String::new(),
        error: Some(e.to_string()),
    }
}

/// Everything recorded about one run, for `steward runs show`.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub id: String,
    pub dir: String,
    pub meta: Option<RunMeta>,
    pub result: Option<RunResult>,
    pub signal: Option<serde_json::Value>,
    pub argv: Option<Vec<String>>,
    pub files: Vec<String>,
}

pub fn show_run(ledger: &Ledger, id: &str) -> Result<RunDetail, RunError> {
    let run = ledger.run(id)?;
    let opt = |name: &str| -> Result<bool, RunError> { Ok(run.exists(name)) };
    let meta = if opt("run.json")? {
        Some(run.read_json("run.json")?)
    } else {
        None
    };
    let result = if opt("result.json")? {
        Some(run.read_json("result.json")?)
    } else {
        None
    };
    let signal = if opt("signal.json")? {
        Some(run.read_json("signal.json")?)
    } else {
        None
    };
    let argv = if opt("claude-argv.json")? {
        Some(run.read_json("claude-argv.json")?)
    } else {
        None
    };
    let mut files: Vec<String> = std::fs::read_dir(&run.path)
        .map_err(|source| LedgerError::Read {
            path: run.path.clone(),
            source,
        })?
        .filter_map(|e| {
            e.ok()
                .and_then(|e| e.file_name().to_str().map(str::to_string))
        })
        .collect();
    files.sort();
    Ok(RunDetail {
        id: run.id.clone(),
        dir: run.path.display().to_string(),
        meta,
        result,
        signal,
        argv,
        files,
    })
}
