//! steward's tools for the agent as rmcp tools: the table the run's goal allows (read from the
//! run directory) and the calls, answered by [`crate::engine::tools`].

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::Value;

use crate::engine::tools::{self, ToolsContext};

/// The tools this run's goal lists; none when the run has no tool context (a wait run whose
/// goal lists no steward tool).
pub(super) fn listed(context: Option<&ToolsContext>) -> Vec<Tool> {
    let allowed = context.map(|c| c.tools.as_slice()).unwrap_or_default();
    tools::specs(allowed)
        .into_iter()
        .map(|s| Tool::new(s.name, s.description, Arc::new(super::object(s.schema))))
        .collect()
}

/// Answers one call; a panic in a tool is that call's error, not a dropped session.
pub(super) async fn call(
    run_dir: Arc<PathBuf>,
    name: String,
    arguments: JsonObject,
) -> CallToolResult {
    let shown = name.clone();
    let reply =
        tokio::spawn(async move { tools::call(&run_dir, &name, Value::Object(arguments)).await })
            .await
            .unwrap_or_else(|e| tools::Reply {
                text: format!("steward tool `{shown}` failed: {e}"),
                is_error: true,
            });
    let content = vec![ContentBlock::text(reply.text)];
    if reply.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}
