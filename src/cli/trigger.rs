//! `steward trigger on-failure|timer`: the adapters systemd units call. Builds the signal, offers
//! it to the daemon, else routes and runs it inline under the host lock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::output::{print_json, print_verdict};
use super::run::stoppable;
use super::{Cli, CliError, internal, usage};
use crate::adapters::trigger::{self, InlineOpts, TriggerError};
use crate::base::outcome::ExitKind;
use crate::base::signal::Signal;
use crate::config::Config;
use crate::daemon::handoff::{self, Handoff};
use crate::daemon::inline::{Inline, InlineError, RunOptions};
use crate::daemon::router::{self, RouterError, RoutingDecision};
use crate::engine::agent;
use crate::engine::run::{self, RunReport};

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

/// What a trigger command asks for: the goal, its signal and variables, and the options.
struct Triggered<'a> {
    goal: &'a str,
    signal: Signal,
    vars: BTreeMap<String, String>,
    opts: &'a TriggerOpts,
}

/// `steward trigger …`: build the signal, offer it to the daemon, else run inline under the lock.
pub(super) async fn run(cli: &Cli, cmd: &TriggerCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let t = triggered(cfg, cmd).await?;
    let mut terminal = agent::TerminalObserver::new();
    let mut quiet = agent::QuietObserver;
    let observer: &mut dyn agent::Observer = if cli.json { &mut quiet } else { &mut terminal };
    if t.opts.dry_run {
        return dry_run(cli, cfg, t, observer).await;
    }
    let handoff = handoff::hand_to_daemon(&cfg.state_dir, &t.signal)
        .await
        .map_err(internal)?;
    if let Handoff::Daemon {
        decision,
        reason,
        job,
    } = &handoff
    {
        let exit = router::exit_for(decision);
        if cli.json {
            print_json(&serde_json::json!({"daemon": handoff, "signal": t.signal,
                "exit": exit.as_str(), "exit_code": exit.code()}))?;
        } else {
            crate::outln!(
                "handed to the daemon: {}",
                describe_routing(decision, job.as_deref(), reason)
            )?;
        }
        return Ok(exit);
    }
    inline(cli, cfg, &t, observer).await
}

/// The signal of the command: read from systemd for a failure, made up for a timer.
async fn triggered<'a>(cfg: &Config, cmd: &'a TriggerCommand) -> Result<Triggered<'a>, CliError> {
    let classify = |e: TriggerError| match e {
        TriggerError::Malformed { .. }
        | TriggerError::BadValue { .. }
        | TriggerError::NoId { .. }
        | TriggerError::UnknownUnit(_)
        | TriggerError::BadUnitName(_)
        | TriggerError::ReadFile { .. } => usage(e),
        other => internal(other),
    };
    Ok(match cmd {
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
            Triggered {
                goal: trigger::ON_FAILURE_GOAL,
                signal,
                vars,
                opts,
            }
        }
        TriggerCommand::Timer { goal, opts } => Triggered {
            goal: goal.as_str(),
            signal: Signal::timer(goal),
            vars: BTreeMap::new(),
            opts,
        },
    })
}

/// Nothing is routed or recorded: the plan of the goal the trigger names.
async fn dry_run(
    cli: &Cli,
    cfg: &Config,
    t: Triggered<'_>,
    observer: &mut dyn agent::Observer,
) -> Result<ExitKind, CliError> {
    let inline = InlineOpts {
        lock_wait: Duration::from_secs(t.opts.wait),
        dry_run: true,
        force_model: t.opts.force_model,
    };
    let req = trigger::inline_request(t.goal, t.signal, t.vars, &inline);
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
    Ok(report.exit())
}

/// No daemon: the same router decides here, and a job it gives is run now.
async fn inline(
    cli: &Cli,
    cfg: &Config,
    t: &Triggered<'_>,
    observer: &mut dyn agent::Observer,
) -> Result<ExitKind, CliError> {
    let signal = &t.signal;
    let run_opts = RunOptions {
        lock_wait: Duration::from_secs(t.opts.wait),
        force_model: t.opts.force_model,
    };
    let (cancel, _signals) = stoppable(false)?;
    let done = crate::daemon::inline::route_and_run(cfg, signal, run_opts, observer, cancel)
        .await
        .map_err(inline_error)?;
    let (routed, report) = match done {
        Inline::NotRun(routed) => {
            let exit = routed.decision.exit();
            if routed.decision.told_operator() {
                tracing::warn!(subject = %signal.subject, "not run: {}", routed.reason);
            }
            if cli.json {
                print_json(&serde_json::json!({"signal": signal, "routing": routed,
                    "exit": exit.as_str(), "exit_code": exit.code()}))?;
            } else {
                print_signal(signal)?;
                let job = match &routed.decision {
                    RoutingDecision::Merged { into } => Some(into.as_str()),
                    _ => None,
                };
                crate::outln!(
                    "{}",
                    describe_routing(routed.decision.name(), job, &routed.reason)
                )?;
            }
            return Ok(exit);
        }
        Inline::Ran { routed, report, .. } => (routed, report),
    };
    if cli.json {
        print_verdict(
            &serde_json::json!({"signal": signal, "routing": routed, "report": report}),
            report.exit(),
        )?;
    } else {
        print_signal(signal)?;
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
            let exit = router::exit_for(other);
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

/// An inline route-and-run's error as the CLI reports it: a broken routing table or config is
/// the operator's to fix (usage), anything else steward's.
pub(super) fn inline_error(e: InlineError) -> CliError {
    match e {
        InlineError::Run(e) => CliError::from(e),
        InlineError::Router(e @ (RouterError::Routes(_) | RouterError::Config(_))) => usage(e),
        other => internal(other),
    }
}
