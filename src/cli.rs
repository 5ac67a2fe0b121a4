//! The command-line adapter: parses arguments, calls the services, prints text or JSON, and
//! returns the exit kind. No domain logic lives here. One file per subcommand (its clap types
//! and its `run`); this one holds the top-level parser and the dispatch.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::base::outcome::ExitKind;
use crate::config::{Config, ConfigArgs, Loaded};

mod actions;
mod changes;
mod ci;
mod completions;
mod config;
mod context;
mod dev;
mod doctor;
mod error;
mod goals;
mod hook;
mod incidents;
mod knowledge;
mod mcp;
mod notify;
pub mod output;
mod policy;
mod report;
mod report_signal;
mod run;
mod runs;
mod serve;
mod trigger;
mod validate;

pub use actions::ActionsCommand;
pub use changes::ChangesCommand;
pub use ci::CiArgs;
pub use completions::CompletionsArgs;
pub use config::ConfigCommand;
pub use context::ContextArgs;
pub use dev::DevCommand;
pub use error::{CliError, output_error, report_error};
pub(crate) use error::{internal, usage};
pub use goals::GoalsCommand;
pub use hook::{HookCommand, hook_pre_tool_use};
pub use incidents::IncidentsCommand;
pub use knowledge::KnowledgeCommand;
pub use mcp::McpCommand;
pub use policy::PolicyCommand;
pub use report::ReportArgs;
pub use run::{AskArgs, RunArgs, RunOpts};
pub use runs::{RunsCommand, RunsListArgs};
pub use serve::ServeArgs;
pub use trigger::{TriggerCommand, TriggerOpts};
pub use validate::ValidateArgs;

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
    Ask(AskArgs),
    /// Show what a run would see: the probes and their (redacted) output.
    Context(ContextArgs),
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
    Validate(ValidateArgs),
    /// The tool policy: what a goal lets the agent run.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Pending actions: approval-required calls waiting for a human.
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// Change sets: proposed changes to the workspace repository, their review, approval
    /// (bound to the exact diff and artefacts) and rejection.
    #[command(subcommand)]
    Changes(ChangesCommand),
    /// Knowledge notes agents proposed: review, accept (selected into later prompts), reject.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
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
    Serve(ServeArgs),
    /// Notifications: `test` a target, the outbox's `status`, one delivery pass (`flush`).
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// A snapshot of the host (containers, listening sockets, failed units, disk use, the NixOS
    /// generation), what changed since the last one, and what needs attention (exit 1).
    Report(ReportArgs),
    /// Container crashes captured by `steward serve`'s Docker watch.
    #[command(subcommand)]
    Incidents(IncidentsCommand),
    /// Check the installation, and prove with the installed claude that the boundary holds.
    Doctor,
    /// Development tools.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page, steward(1), as roff.
    Man,
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
        Command::Run(args) => run::run(&cli, args).await,
        Command::Ask(args) => run::ask(&cli, args).await,
        Command::Context(args) => context::run(&cli, args).await,
        Command::Goals(cmd) => goals::run(&cli, cmd).await,
        Command::Config(cmd) => config::run(&cli, cmd),
        Command::Runs(cmd) => runs::run(&cli, cmd).await,
        Command::Validate(args) => validate::run(&cli, args).await,
        Command::Policy(cmd) => policy::run(&cli, cmd),
        Command::Actions(cmd) => actions::run(&cli, cmd).await,
        Command::Changes(cmd) => changes::run(&cli, cmd).await,
        Command::Knowledge(cmd) => knowledge::run(&cli, cmd),
        Command::Trigger(cmd) => trigger::run(&cli, cmd).await,
        Command::Ci(args) => ci::run(&cli, args).await,
        Command::Report(args) => report::run(&cli, args).await,
        Command::Incidents(cmd) => incidents::run(&cli, cmd).await,
        Command::Hook(HookCommand::PreToolUse { run_dir }) => {
            // Normally taken by `hook_pre_tool_use` before any runtime starts.
            Ok(ExitKind::from_code(hook_pre_tool_use(run_dir)))
        }
        Command::Mcp(cmd) => mcp::run(cmd).await,
        Command::Serve(args) => serve::run(&cli, args).await,
        Command::Notify(cmd) => notify::run(&cli, cmd).await,
        Command::Doctor => doctor::run(&cli).await,
        Command::Dev(cmd) => dev::run(cmd).await,
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
    }
}
