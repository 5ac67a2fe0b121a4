//! The `--mcp-config` of a wait run: claude starts this very binary as the MCP server that
//! answers its permission prompts (`steward mcp serve`, the adapter in `adapters/mcp`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::engine::agent::PromptTool;

/// The server's name in `--mcp-config`.
pub const SERVER_NAME: &str = "steward";
/// The one tool it serves.
pub const TOOL_NAME: &str = "approval_prompt";

/// Slack claude gets on top of the server's own wait, so that the server's answer (a denial
/// naming the expired action) arrives before claude's own MCP timeout would fire.
const CALL_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

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
