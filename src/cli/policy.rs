//! `steward policy check|explain`: what a goal's tool policy decides for a Bash command, and how
//! the command parses.

use clap::Subcommand;

use super::output::{print_json, print_verdict};
use super::{Cli, CliError, usage};
use crate::base::outcome::ExitKind;
use crate::defs::policy::{self, GoalPolicy, Policy};
use crate::engine::run::Definitions;

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

pub(super) fn run(cli: &Cli, cmd: &PolicyCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let (goal, command) = match cmd {
        PolicyCommand::Check { goal, command } | PolicyCommand::Explain { goal, command } => {
            (goal, command.join(" "))
        }
    };
    let goal_policy = match goal {
        Some(name) => Definitions::load(cfg)?.goal(name)?.policy,
        None => GoalPolicy::default(),
    };
    let policy = Policy::build(
        goal.as_deref().unwrap_or("default"),
        &goal_policy,
        &cfg.workspace,
    )
    .map_err(usage)?;
    match cmd {
        PolicyCommand::Check { .. } => {
            let d = policy::check_command(&policy, &command, &cfg.workspace);
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
            let e = policy::explain_with(&policy, &command, &cfg.workspace);
            print_json(&e)?;
        }
    }
    Ok(ExitKind::Ok)
}
