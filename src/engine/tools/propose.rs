//! The proposing tools: `propose_note` (a knowledge proposal, pending review) and
//! `propose_action`, which the hook decides before it could ever get here: the call is denied
//! and the argv filed as a pending action (`engine/boundary.rs`, the same filing as a queued
//! Bash call). Nothing here runs a command.

use serde_json::{Map, Value, json};

use super::args::{self, MAX_TEXT};
use super::{Run, ToolsError};
use crate::engine::knowledge::{KnowledgeStore, Limits, from_verdict};

pub(super) fn propose_note(run: &Run, args: &Map<String, Value>) -> Result<Value, ToolsError> {
    let limits = Limits::default();
    let title = args::text(args, "title", limits.title_chars * 4)?;
    let body = args::text(args, "body", MAX_TEXT)?;
    let tags = args::strings(args, "tags", limits.tags, limits.tag_chars)?;
    let note = json!({"title": title, "tags": tags, "body": body});
    let (proposals, skipped) = from_verdict(
        &[note],
        &run.hook.run_id,
        &run.hook.goal,
        &run.redactor,
        &limits,
    );
    if let Some(why) = skipped.first() {
        return Err(ToolsError::argument("(note)", why.clone()));
    }
    let store =
        KnowledgeStore::open(&run.cfg.state_dir).map_err(|e| ToolsError::Failed(e.to_string()))?;
    let filed = store
        .file(proposals, &limits)
        .map_err(|e| ToolsError::Failed(e.to_string()))?;
    if let Some(why) = filed.dropped.first() {
        return Err(ToolsError::Failed(format!("not filed: {why}")));
    }
    Ok(json!({
        "filed": filed.ids,
        "state": "pending",
        "review": "an operator reviews it with `steward knowledge list`",
    }))
}

/// Reached only if a hook allowed the call, which steward's hook never does: fail closed.
pub(super) fn propose_action(args: &Map<String, Value>) -> Result<Value, ToolsError> {
    args::strings(args, "argv", args::MAX_ARGV, args::MAX_WORD)?;
    Err(ToolsError::Failed(
        "propose_action is decided by steward's policy hook (filed as a pending action); the \
         server runs nothing"
            .into(),
    ))
}
