//! The `--mcp-config` of steward's own MCP server (`steward mcp serve`, the adapter in
//! `adapters/mcp`): claude starts this very binary whenever a run needs it, for the permission
//! prompt of a wait run, for the steward tools its goal lists (`engine/tools`), or both.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::base::ledger::LedgerError;
use crate::config::Config;
use crate::defs::goal::{ApprovalMode, Goal};
use crate::engine::agent::{PermissionMode, PromptTool, ToolServer};
use crate::engine::tools::ToolsContext;

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

/// The steward tools a goal lists (`mcp__steward__report`, …), in its order.
pub fn steward_tools(goal: &Goal) -> Vec<String> {
    goal.tools
        .iter()
        .filter(|t| crate::defs::policy::steward_tools::is_steward_tool(t))
        .cloned()
        .collect()
}

/// What a run's agent gets of steward's MCP server.
pub struct Servers {
    pub permission_mode: PermissionMode,
    pub prompt_tool: Option<PromptTool>,
    pub tool_server: Option<ToolServer>,
}

/// The permission mode and steward's server for a run: the prompt tool of a wait run, the
/// goal's steward tools (qualified), or both. When the server is needed its context file and
/// the run's effective config are written to the run directory first.
pub fn servers(
    cfg: &Config,
    goal: &Goal,
    steward_exe: &Path,
    run_dir: &Path,
    nonce: &str,
    steward_tools: &[String],
) -> Result<Servers, LedgerError> {
    let (permission_mode, prompt_tool) = match goal.approval {
        ApprovalMode::Queue => (PermissionMode::DontAsk, None),
        // dontAsk ignores the prompt tool (reference §3.3), so only a wait run uses default mode;
        // the hook still decides allow and deny before claude's own rules are consulted.
        ApprovalMode::Wait => (
            PermissionMode::Default,
            Some(prompt_tool(
                steward_exe,
                run_dir,
                Duration::from_secs(goal.approval_timeout_secs),
            )),
        ),
    };
    if prompt_tool.is_some() || !steward_tools.is_empty() {
        ToolsContext {
            tools: steward_tools.to_vec(),
            nonce: nonce.to_string(),
            prompt_tool: prompt_tool.is_some(),
        }
        .write(run_dir)?;
        crate::engine::run_config::write(run_dir, cfg)?;
    }
    Ok(Servers {
        permission_mode,
        prompt_tool,
        tool_server: tool_server(steward_exe, run_dir, steward_tools),
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
