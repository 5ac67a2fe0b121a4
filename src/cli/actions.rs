//! `steward actions list|show|approve|reject`. Approving shows exactly what will run and, on a
//! terminal, asks first; off a terminal (a script, a test) it needs `--yes`, so that nothing
//! runs because a pipe happened to be attached.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Subcommand;

use super::output::{print_json, print_verdict};
use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::engine::approval::{Action, ActionState, ApprovalError, Executor, Store};
use crate::engine::run;

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

fn operator_name(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

fn kind(e: ApprovalError) -> CliError {
    match e {
        ApprovalError::Ledger(_) => internal(e),
        other => usage(other),
    }
}

pub(super) async fn run(cli: &Cli, cmd: &ActionsCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let store = Store::open(&cfg.state_dir).map_err(internal)?;
    match cmd {
        ActionsCommand::List => {
            let list = store.list().map_err(kind)?;
            if cli.json {
                print_json(&list)?;
            } else if list.is_empty() {
                crate::outln!("no actions")?;
            } else {
                list.iter().try_for_each(print_line)?;
            }
            Ok(ExitKind::Ok)
        }
        ActionsCommand::Show { id } => {
            let a = store.get(id).map_err(kind)?;
            if cli.json {
                print_json(&a)?;
            } else {
                print_action(&a)?;
            }
            Ok(ExitKind::Ok)
        }
        ActionsCommand::Reject { id, by, note } => {
            let who = operator_name(by);
            let a = store.reject(id, &who, note.clone()).map_err(kind)?;
            // As the page records it: live pages and notifications see the decision.
            let recorded = crate::base::ledger::Ledger::open(&cfg.state_dir).and_then(|l| {
                l.event(
                    "action_rejected",
                    None,
                    serde_json::json!({"action": a.id, "by": who, "note": note}),
                )
            });
            if let Err(e) = recorded {
                tracing::warn!("the rejection of {} is not in the event log: {e}", a.id);
            }
            if cli.json {
                print_json(&a)?;
            } else {
                crate::outln!("{} rejected", a.id)?;
            }
            Ok(ExitKind::Ok)
        }
        ActionsCommand::Approve {
            id,
            yes,
            by,
            note,
            timeout,
        } => {
            // What cannot be approved is said before anyone is asked.
            let a = store.approvable(id).map_err(kind)?;
            if !cli.json {
                print_plan(&a)?;
            }
            confirm(&a, *yes)?;
            approve(cli, cfg, id, by, note, *timeout).await
        }
    }
}

fn print_line(a: &Action) -> Result<(), CliError> {
    // Operators should see that a run is blocked on this one.
    let waiting = match (a.executor, a.state) {
        (Executor::Agent, ActionState::Pending) => {
            format!("  (run {} is waiting)", a.run_id.as_deref().unwrap_or("?"))
        }
        _ => String::new(),
    };
    crate::outln!(
        "{}  {:<8}  {}  [{}]  {}{waiting}",
        a.id,
        a.state,
        a.argv.join(" "),
        a.subjects().join(", "),
        a.rationale
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn who_runs(a: &Action) -> String {
    match a.executor {
        Executor::Steward => "steward's executor (no shell, clean environment)".into(),
        Executor::Agent => format!(
            "the waiting run {}: its agent runs the call",
            a.run_id.as_deref().unwrap_or("?")
        ),
    }
}

fn print_action(a: &Action) -> Result<(), CliError> {
    crate::outln!("action {}: {}", a.id, a.state)?;
    crate::outln!("  command: {}", a.argv.join(" "))?;
    crate::outln!("  rule:    {}", a.rule)?;
    crate::outln!("  run by:  {}", who_runs(a))?;
    crate::outln!(
        "  checks after it: {}",
        if a.checks.is_empty() {
            "(none)".to_string()
        } else {
            a.checks.join(", ")
        }
    )?;
    crate::outln!(
        "  filed {}, expires {}",
        rfc3339(a.created),
        rfc3339(a.expires)
    )?;
    crate::outln!(
        "  proposed {} time(s), for {}:",
        a.proposals,
        a.subjects().join(", ")
    )?;
    for c in &a.contributions {
        crate::outln!(
            "    - {} (goal {}, run {}, {}): {}",
            c.subject,
            c.goal,
            c.run_id.as_deref().unwrap_or("-"),
            rfc3339(c.at),
            c.rationale
        )?;
    }
    if !a.resolved.is_empty() {
        crate::outln!("  withdrawn (their alert resolved):")?;
        for c in &a.resolved {
            crate::outln!(
                "    - {} (run {}): {}",
                c.subject,
                c.run_id.as_deref().unwrap_or("-"),
                c.rationale
            )?;
        }
    }
    if let Some(d) = &a.decision {
        crate::outln!(
            "  decision: {} by {} at {}{}",
            match a.state {
                ActionState::Rejected => "rejected",
                _ => "approved",
            },
            d.by,
            rfc3339(d.at),
            d.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )?;
    }
    if let Some(r) = &a.expired_reason {
        crate::outln!("  expired: {r}")?;
    }
    if let Some(e) = &a.execution {
        crate::outln!(
            "  ran {}: exit {}, {} ms{}{}; checks {}",
            rfc3339(e.started),
            e.exit_code.map_or("-".into(), |c| c.to_string()),
            e.duration_ms,
            if e.timed_out { ", timed out" } else { "" },
            e.error
                .as_ref()
                .map(|x| format!(", error: {x}"))
                .unwrap_or_default(),
            if e.checks_passed { "passed" } else { "failed" }
        )?;
        for (label, text) in [("stdout", &e.stdout), ("stderr", &e.stderr)] {
            for (i, line) in text.lines().take(10).enumerate() {
                crate::outln!("    {} {line}", if i == 0 { label } else { "      " })?;
            }
        }
    }
    Ok(())
}

/// Exactly what approving will do, before it is done.
fn print_plan(a: &Action) -> Result<(), CliError> {
    crate::outln!("approving {} runs: {}", a.id, a.argv.join(" "))?;
    crate::outln!("  run by: {}", who_runs(a))?;
    crate::outln!("  for:    {}", a.subjects().join(", "))?;
    crate::outln!(
        "  then checks: {}",
        if a.checks.is_empty() {
            "(none)".to_string()
        } else {
            a.checks.join(", ")
        }
    )?;
    crate::outln!("  (the goal's checks are re-run first: a changed state refuses it as stale)")
}

/// On a terminal: ask. Off a terminal: `--yes` or nothing runs.
fn confirm(a: &Action, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(usage(anyhow::anyhow!(
            "not approved: stdin is not a terminal, so nobody can confirm; pass --yes to approve \
             {} (`{}`) from a script",
            a.id,
            a.argv.join(" ")
        )));
    }
    super::output::stderr(&format!("approve and run `{}`? [y/N] ", a.argv.join(" ")));
    let mut answer = String::new();
    stdin
        .read_line(&mut answer)
        .map_err(|e| internal(anyhow::Error::new(e).context("cannot read the answer")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(usage(anyhow::anyhow!(
            "not approved: nothing ran; {} is still pending",
            a.id
        )))
    }
}

async fn approve(
    cli: &Cli,
    cfg: &crate::config::Config,
    id: &str,
    by: &Option<String>,
    note: &Option<String>,
    timeout: u64,
) -> Result<ExitKind, CliError> {
    let outcome = run::approve_and_execute(
        cfg,
        id,
        &operator_name(by),
        note.clone(),
        Duration::from_secs(timeout),
    )
    .await
    .map_err(|e| match e {
        run::RunError::Approval(a) => kind(a),
        other => CliError::from(other),
    })?;
    if outcome.executor == Executor::Agent {
        if cli.json {
            print_verdict(&outcome, ExitKind::Ok)?;
        } else {
            crate::outln!(
                "{} approved: the waiting run {} runs `{}` itself",
                outcome.id,
                outcome.run_id.as_deref().unwrap_or("?"),
                outcome.argv.join(" ")
            )?;
        }
        return Ok(ExitKind::Ok);
    }
    let exit = if outcome.state == ActionState::Done {
        ExitKind::Ok
    } else {
        ExitKind::ValidationFailed
    };
    if cli.json {
        print_verdict(&outcome, exit)?;
    } else {
        let exec = outcome.execution.as_ref();
        crate::outln!(
            "{} {}: `{}` exit {} — checks {}",
            outcome.id,
            outcome.state,
            outcome.argv.join(" "),
            exec.and_then(|e| e.exit_code)
                .map_or("-".to_string(), |c| c.to_string()),
            if exec.is_some_and(|e| e.checks_passed) {
                "passed"
            } else {
                "failed"
            }
        )?;
    }
    Ok(exit)
}
