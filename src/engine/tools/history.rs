//! `run_history`: recent runs and their outcomes for a subject, newest first (the run ledger's
//! summaries, as `steward runs list` shows them).

use serde_json::{Map, Value, json};

use super::args;
use super::{Run, ToolsError};
use crate::base::ledger::Ledger;
use crate::engine::run::list_runs;

const DEFAULT_LIMIT: u64 = 10;
pub const MAX_LIMIT: u64 = 50;

pub(super) fn run_history(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let subject = args::optional_name(args, "subject")?.unwrap_or_else(|| run.hook.subject.clone());
    let goal = args::optional_name(args, "goal")?;
    let limit = args::count(args, "limit", (1, DEFAULT_LIMIT, MAX_LIMIT))? as usize;
    let ledger = Ledger::open(&run.cfg.state_dir).map_err(|e| ToolsError::Failed(e.to_string()))?;
    let runs = list_runs(&ledger).map_err(|e| ToolsError::Failed(e.to_string()))?;
    let matching: Vec<_> = runs
        .into_iter()
        // This run is not history yet.
        .filter(|r| r.id != run.hook.run_id)
        .filter(|r| r.subject == subject)
        .filter(|r| goal.as_ref().is_none_or(|g| r.goal == *g))
        .collect();
    let total = matching.len();
    let runs: Vec<Value> = matching
        .into_iter()
        .take(limit)
        .map(|r| {
            json!({
                "id": r.id,
                "goal": r.goal,
                "started": r.started.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
                "outcome": r.outcome,
                "reason": r.reason,
                "error": r.error,
                "source": r.source,
                "actions_filed": r.actions_filed,
            })
        })
        .collect();
    Ok(json!({"subject": subject, "total": total, "runs": runs}))
}
