//! `steward validate`: run checks alone (all, one phase, or a goal's); exits non-zero when one
//! fails.

use clap::Args;

use super::output::print_verdict;
use super::{Cli, CliError, usage};
use crate::base::outcome::ExitKind;
use crate::defs::check;
use crate::engine::run::{self, Definitions};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// static, preflight, post or invariant.
    #[arg(long)]
    pub phase: Option<String>,
    /// Use this goal's checks per phase.
    #[arg(long)]
    pub goal: Option<String>,
}

pub(super) async fn run(cli: &Cli, args: &ValidateArgs) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let defs = Definitions::load(cfg)?;
    let phase = args
        .phase
        .as_deref()
        .map(str::parse::<check::Phase>)
        .transpose()
        .map_err(|e| usage(anyhow::anyhow!("--phase: {e}")))?;
    let goal_checks = match &args.goal {
        Some(name) => Some(defs.goal(name)?.checks),
        None => {
            every_context_file_loaded(&defs)?;
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

/// "Every check" cannot be claimed when a context file did not load.
fn every_context_file_loaded(defs: &Definitions) -> Result<(), CliError> {
    let broken = defs.context_errors();
    if broken.is_empty() {
        return Ok(());
    }
    let list: Vec<&str> = broken.iter().map(|e| e.error.as_str()).collect();
    Err(usage(anyhow::anyhow!(
        "{} context file error(s); their checks cannot run:\n{}",
        list.len(),
        list.join("\n")
    )))
}
