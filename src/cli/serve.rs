//! `steward serve`: the daemon (webhooks, health and metrics, the router, the queue worker).

use std::path::PathBuf;

use clap::Args;

use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::daemon::server::{self, ServeError, ServeOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `serve.listen`, 127.0.0.1:8787).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// File holding the token shared by both webhooks, for an endpoint without its own
    /// (`serve.alertmanager_token_file`, `serve.generic_token_file`); else
    /// `serve.webhook_token_file`, `$STEWARD_WEBHOOK_TOKEN_FILE`,
    /// `$CREDENTIALS_DIRECTORY/webhook-token`.
    #[arg(long, value_name = "FILE")]
    pub webhook_token_file: Option<PathBuf>,
}

pub(super) async fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitKind, CliError> {
    let opts = ServeOptions {
        config_args: cli.config_args(),
        listen: args.listen.clone(),
        webhook_token_file: args.webhook_token_file.clone(),
    };
    server::serve(opts).await.map_err(|e| match e {
        ServeError::Config(_) | ServeError::BadListen(_) | ServeError::Token { .. } => usage(e),
        other => internal(other),
    })?;
    Ok(ExitKind::Ok)
}
