//! `steward completions SHELL` and `steward man`: the shell completion script and the roff man
//! page, both generated from the same clap definition the binary parses with, so they cannot
//! drift from the commands. Written to stdout (packagers redirect them into place; the Nix
//! package does so in `postInstall`).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError, internal};
use crate::base::outcome::ExitKind;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script for `args.shell`.
pub(super) fn completions(args: &CompletionsArgs) -> Result<ExitKind, CliError> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "steward", &mut buf);
    write_bytes(buf)
}

/// Prints the man page, steward(1): every subcommand is listed in its SUBCOMMANDS section.
pub(super) fn man() -> Result<ExitKind, CliError> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(internal)?;
    write_bytes(buf)
}

fn write_bytes(buf: Vec<u8>) -> Result<ExitKind, CliError> {
    let text = String::from_utf8(buf).map_err(internal)?;
    crate::out!("{text}")?;
    Ok(ExitKind::Ok)
}
