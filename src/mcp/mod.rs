//! `steward mcp serve --run-dir DIR`: the MCP stdio server claude starts in a wait run
//! (`approval = "wait"`). It exposes one tool, `approval_prompt`, which claude calls as its
//! `--permission-prompt-tool` (named `mcp__steward__approval_prompt`). The decision logic is in
//! [`prompt`]; this file is the rmcp adapter and the `--mcp-config` that starts it.

pub mod prompt;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::agent::PromptTool;

/// The server's name in `--mcp-config`.
pub const SERVER_NAME: &str = "steward";
/// The one tool it serves.
pub const TOOL_NAME: &str = "approval_prompt";

/// Slack claude gets on top of the server's own wait, so that the server's answer (a denial
/// naming the expired action) arrives before claude's own MCP timeout would fire.
const CALL_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
    #[error("the MCP session ended abnormally: {0}")]
    Session(String),
}

/// The prompt tool for a wait run: claude starts this very binary as the MCP server.
pub fn prompt_tool(steward_exe: &Path, run_dir: &Path, wait: Duration) -> PromptTool {
    PromptTool {
        server: SERVER_NAME.to_string(),
        tool: TOOL_NAME.to_string(),
        mcp_config: json!({
            "mcpServers": {
                SERVER_NAME: {
                    "type": "stdio",
                    // Absolute: claude resolves relative paths against the session cwd (§5.1).
                    "command": steward_exe.display().to_string(),
                    "args": ["mcp", "serve", "--run-dir", run_dir.display().to_string()],
                }
            }
        }),
        call_timeout: wait + CALL_TIMEOUT_MARGIN,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_starts_this_binary_with_the_run_dir() {
        let p = prompt_tool(
            Path::new("/usr/bin/steward"),
            Path::new("/s/runs/r1"),
            Duration::from_secs(30),
        );
        assert_eq!(p.qualified_name(), "mcp__steward__approval_prompt");
        let server = &p.mcp_config["mcpServers"]["steward"];
        assert_eq!(server["command"], "/usr/bin/steward");
        assert_eq!(
            server["args"],
            json!(["mcp", "serve", "--run-dir", "/s/runs/r1"])
        );
        assert_eq!(p.call_timeout, Duration::from_secs(90));
    }
}
