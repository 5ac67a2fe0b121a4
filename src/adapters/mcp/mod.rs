//! `steward mcp serve --run-dir DIR`: the MCP stdio server claude starts in a wait run
//! (`approval = "wait"`). It exposes one tool, `approval_prompt`, which claude calls as its
//! `--permission-prompt-tool` (named `mcp__steward__approval_prompt`). The decision logic is in
//! [`crate::engine::approval_prompt`]; this file is the rmcp adapter and the `--mcp-config` that starts it.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::engine::approval_prompt as prompt;
use crate::engine::prompt_tool::TOOL_NAME;

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
    #[error("the MCP session ended abnormally: {0}")]
    Session(String),
}

/// Serves the prompt tool on stdin/stdout until claude closes the session.
pub async fn serve(run_dir: PathBuf) -> Result<(), McpError> {
    let server = StewardServer {
        run_dir: Arc::new(run_dir),
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| McpError::Session(e.to_string()))?;
    Ok(())
}

struct StewardServer {
    run_dir: Arc<PathBuf>,
}

fn tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "tool_name": {"type": "string", "description": "The tool claude wants to use."},
            "input": {"type": "object", "description": "The tool's input."},
            "tool_use_id": {"type": "string"}
        },
        "required": ["tool_name", "input"]
    });
    let schema: JsonObject = match schema {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    };
    Tool::new(
        TOOL_NAME,
        "steward's permission prompt: decides a tool call by the run's policy and waits for an \
         operator where the policy requires approval. Called by Claude Code itself.",
        Arc::new(schema),
    )
}

impl ServerHandler for StewardServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("steward", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![tool()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let answer = if request.name != TOOL_NAME {
            prompt::PromptAnswer::Deny {
                message: format!("steward serves no tool `{}`", request.name),
            }
        } else {
            let arguments = Value::Object(request.arguments.unwrap_or_default());
            let run_dir = Arc::clone(&self.run_dir);
            // A task of its own: a panic in the decision is a denial, not a dropped call.
            tokio::spawn(
                async move { prompt::answer(&run_dir, arguments, prompt::POLL_INTERVAL).await },
            )
            .await
            .unwrap_or_else(|e| prompt::PromptAnswer::Deny {
                message: format!("steward approval prompt failed, so it denies: {e}"),
            })
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(answer.to_text())]).into())
    }
}
