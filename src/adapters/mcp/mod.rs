//! `steward mcp serve --run-dir DIR`: the MCP stdio server claude starts for a run. It serves
//! the permission-prompt tool `approval_prompt` in a wait run (`prompt.rs`, claude's
//! `--permission-prompt-tool`) and the steward tools the run's goal lists (`tools.rs`: report,
//! probe, check, …; the logic is `engine/tools`). This file is the rmcp server; the
//! `--mcp-config` that starts it is `engine/prompt_tool.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::engine::prompt_tool::TOOL_NAME;

mod prompt;
mod tools;

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("the MCP session could not start: {0}")]
    Start(String),
    #[error("the MCP session ended abnormally: {0}")]
    Session(String),
}

/// Serves the run's tools on stdin/stdout until claude closes the session.
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

/// A JSON schema as rmcp's object type (anything else: an empty object).
fn object(schema: Value) -> JsonObject {
    match schema {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    }
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
        // The prompt tool only in a wait run (a run without a tool context is one: the
        // server was started for the prompt alone).
        let context = crate::engine::tools::ToolsContext::read(&self.run_dir).ok();
        let mut listed = Vec::new();
        if context.as_ref().is_none_or(|c| c.prompt_tool) {
            listed.push(prompt::tool());
        }
        listed.extend(tools::listed(context.as_ref()));
        Ok(ListToolsResult::with_all_items(listed))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let run_dir = Arc::clone(&self.run_dir);
        let arguments = request.arguments.unwrap_or_default();
        let result = if request.name == TOOL_NAME {
            prompt::call(run_dir, arguments).await
        } else {
            // Unknown and unlisted names are refused by the tool service itself.
            tools::call(run_dir, request.name.to_string(), arguments).await
        };
        Ok(result.into())
    }
}
