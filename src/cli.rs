//! The command-line adapter: parses arguments, calls the services, prints text or JSON, and
//! returns the exit kind. No domain logic lives here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::adapters::doctor;
use crate::adapters::scripted;
use crate::base::cancel::Cancel;
use crate::base::outcome::ExitKind;
use crate::base::signal::Signal;
use crate::config::{Config, ConfigArgs, Loaded};
use crate::defs::check;
use crate::defs::probe;
use crate::engine::agent;
use crate::engine::run::{self, Definitions, RunReport, RunRequest};

mod actions;
pub mod output;
mod runs;

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "Turns triggers into scoped, recorded, validated Claude Code runs",
    long_about = None
)]
pub struct Cli {
    /// Config file (else $STEWARD_CONFIG, ./steward.toml, /etc/steward/steward.toml, defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `-c limits.max_turns=4` (repeatable).
    #[arg(short = 'c', global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// State directory (runs, events, lock).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Machine-readable output on stdout; errors too.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a goal now (the manual trigger).
    Run(RunArgs),
    /// Ask for something in plain words (runs the `intent` goal).
    Ask {
        /// What you want done or looked at.
        text: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Show what a run would see: the probes and their (redacted) output.
    Context {
        /// Only these probes (name, `tag:NAME` or `*`); default all.
        #[arg(long = "probe", value_name = "NAME")]
        probes: Vec<String>,
    },
    /// Goal templates.
    #[command(subcommand)]
    Goals(GoalsCommand),
    /// The effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The run ledger.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Run checks alone (all, one phase, or a goal's); exits non-zero when one fails.
    Validate {
        /// static, preflight, post or invariant.
        #[arg(long)]
        phase: Option<String>,
        /// Use this goal's checks per phase.
        #[arg(long)]
        goal: Option<String>,
    },
    /// The tool policy: what a goal lets the agent run.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Pending actions: approval-required calls waiting for a human.
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// Claude Code hooks (installed by steward in every run's settings).
    #[command(subcommand)]
    Hook(HookCommand),
    /// Trigger adapters that systemd units call (timers, `OnFailure=`).
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// MCP servers claude starts (in runs of goals with `approval = "wait"`).
    #[command(subcommand)]
    Mcp(McpCommand),
    /// CI step on a push: review BASE..HEAD with the `deploy-review` goal and decide
    /// (exit 0 deploy, 6 needs approval, 3/4/5 failed).
    Ci(CiArgs),
    /// The daemon: webhooks (Alertmanager, generic), health and metrics over HTTP, the router,
    /// and the queue worker; triggers hand it their signals.
    Serve {
        /// Address to listen on (default: `serve.listen`, 127.0.0.1:8787).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// File holding the token shared by both webhooks, for an endpoint without its own
        /// (`serve.alertmanager_token_file`, `serve.generic_token_file`); else
        /// `serve.webhook_token_file`, `$STEWARD_WEBHOOK_TOKEN_FILE`,
        /// `$CREDENTIALS_DIRECTORY/webhook-token`.
        #[arg(long, value_name = "FILE")]
        webhook_token_file: Option<PathBuf>,
    },
    /// Check the installation, and prove with the installed claude that the boundary holds.
    Doctor,
    /// Development tools.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Goal name (see `steward goals list`).
    pub goal: String,
    #[command(flatten)]
    pub opts: RunOpts,
}

#[derive(Debug, Args)]
pub struct RunOpts {
    /// Template variable (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Gather context and render the prompt, show the claude command; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Call the model even when the goal is deterministic-first and every check is green.
    #[arg(long)]
    pub force_model: bool,
    /// Seconds to wait for another run holding the lock.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// The revision before the push (all zeros on a branch's first push: diff against nothing).
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The pushed revision.
    #[arg(long, value_name = "REV")]
    pub head: String,
    /// Seconds to wait for another run holding the lock.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub wait: u64,
    /// Resolve the revisions and render the prompt; start nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum GoalsCommand {
    /// List the goals.
    List,
    /// Render a goal's prompt with live context.
    Render {
        name: String,
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration and where it came from.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recorded runs, newest first.
    List(RunsListArgs),
    /// One run's record as an incident report: `last` is the newest run, and a unique prefix of
    /// an id will do.
    Show { id: String },
    /// Remove runs older than an age, except those an open action or an active job points at and
    /// runs in progress; event log days that ended before it go too.
    Prune {
        /// The age, e.g. `30d`, `12h`, `2w`.
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// Say what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Show at most this many runs, the newest (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Only runs of this goal.
    #[arg(long)]
    pub goal: Option<String>,
    /// Only runs with this outcome (ok, fixed, no_action, aborted, failed, escalated, running, …).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only runs started since: an age (`2h`, `7d`) or an RFC 3339 time.
    #[arg(long, value_name = "AGE|TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide a Bash command: allow, deny or approve, with the rule and the reason.
    Check {
        /// The goal whose policy applies (default: the bundled default policy alone).
        #[arg(long)]
        goal: Option<String>,
        /// The command, e.g. `steward policy check -- 'systemctl status nginx'`.
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// Show how a Bash command parses: lists, pipelines, argv, redirections, substitutions.
    Explain {
        #[arg(long)]
        goal: Option<String>,
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// Every action, pending first.
    List,
    /// One action: the command, every subject and rationale, checks, decision and execution.
    Show { id: String },
    /// Approve a pending action; steward runs it (no shell) and then its checks. An action a run
    /// is waiting on is only approved: the waiting agent runs it. Shows what will run and asks
    /// on a terminal; off a terminal (scripts) `--yes` is required.
    Approve {
        id: String,
        /// Approve without asking (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Who approves (default: $SUDO_USER, $USER).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// Seconds the command may run.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Reject a pending action.
    Reject {
        id: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// The PreToolUse hook: Claude's JSON on stdin, a decision on stdout; fails closed (exit 2).
    PreToolUse {
        /// The run directory holding `policy.json`, `hook-context.json` and `audit.jsonl`.
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// A unit failed (`OnFailure=steward-onfailure@%n.service`): read systemd, classify, run the
    /// `on-failure` goal.
    OnFailure {
        /// The failed unit's full name, e.g. `nginx.service`.
        unit: String,
        /// Read this captured `systemctl show` output instead of asking systemd.
        #[arg(long, value_name = "FILE")]
        show_output: Option<PathBuf>,
        /// Read the journal tail from this file instead of `journalctl`.
        #[arg(long, value_name = "FILE")]
        journal_file: Option<PathBuf>,
        /// Seconds `systemctl` and `journalctl` may take.
        #[arg(long, default_value_t = 15, value_name = "SECS")]
        systemd_timeout: u64,
        #[command(flatten)]
        opts: TriggerOpts,
    },
    /// A goal's timer fired (`steward-check@GOAL.timer`): run the goal.
    Timer {
        goal: String,
        #[command(flatten)]
        opts: TriggerOpts,
    },
}

#[derive(Debug, Args)]
pub struct TriggerOpts {
    /// Seconds to wait for another run holding the lock.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub wait: u64,
    /// Build the signal and render the prompt; start nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Call the model even when every check is green.
    #[arg(long)]
    pub force_model: bool,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// The permission-prompt tool on stdio: decides by the run's policy, waits for an operator
    /// on approval-required calls; fails closed.
    Serve {
        /// The run directory holding `policy.json`, `hook-context.json` and `audit.jsonl`.
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Serve the scripted Anthropic Messages API (for tests and benchmarks).
    ScriptedModel {
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        addr: std::net::SocketAddr,
    },
}

fn parse_var(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}`: expected KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("`{raw}`: empty key"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

/// An error that knows its exit kind.
#[derive(Debug, thiserror::Error)]
#[error("{source:#}")]
pub struct CliError {
    pub kind: ExitKind,
    pub source: anyhow::Error,
}

fn usage(e: impl Into<anyhow::Error>) -> CliError {
    CliError {
        kind: ExitKind::Usage,
        source: e.into(),
    }
}

fn internal(e: impl Into<anyhow::Error>) -> CliError {
    CliError {
        kind: ExitKind::Error,
        source: e.into(),
    }
}

impl From<run::RunError> for CliError {
    fn from(e: run::RunError) -> Self {
        CliError {
            kind: e.exit_kind(),
            source: e.into(),
        }
    }
}

impl From<crate::defs::bundled::ReadError> for CliError {
    fn from(e: crate::defs::bundled::ReadError) -> Self {
        run::RunError::from(e).into()
    }
}

impl From<crate::defs::goal::GoalError> for CliError {
    fn from(e: crate::defs::goal::GoalError) -> Self {
        run::RunError::from(e).into()
    }
}

impl Cli {
    fn config(&self) -> Result<Loaded, CliError> {
        Config::load(&self.config_args()).map_err(usage)
    }

    fn config_args(&self) -> ConfigArgs {
        ConfigArgs {
            file: self.config.clone(),
            overrides: self.set.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

/// Runs the parsed command; `Ok` carries the exit kind of a command that ran to its end.
pub async fn dispatch(cli: Cli) -> Result<ExitKind, CliError> {
    match &cli.command {
        Command::Run(args) => {
            let loaded = cli.config()?;
            run_goal(
                &cli,
                &loaded.config,
                &args.goal,
                &args.opts,
                BTreeMap::new(),
            )
            .await
        }
        Command::Ask { text, opts } => {
            let loaded = cli.config()?;
            let mut extra = BTreeMap::new();
            extra.insert("intent".to_string(), text.clone());
            run_goal(&cli, &loaded.config, "intent", opts, extra).await
        }
        Command::Context { probes } => {
            let loaded = cli.config()?;
            let cfg = &loaded.config;
            let defs = Definitions::load(cfg)?;
            let names = if probes.is_empty() {
                vec!["*".to_string()]
            } else {
                probes.clone()
            };
            let selected = defs.catalog.select(&names).map_err(usage)?;
            let results = probe::gather(&selected, &run::redactor(cfg), &cfg.claude.path).await;
            if cli.json {
                print_json(&results)?;
            } else {
                for r in &results {
                    crate::outln!(
                        "== {} [{}] {} ms{}",
                        r.name,
                        serde_json::to_value(r.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        r.duration_ms,
                        if r.truncated { " (truncated)" } else { "" }
                    )?;
                    if let Some(d) = &r.detail {
                        crate::outln!("   {d}")?;
                    }
                    let text = match &r.output {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        other => serde_json::to_string_pretty(other).unwrap_or_default(),
                    };
                    for line in text.lines() {
                        crate::outln!("   {line}")?;
                    }
                }
            }
            Ok(ExitKind::Ok)
        }
        Command::Goals(GoalsCommand::List) => {
            let loaded = cli.config()?;
            let defs = Definitions::load(&loaded.config)?;
            list_goals(&defs, cli.json)
        }
        Command::Goals(GoalsCommand::Render { name, vars }) => {
            let loaded = cli.config()?;
            let vars: BTreeMap<String, String> = vars.iter().cloned().collect();
            let req = RunRequest {
                goal: name.clone(),
                signal: Signal::manual(name, &vars),
                vars,
                dry_run: true,
                force_model: false,
                no_model: None,
                lock_wait: Duration::ZERO,
            };
            let report = run::execute(&loaded.config, &req, &mut agent::QuietObserver).await?;
            if let RunReport::Planned(plan) = &report {
                if cli.json {
                    print_json(&serde_json::json!({"goal": plan.goal, "prompt": plan.prompt}))?;
                } else {
                    crate::outln!("{}", plan.prompt)?;
                }
            }
            Ok(ExitKind::Ok)
        }
        Command::Config(ConfigCommand::Show) => {
            let loaded = cli.config()?;
            if cli.json {
                print_json(&loaded)?;
            } else {
                match &loaded.source {
                    Some(p) => crate::outln!("# from {}", p.display())?,
                    None => crate::outln!("# no config file found: built-in defaults")?,
                }
                let text = toml::to_string_pretty(&loaded.config).map_err(internal)?;
                crate::out!("{text}")?;
            }
            Ok(ExitKind::Ok)
        }
        Command::Runs(cmd) => runs::run(&cli, cmd),
        Command::Validate { phase, goal } => {
            let loaded = cli.config()?;
            let cfg = &loaded.config;
            let defs = Definitions::load(cfg)?;
            let phase = phase
                .as_deref()
                .map(str::parse::<check::Phase>)
                .transpose()
                .map_err(|e| usage(anyhow::anyhow!("--phase: {e}")))?;
            let goal_checks = match goal {
                Some(name) => Some(defs.goal(name)?.checks),
                None => {
                    // "Every check" cannot be claimed when a context file did not load.
                    let broken = defs.context_errors();
                    if !broken.is_empty() {
                        let list: Vec<&str> = broken.iter().map(|e| e.error.as_str()).collect();
                        return Err(usage(anyhow::anyhow!(
                            "{} context file error(s); their checks cannot run:\n{}",
                            list.len(),
                            list.join("\n")
                        )));
                    }
                    None
                }
            };
            let report = check::validate_in(
                &defs.checks,
                phase,
                goal_checks.as_ref(),
                &run::check_env(cfg),
            )
            .await;
            let exit = report.exit_kind();
            if cli.json {
                print_verdict(&report, exit)?;
            } else {
                for line in report.lines() {
                    crate::outln!("{line}")?;
                }
            }
            Ok(exit)
        }
        Command::Policy(cmd) => {
            let loaded = cli.config()?;
            let cfg = &loaded.config;
            let (goal, command) = match cmd {
                PolicyCommand::Check { goal, command }
                | PolicyCommand::Explain { goal, command } => (goal, command.join(" ")),
            };
            let goal_policy = match goal {
                Some(name) => Definitions::load(cfg)?.goal(name)?.policy,
                None => crate::defs::policy::GoalPolicy::default(),
            };
            let policy = crate::defs::policy::Policy::build(
                goal.as_deref().unwrap_or("default"),
                &goal_policy,
                &cfg.workspace,
            )
            .map_err(usage)?;
            match cmd {
                PolicyCommand::Check { .. } => {
                    let d = crate::defs::policy::check_command(&policy, &command, &cfg.workspace);
                    if cli.json {
                        print_verdict(&d, ExitKind::Ok)?;
                    } else {
                        let verdict = serde_json::to_value(d.decision)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        crate::outln!("{verdict}")?;
                        if let Some(rule) = &d.rule {
                            crate::outln!("rule: {rule}")?;
                        }
                        crate::outln!("reason: {}", d.reason)?;
                    }
                }
                PolicyCommand::Explain { .. } => {
                    let e = crate::defs::policy::explain_with(&policy, &command, &cfg.workspace);
                    print_json(&e)?;
                }
            }
            Ok(ExitKind::Ok)
        }
        Command::Actions(cmd) => actions::run(&cli, cmd).await,
        Command::Trigger(cmd) => trigger(&cli, cmd).await,
        Command::Ci(args) => ci(&cli, args).await,
        Command::Hook(HookCommand::PreToolUse { run_dir }) => {
            // Normally taken by `hook_pre_tool_use` before any runtime starts.
            Ok(ExitKind::from_code(hook_pre_tool_use(run_dir)))
        }
        Command::Mcp(McpCommand::Serve { run_dir }) => {
            // No config: everything the server needs is in the run directory.
            crate::adapters::mcp::serve(run_dir.clone())
                .await
                .map_err(internal)?;
            Ok(ExitKind::Ok)
        }
        Command::Serve {
            listen,
            webhook_token_file,
        } => {
            use crate::daemon::server::{self, ServeError, ServeOptions};
            let opts = ServeOptions {
                config_args: cli.config_args(),
                listen: listen.clone(),
                webhook_token_file: webhook_token_file.clone(),
            };
            server::serve(opts).await.map_err(|e| match e {
                ServeError::Config(_) | ServeError::BadListen(_) | ServeError::Token { .. } => {
                    usage(e)
                }
                other => internal(other),
            })?;
            Ok(ExitKind::Ok)
        }
        Command::Doctor => {
            let loaded = cli.config()?;
            let report = doctor::run(&loaded).await;
            let exit = if report.ok {
                ExitKind::Ok
            } else {
                ExitKind::Error
            };
            if cli.json {
                print_verdict(&report, exit)?;
            } else {
                for c in &report.checks {
                    let mark = match c.status {
                        doctor::Status::Ok => " ok ",
                        doctor::Status::Warn => "warn",
                        doctor::Status::Fail => "FAIL",
                    };
                    crate::outln!("[{mark}] {:<14} {}", c.name, c.detail)?;
                }
            }
            Ok(exit)
        }
        Command::Dev(DevCommand::ScriptedModel { scenario, addr }) => {
            let scenario = scripted::Scenario::load(scenario).map_err(usage)?;
            let server = scripted::start(scenario, *addr).await.map_err(internal)?;
            // Tests read the address from the first line of stdout.
            crate::outln!("listening on http://{}", server.addr)?;
            let _ = std::io::stdout().flush();
            tokio::signal::ctrl_c().await.map_err(internal)?;
            Ok(ExitKind::Ok)
        }
    }
}

/// The PreToolUse hook, on claude's path for every tool call: synchronous, no config, no runtime.
/// Returns the process exit code; anything that goes wrong blocks the call (2).
pub fn hook_pre_tool_use(run_dir: &std::path::Path) -> u8 {
    use std::io::Read;
    let mut input = Vec::new();
    let limit = crate::engine::boundary::MAX_HOOK_READ as u64;
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut input) {
        output::stderr(&format!(
            "steward policy hook could not read its input, so the call is blocked: {e}\n"
        ));
        return 2;
    }
    let answer = crate::engine::boundary::pre_tool_use(run_dir, &input);
    // A failed write to stdout would read as "no opinion": block instead.
    if std::io::stdout()
        .write_all(answer.stdout.as_bytes())
        .and_then(|_| std::io::stdout().flush())
        .is_err()
    {
        return 2;
    }
    let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
    u8::try_from(answer.exit_code).unwrap_or(2)
}

async fn run_goal(
    cli: &Cli,
    cfg: &Config,
    goal: &str,
    opts: &RunOpts,
    extra_vars: BTreeMap<String, String>,
) -> Result<ExitKind, CliError> {
    let mut vars: BTreeMap<String, String> = opts.vars.iter().cloned().collect();
    vars.extend(extra_vars);
    let req = RunRequest {
        goal: goal.to_string(),
        signal: Signal::manual(goal, &vars),
        vars,
        dry_run: opts.dry_run,
        force_model: opts.force_model,
        no_model: None,
        lock_wait: Duration::from_secs(opts.wait),
    };
    let mut terminal = agent::TerminalObserver::new();
    let mut quiet = agent::QuietObserver;
    let observer: &mut dyn agent::Observer = if cli.json { &mut quiet } else { &mut terminal };
    let (cancel, _signals) = stoppable(req.dry_run)?;
    let report = run::execute_until(cfg, &req, observer, cancel).await?;
    if cli.json {
        print_verdict(&report, report.exit())?;
    } else {
        match &report {
            RunReport::Planned(plan) => {
                crate::outln!(
                    "# goal {} (dry run: nothing started, nothing recorded)",
                    plan.goal
                )?;
                crate::outln!("# claude argv:")?;
                let argv = serde_json::to_string_pretty(&plan.argv).map_err(internal)?;
                crate::outln!("{argv}")?;
                crate::outln!("# prompt:")?;
                crate::outln!("{}", plan.prompt)?;
            }
            RunReport::Done(r) => {
                crate::outln!(
                    "run {}: {} ({}) — ${:.4}, {} turns, {:.1}s, {} denied",
                    r.id,
                    r.outcome,
                    r.reason,
                    r.cost_usd,
                    r.num_turns,
                    r.duration_ms as f64 / 1000.0,
                    r.permission_denials.len()
                )?;
            }
        }
    }
    Ok(report.exit())
}

/// SIGINT and SIGTERM stop the run (claude interrupted, then killed; the run recorded
/// `cancelled`; exit 130/143) instead of killing steward and leaving claude behind. A dry run
/// starts nothing that needs stopping: the signals keep their default effect there. The handler
/// lives as long as the returned guard.
fn stoppable(dry_run: bool) -> Result<(Cancel, Option<SignalGuard>), CliError> {
    if dry_run {
        return Ok((Cancel::never(), None));
    }
    let (canceller, cancel) = crate::base::cancel::pair();
    let task =
        crate::base::cancel::on_signals(canceller, crate::cli::output::stderr).map_err(internal)?;
    Ok((cancel, Some(SignalGuard(task))))
}

/// Ends the signal listener when the run is over.
struct SignalGuard(tokio::task::JoinHandle<()>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `steward trigger …`: build the signal, offer it to the daemon, else run inline under the lock.
async fn trigger(cli: &Cli, cmd: &TriggerCommand) -> Result<ExitKind, CliError> {
    use crate::adapters::trigger::{self, InlineOpts, TriggerError};
    use crate::daemon::handoff::{self, Handoff};
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let classify = |e: TriggerError| match e {
        TriggerError::Malformed { .. }
        | TriggerError::BadValue { .. }
        | TriggerError::NoId { .. }
        | TriggerError::UnknownUnit(_)
        | TriggerError::BadUnitName(_)
        | TriggerError::ReadFile { .. } => usage(e),
        other => internal(other),
    };
    let (goal, signal, vars, opts) = match cmd {
        TriggerCommand::OnFailure {
            unit,
            show_output,
            journal_file,
            systemd_timeout,
            opts,
        } => {
            let from = trigger::FailureSource {
                show_output: show_output.clone(),
                journal_file: journal_file.clone(),
            };
            let signal = trigger::on_failure_signal(
                &cfg.state_dir,
                unit,
                &from,
                Duration::from_secs(*systemd_timeout),
                opts.dry_run,
            )
            .await
            .map_err(classify)?;
            let vars = BTreeMap::from([("unit".to_string(), unit.clone())]);
            (trigger::ON_FAILURE_GOAL, signal, vars, opts)
        }
        TriggerCommand::Timer { goal, opts } => {
            (goal.as_str(), Signal::timer(goal), BTreeMap::new(), opts)
        }
    };
    let mut terminal = agent::TerminalObserver::new();
    let mut quiet = agent::QuietObserver;
    let observer: &mut dyn agent::Observer = if cli.json { &mut quiet } else { &mut terminal };
    if opts.dry_run {
        // Nothing is routed or recorded: the plan of the goal the trigger names.
        let inline = InlineOpts {
            lock_wait: Duration::from_secs(opts.wait),
            dry_run: true,
            force_model: opts.force_model,
        };
        let req = trigger::inline_request(goal, signal, vars, &inline);
        let report = run::execute(cfg, &req, observer).await?;
        if cli.json {
            print_verdict(
                &serde_json::json!({"signal": req.signal, "report": report}),
                report.exit(),
            )?;
        } else {
            print_signal(&req.signal)?;
            if let RunReport::Planned(plan) = &report {
                crate::outln!(
                    "# goal {} (dry run: nothing started, nothing recorded)",
                    plan.goal
                )?;
                crate::outln!("{}", plan.prompt)?;
            }
        }
        return Ok(report.exit());
    }
    let handoff = handoff::hand_to_daemon(&cfg.state_dir, &signal)
        .await
        .map_err(internal)?;
    if let Handoff::Daemon {
        decision,
        reason,
        job,
    } = &handoff
    {
        let exit = crate::daemon::router::exit_for(decision);
        if cli.json {
            print_json(&serde_json::json!({"daemon": handoff, "signal": signal,
                "exit": exit.as_str(), "exit_code": exit.code()}))?;
        } else {
            crate::outln!(
                "handed to the daemon: {}",
                describe_routing(decision, job.as_deref(), reason)
            )?;
        }
        return Ok(exit);
    }
    // No daemon: the same router decides here, and a job it gives is run now.
    let run_opts = crate::daemon::inline::RunOptions {
        lock_wait: Duration::from_secs(opts.wait),
        force_model: opts.force_model,
    };
    let (cancel, _signals) = stoppable(false)?;
    let done = crate::daemon::inline::route_and_run(cfg, &signal, run_opts, observer, cancel)
        .await
        .map_err(|e| match e {
            crate::daemon::inline::InlineError::Run(e) => CliError::from(e),
            crate::daemon::inline::InlineError::Router(
                e @ (crate::daemon::router::RouterError::Routes(_)
                | crate::daemon::router::RouterError::Config(_)),
            ) => usage(e),
            other => internal(other),
        })?;
    let (routed, report) = match done {
        crate::daemon::inline::Inline::NotRun(routed) => {
            let exit = routed.decision.exit();
            if routed.decision.told_operator() {
                tracing::warn!(subject = %signal.subject, "not run: {}", routed.reason);
            }
            if cli.json {
                print_json(&serde_json::json!({"signal": signal, "routing": routed,
                    "exit": exit.as_str(), "exit_code": exit.code()}))?;
            } else {
                print_signal(&signal)?;
                let job = match &routed.decision {
                    crate::daemon::router::RoutingDecision::Merged { into } => Some(into.as_str()),
                    _ => None,
                };
                crate::outln!(
                    "{}",
                    describe_routing(routed.decision.name(), job, &routed.reason)
                )?;
            }
            return Ok(exit);
        }
        crate::daemon::inline::Inline::Ran { routed, report, .. } => (routed, report),
    };
    if cli.json {
        print_verdict(
            &serde_json::json!({"signal": signal, "routing": routed, "report": report}),
            report.exit(),
        )?;
    } else {
        print_signal(&signal)?;
        if let RunReport::Done(r) = &report {
            crate::outln!(
                "run {}: {} ({}) — ${:.4}, {} turns, {:.1}s",
                r.id,
                r.outcome,
                r.reason,
                r.cost_usd,
                r.num_turns,
                r.duration_ms as f64 / 1000.0
            )?;
        }
    }
    Ok(report.exit())
}

/// A routing decision for an operator: what happened to the signal, and why.
fn describe_routing(decision: &str, job: Option<&str>, reason: &str) -> String {
    let job = job.unwrap_or("?");
    match decision {
        "enqueue" => format!("queued as job {job}: {reason}"),
        "merged" => format!("joined job {job}: {reason}"),
        other => {
            let exit = crate::daemon::router::exit_for(other);
            if exit == ExitKind::Ok {
                format!("not run ({other}): {reason}")
            } else {
                format!(
                    "NOT RUN ({other}; exit {} {}): {reason}",
                    exit.code(),
                    exit.as_str()
                )
            }
        }
    }
}

fn print_signal(signal: &Signal) -> Result<(), CliError> {
    let labels: Vec<String> = signal
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    crate::outln!(
        "signal {} {} [{}] {}",
        signal.source.as_str(),
        signal.subject,
        serde_json::to_value(signal.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        labels.join(" ")
    )
}

/// `steward ci`: resolve the push, run `deploy-review` inline, print the decision.
async fn ci(cli: &Cli, args: &CiArgs) -> Result<ExitKind, CliError> {
    use crate::adapters::ci;
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let change = ci::inspect(cfg, &args.base, &args.head)
        .await
        .map_err(|e| CliError {
            kind: e.exit_kind(),
            source: e.into(),
        })?;
    let req = ci::request(&change, Duration::from_secs(args.wait), args.dry_run);
    let mut terminal = agent::TerminalObserver::new();
    let mut quiet = agent::QuietObserver;
    let observer: &mut dyn agent::Observer = if cli.json { &mut quiet } else { &mut terminal };
    let (cancel, _signals) = stoppable(req.dry_run)?;
    let report = run::execute_until(cfg, &req, observer, cancel).await?;
    let result = match report {
        RunReport::Planned(plan) => {
            if cli.json {
                print_verdict(
                    &serde_json::json!({"change": change, "plan": plan}),
                    ExitKind::Ok,
                )?;
            } else {
                crate::outln!(
                    "# {} {}..{}: {} changed files (dry run: nothing started, nothing recorded)",
                    req.signal.subject,
                    change.base,
                    change.head,
                    change.files.len()
                )?;
                crate::outln!("{}", plan.prompt)?;
            }
            return Ok(ExitKind::Ok);
        }
        RunReport::Done(result) => result,
    };
    let decision = ci::decide_change(&change, &result);
    if cli.json {
        print_json(&serde_json::json!({
            "decision": decision.decision,
            "classification": decision.classification,
            "reason": decision.reason,
            "exit": decision.exit.as_str(),
            "exit_code": decision.exit.code(),
            "base": change.base,
            "head": change.head,
            "first_push": change.first_push,
            "changed_files": change.files,
            "run": result,
        }))?;
    } else {
        crate::outln!(
            "{}: {} ({} changed files, classification {})",
            req.signal.subject,
            decision.decision.as_str(),
            change.files.len(),
            decision.classification.map_or("none", |c| c.as_str())
        )?;
        crate::outln!("reason: {}", decision.reason)?;
        crate::outln!(
            "run {}: {} — ${:.4}, {} turns, {:.1}s",
            result.id,
            result.outcome,
            result.cost_usd,
            result.num_turns,
            result.duration_ms as f64 / 1000.0
        )?;
    }
    Ok(decision.exit)
}

/// A verdict-like answer: the value's JSON object with `exit` and `exit_code` added (the names
/// and codes of the README's exit code table), equal to the process's exit status.
pub(crate) fn print_verdict<T: Serialize + ?Sized>(
    value: &T,
    exit: ExitKind,
) -> Result<(), CliError> {
    let mut v = serde_json::to_value(value).map_err(internal)?;
    let Some(map) = v.as_object_mut() else {
        return Err(internal(anyhow::anyhow!(
            "a verdict must be a JSON object to carry its exit code"
        )));
    };
    map.insert("exit".to_string(), exit.as_str().into());
    map.insert("exit_code".to_string(), exit.code().into());
    print_json(&v)
}

/// `steward goals list`: every goal, with its warnings; a goal that does not load is listed with
/// its error, and makes the exit code `usage`.
fn list_goals(defs: &Definitions, json: bool) -> Result<ExitKind, CliError> {
    let mut broken = false;
    if json {
        let mut out = Vec::new();
        for (name, g) in defs.goal_entries() {
            out.push(match g {
                Ok(g) => {
                    let mut v = serde_json::to_value(g).map_err(internal)?;
                    v["error"] = serde_json::Value::Null;
                    v
                }
                Err(e) => {
                    broken = true;
                    serde_json::json!({"name": name, "error": e.to_string(), "warnings": []})
                }
            });
        }
        print_json(&out)?;
    } else {
        let width = defs.goal_entries().map(|(n, _)| n.len()).max().unwrap_or(4);
        for (name, g) in defs.goal_entries() {
            match g {
                Ok(g) => {
                    // The schedule matters to an operator deciding between it and a timer.
                    let when = g
                        .schedule
                        .as_deref()
                        .map(|c| format!("  [schedule {c} UTC]"))
                        .unwrap_or_default();
                    crate::outln!("{:width$}  {}  ({}){when}", g.name, g.description, g.origin)?;
                    for w in &g.warnings {
                        crate::outln!("{:width$}  warning: {w}", "")?;
                    }
                }
                Err(e) => {
                    broken = true;
                    crate::outln!("{name:width$}  BROKEN: {e}")?;
                }
            }
        }
    }
    Ok(if broken {
        ExitKind::Usage
    } else {
        ExitKind::Ok
    })
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(internal)?;
    crate::outln!("{text}")
}

/// Output that could not be written (a closed pipe is not an error: see [`output`]).
pub fn output_error(e: std::io::Error) -> CliError {
    internal(anyhow::Error::new(e).context("cannot write to stdout"))
}

/// Prints an error the way the output mode asks, and returns its exit code.
pub fn report_error(json: bool, e: &CliError) -> u8 {
    if json {
        let v = serde_json::json!({
            "error": format!("{:#}", e.source),
            "exit": e.kind.as_str(),
            "exit_code": e.kind.code(),
        });
        // The error is already being reported; a second failure has nowhere to go.
        let _ = crate::outln!("{v}");
    } else {
        output::stderr(&format!("steward: {:#}\n", e.source));
    }
    e.kind.code()
}
