//! `steward ci`: a CI step on a push; reviews BASE..HEAD with the `deploy-review` goal inline and
//! prints the decision (exit 0 deploy, 6 needs approval, 3/4/5 failed).

use std::time::Duration;

use clap::Args;

use super::output::{print_json, print_verdict};
use super::run::stoppable;
use super::{Cli, CliError};
use crate::adapters::{ci, ci_apply};
use crate::base::outcome::ExitKind;
use crate::engine::agent;
use crate::engine::run::{self, RunReport, RunRequest, RunResult};

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
    /// Deploy: a clean push is applied through the workspace's `[change] profile` and verified
    /// (rolled back on failure); a risky one is filed as a pending change for approval.
    #[arg(long)]
    pub apply: bool,
}

/// `steward ci`: resolve the push, run `deploy-review` inline, print the decision.
pub(super) async fn run(cli: &Cli, args: &CiArgs) -> Result<ExitKind, CliError> {
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
    let report = run::execute_until(cfg, &req, observer, cancel.clone()).await?;
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
    let protected = crate::defs::change::ProtectedPaths::for_workspace(cfg, &cfg.workspace);
    let decision = ci::decide_change(&change, &result, &protected);
    let applied = if args.apply {
        let a = ci_apply::apply_push(cfg, &change, &result, &decision, &cancel)
            .await
            .map_err(|e| CliError {
                kind: e.exit_kind(),
                source: e.into(),
            })?;
        Some(a)
    } else {
        None
    };
    print_decision(cli, &req, &change, &result, &decision, applied.as_ref())
}

/// The deploy decision for the reviewed change, as JSON or text; its exit kind.
fn print_decision(
    cli: &Cli,
    req: &RunRequest,
    change: &ci::Change,
    result: &RunResult,
    decision: &ci::CiVerdict,
    applied: Option<&ci_apply::Applied>,
) -> Result<ExitKind, CliError> {
    let exit = applied.map_or(decision.exit, |a| a.exit);
    let filed = applied.and_then(|a| a.change.as_ref());
    if cli.json {
        print_json(&serde_json::json!({
            "decision": decision.decision,
            "classification": decision.classification,
            "reason": decision.reason,
            "exit": exit.as_str(),
            "exit_code": exit.code(),
            "change": filed,
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
        if let Some(c) = filed {
            crate::outln!("change {}: {} ({})", c.id, c.state, c.reason)?;
            if c.reboot_needed {
                crate::outln!("a reboot is needed for all of it to take effect")?;
            }
            crate::outln!("see: steward changes show {}", c.id)?;
        }
    }
    Ok(exit)
}
