//! The permission-prompt tool (`approval_prompt`) as an rmcp tool: claude calls it in a wait
//! run for every call steward's hook left to an operator. The decision is
//! [`crate::engine::approval_prompt`].

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::{Value, json};

use crate::engine::approval_prompt as prompt;
use crate::engine::prompt_tool::TOOL_NAME;

pub(super) fn tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "tool_name": {"type": "string", "description": "The tool claude wants to use."},
            "input": {"type": "object", "description": "The tool's input."},
            "tool_use_id": {"type": "string"}
        },
        "required": ["tool_name", "input"]
    });
    Tool::new(
        TOOL_NAME,
        "steward's permission prompt: decides a tool call by the run's policy and waits for an \
         operator where the policy requires approval. Called by Claude Code itself.",
        Arc::new(super::object(schema)),
    )
}

/// Answers one prompt call; a panic in the decision is a denial, not a dropped call.
pub(super) async fn call(run_dir: Arc<PathBuf>, arguments: JsonObject) -> CallToolResult {
    let arguments = Value::Object(arguments);
    let answer =
        tokio::spawn(
            async move { prompt::answer(&run_dir, arguments, prompt::POLL_INTERVAL).await },
        )
        .await
        .unwrap_or_else(|e| prompt::PromptAnswer::Deny {
            message: format!("steward approval prompt failed, so it denies: {e}"),
        });
    CallToolResult::success(vec![ContentBlock::text(answer.to_text())])
}
