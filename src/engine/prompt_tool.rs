//! The `--mcp-config` of steward's own MCP server (`steward mcp serve`, the adapter in
//! `adapters/mcp`): claude starts this very binary whenever a run needs it, for the permission
//! prompt of a wait run, for the steward tools its goal lists (`engine/tools`), or both.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::engine::agent::{PromptTool, ToolServer};

/// The server's name in `--mcp-config`.
pub const SERVER_NAME: &str = "steward";
/// The permission-prompt tool it serves.
pub const TOOL_NAME: &str = "approval_prompt";

/// Slack claude gets on top of the server's own wait, so that the server's answer (a denial
/// naming the expired action) arrives before claude's own MCP timeout would fire.
const CALL_TIMEOUT_MARGIN: Duration = Duration::from_secs(60);

/// The inline `--mcp-config` that starts this very binary as the server of `run_dir`.
pub fn mcp_config(steward_exe: &Path, run_dir: &Path) -> serde_json::Value {
    json!({
        "mcpServers": {
            SERVER_NAME: {
                "type": "stdio",
                // Absolute: claude resolves relative paths against the session cwd (§5.1).
                "command": steward_exe.display().to_string(),
                "args": ["mcp", "serve", "--run-dir", run_dir.display().to_string()],
            }
        }
    })
}

/// The prompt tool for a wait run: claude starts this very binary as the MCP server.
pub fn prompt_tool(steward_exe: &Path, run_dir: &Path, wait: Duration) -> PromptTool {
    PromptTool {
        server: SERVER_NAME.to_string(),
        tool: TOOL_NAME.to_string(),
        mcp_config: mcp_config(steward_exe, run_dir),
        call_timeout: wait + CALL_TIMEOUT_MARGIN,
    }
}

/// The server for the steward tools a goal lists (qualified names); none when it lists none.
pub fn tool_server(steward_exe: &Path, run_dir: &Path, tools: &[String]) -> Option<ToolServer> {
    if tools.is_empty() {
        return None;
    }
    Some(ToolServer {
        server: SERVER_NAME.to_string(),
        mcp_config: mcp_config(steward_exe, run_dir),
        tools: tools.to_vec(),
    })
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

    #[test]
    fn a_tool_server_only_for_a_goal_that_lists_steward_tools() {
        let exe = Path::new("/usr/bin/steward");
        let run = Path::new("/s/runs/r1");
        assert!(tool_server(exe, run, &[]).is_none());
        let t = tool_server(exe, run, &["mcp__steward__report".to_string()]).unwrap();
        assert_eq!(t.mcp_config, mcp_config(exe, run));
        assert_eq!(t.tools, ["mcp__steward__report"]);
    }
}
