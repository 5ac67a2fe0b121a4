//! `steward doctor`: the installation checked, and the boundary proven with the installed claude.

use super::output::print_verdict;
use super::{Cli, CliError};
use crate::adapters::doctor;
use crate::base::outcome::ExitKind;

pub(super) async fn run(cli: &Cli) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let report = doctor::run(&loaded).await;
    let exit = if report.ok {
        ExitKind::Ok
    } else {
        ExitKind::Error
    };
    if cli.json {
        print_verdict(&report, exit)?;
    } else {
        for c in &report.checks {
            let mark = match c.status {
                doctor::Status::Ok => " ok ",
                doctor::Status::Warn => "warn",
                doctor::Status::Fail => "FAIL",
            };
            crate::outln!("[{mark}] {:<14} {}", c.name, c.detail)?;
        }
    }
    Ok(exit)
}
