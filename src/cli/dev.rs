//! `steward dev …`: development tools (the scripted Anthropic API for tests and benchmarks).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, internal, usage};
use crate::adapters::scripted;
use crate::base::outcome::ExitKind;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Serve the scripted Anthropic Messages API (for tests and benchmarks).
    ScriptedModel {
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        addr: std::net::SocketAddr,
    },
}

pub(super) async fn run(cmd: &DevCommand) -> Result<ExitKind, CliError> {
    match cmd {
        DevCommand::ScriptedModel { scenario, addr } => {
            let scenario = scripted::Scenario::load(scenario).map_err(usage)?;
            let server = scripted::start(scenario, *addr).await.map_err(internal)?;
            // Tests read the address from the first line of stdout.
            crate::outln!("listening on http://{}", server.addr)?;
            let _ = std::io::stdout().flush();
            tokio::signal::ctrl_c().await.map_err(internal)?;
            Ok(ExitKind::Ok)
        }
    }
}
