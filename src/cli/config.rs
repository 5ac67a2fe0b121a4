//! `steward config show`: the effective configuration and where it came from.

use clap::Subcommand;

use super::output::print_json;
use super::{Cli, CliError, internal};
use crate::base::outcome::ExitKind;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration and where it came from.
    Show,
}

pub(super) fn run(cli: &Cli, cmd: &ConfigCommand) -> Result<ExitKind, CliError> {
    match cmd {
        ConfigCommand::Show => show(cli),
    }
}

fn show(cli: &Cli) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    if cli.json {
        print_json(&loaded)?;
    } else {
        match &loaded.source {
            Some(p) => crate::outln!("# from {}", p.display())?,
            None => crate::outln!("# no config file found: built-in defaults")?,
        }
        let text = toml::to_string_pretty(&loaded.config).map_err(internal)?;
        crate::out!("{text}")?;
    }
    Ok(ExitKind::Ok)
}
