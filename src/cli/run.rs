//! `steward run GOAL` and `steward ask TEXT`: a goal run now, in the foreground, and the way
//! every foreground run is stopped by SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;

use super::output::{print_verdict, stderr};
use super::{Cli, CliError, internal};
use crate::base::cancel::Cancel;
use crate::base::outcome::ExitKind;
use crate::base::signal::Signal;
use crate::engine::agent;
use crate::engine::run::{self, RunReport, RunRequest};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Goal name (see `steward goals list`).
    pub goal: String,
    #[command(flatten)]
    pub opts: RunOpts,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// What you want done or looked at.
    pub text: String,
    /// Make it a change to the workspace repository (the `change` goal): the agent edits a
    /// worktree, steward validates the diff and files it for approval; nothing is applied.
    #[arg(long)]
    pub change: bool,
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

/// `KEY=VALUE` of `--var`.
pub(super) fn parse_var(raw: &str) -> Result<(String, String), String> {
    let (k, v) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}`: expected KEY=VALUE"))?;
    if k.trim().is_empty() {
        return Err(format!("`{raw}`: empty key"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

/// `steward run GOAL`.
pub(super) async fn run(cli: &Cli, args: &RunArgs) -> Result<ExitKind, CliError> {
    run_goal(cli, &args.goal, &args.opts, BTreeMap::new()).await
}

/// `steward ask TEXT`: the `intent` goal (or with `--change` the `change` goal) with the text as
/// its `intent` variable.
pub(super) async fn ask(cli: &Cli, args: &AskArgs) -> Result<ExitKind, CliError> {
    let extra = BTreeMap::from([("intent".to_string(), args.text.clone())]);
    let goal = if args.change { "change" } else { "intent" };
    run_goal(cli, goal, &args.opts, extra).await
}

async fn run_goal(
    cli: &Cli,
    goal: &str,
    opts: &RunOpts,
    extra_vars: BTreeMap<String, String>,
) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
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
        print_report(&report)?;
    }
    Ok(report.exit())
}

/// The text form of a run's report: the plan of a dry run, or the run's one-line summary.
fn print_report(report: &RunReport) -> Result<(), CliError> {
    match report {
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
    Ok(())
}

/// SIGINT and SIGTERM stop the run (claude interrupted, then killed; the run recorded
/// `cancelled`; exit 130/143) instead of killing steward and leaving claude behind. A dry run
/// starts nothing that needs stopping: the signals keep their default effect there. The handler
/// lives as long as the returned guard.
pub(super) fn stoppable(dry_run: bool) -> Result<(Cancel, Option<SignalGuard>), CliError> {
    if dry_run {
        return Ok((Cancel::never(), None));
    }
    let (canceller, cancel) = crate::base::cancel::pair();
    let task = crate::base::cancel::on_signals(canceller, stderr).map_err(internal)?;
    Ok((cancel, Some(SignalGuard(task))))
}

/// Ends the signal listener when the run is over.
pub(super) struct SignalGuard(tokio::task::JoinHandle<()>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
