//! The tools over the run's goal: `probe` and `check` (one of the goal's own, by name) and
//! `service_contract` (the workspace's declared service) and `knowledge` (an operator-reviewed
//! note).

use serde_json::{Map, Value, json};

use super::args;
use super::{Run, ToolsError};
use crate::defs::check::{CheckDef, Phase, run_checks_in};

pub(super) async fn probe(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let name = args::name(args, "name")?;
    let goal_probes = run
        .defs
        .catalog
        .select(&run.goal.probes)
        .map_err(|e| ToolsError::Definitions(e.to_string()))?;
    let Some(def) = goal_probes.into_iter().find(|p| p.name == name) else {
        return Err(ToolsError::NotFound(format!(
            "goal `{}` has no probe `{name}`",
            run.goal.name
        )));
    };
    let results = crate::defs::probe::gather(&[def], &run.redactor, &run.cfg.claude.path).await;
    Ok(serde_json::to_value(&results[..]).map_or(Value::Null, |mut v| v[0].take()))
}

pub(super) async fn check(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let name = args::name(args, "name")?;
    let def = goal_check(run, &name)?;
    // Where and how the run's own checks run.
    let env = crate::engine::run::check_env(&run.cfg);
    let results = run_checks_in(std::slice::from_ref(&def), &env).await;
    let results: Vec<_> = results.iter().map(|r| r.redacted(&run.redactor)).collect();
    let mut value = serde_json::to_value(results).map_err(|e| ToolsError::Failed(e.to_string()))?;
    Ok(value[0].take())
}

/// A check of the goal's, in any phase.
fn goal_check(run: &Run, name: &str) -> Result<CheckDef, ToolsError> {
    for phase in Phase::ALL {
        let defs = run
            .defs
            .checks
            .for_phase(&run.goal.checks, phase)
            .map_err(|e| ToolsError::Definitions(e.to_string()))?;
        if let Some(def) = defs.into_iter().find(|c| c.name == name) {
            return Ok(def);
        }
    }
    Err(ToolsError::NotFound(format!(
        "goal `{}` has no check `{name}`",
        run.goal.name
    )))
}

pub(super) fn service_contract(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let name = args::name(args, "name")?;
    let contract = crate::defs::service::find(&run.cfg.workspace, &name)
        .map_err(|e| ToolsError::Failed(e.to_string()))?;
    Ok(json!({"name": name, "contract": contract}))
}

/// Any loaded note: every one is operator-reviewed (bundled, the workspace's, or accepted).
pub(super) fn knowledge(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let name = args::name(args, "name")?;
    let Some(note) = run.defs.notes.iter().find(|n| n.name == name) else {
        return Err(ToolsError::NotFound(format!("no knowledge note `{name}`")));
    };
    Ok(json!({"name": note.name, "title": note.title, "tags": note.tags, "body": note.body}))
}
