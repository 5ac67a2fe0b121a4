//! `steward mcp serve`: the permission-prompt MCP server claude starts on stdio.

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, internal};
use crate::base::outcome::ExitKind;

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// The permission-prompt tool on stdio: decides by the run's policy, waits for an operator
    /// on approval-required calls; fails closed.
    Serve {
        /// The run directory holding `policy.json`, `hook-context.json` and `audit.jsonl`.
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

pub(super) async fn run(cmd: &McpCommand) -> Result<ExitKind, CliError> {
    match cmd {
        McpCommand::Serve { run_dir } => {
            // No config: everything the server needs is in the run directory.
            crate::adapters::mcp::serve(run_dir.clone())
                .await
                .map_err(internal)?;
            Ok(ExitKind::Ok)
        }
    }
}
