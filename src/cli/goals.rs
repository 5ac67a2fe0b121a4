//! `steward goals list|render`: the goal templates, and one goal's prompt with live context.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Subcommand;

use super::output::print_json;
use super::run::parse_var;
use super::{Cli, CliError, internal};
use crate::base::outcome::ExitKind;
use crate::base::signal::Signal;
use crate::engine::agent;
use crate::engine::run::{self, Definitions, RunReport, RunRequest};

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

pub(super) async fn run(cli: &Cli, cmd: &GoalsCommand) -> Result<ExitKind, CliError> {
    match cmd {
        GoalsCommand::List => {
            let loaded = cli.config()?;
            let defs = Definitions::load(&loaded.config)?;
            list_goals(&defs, cli.json)
        }
        GoalsCommand::Render { name, vars } => render(cli, name, vars).await,
    }
}

/// `steward goals render`: the dry-run plan's prompt, nothing started or recorded.
async fn render(cli: &Cli, name: &str, vars: &[(String, String)]) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let vars: BTreeMap<String, String> = vars.iter().cloned().collect();
    let req = RunRequest {
        goal: name.to_string(),
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

/// `steward goals list`: every goal, with its warnings; a goal that does not load is listed with
/// its error, and makes the exit code `usage`.
fn list_goals(defs: &Definitions, json: bool) -> Result<ExitKind, CliError> {
    let broken = if json {
        list_json(defs)?
    } else {
        list_text(defs)?
    };
    Ok(if broken {
        ExitKind::Usage
    } else {
        ExitKind::Ok
    })
}

/// The JSON list; true when a goal is broken.
fn list_json(defs: &Definitions) -> Result<bool, CliError> {
    let mut broken = false;
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
    Ok(broken)
}

/// The text list; true when a goal is broken.
fn list_text(defs: &Definitions) -> Result<bool, CliError> {
    let mut broken = false;
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
    Ok(broken)
}
