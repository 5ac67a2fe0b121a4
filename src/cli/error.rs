//! The CLI's error: any failure with the exit kind it maps to, and how it is reported (text on
//! stderr, or JSON on stdout under `--json`).

use crate::base::outcome::ExitKind;
use crate::engine::run;

use super::output;

/// An error that knows its exit kind.
#[derive(Debug, thiserror::Error)]
#[error("{source:#}")]
pub struct CliError {
    pub kind: ExitKind,
    pub source: anyhow::Error,
}

/// Bad input from the operator: exit `usage`.
pub(crate) fn usage(e: impl Into<anyhow::Error>) -> CliError {
    CliError {
        kind: ExitKind::Usage,
        source: e.into(),
    }
}

/// Anything else that went wrong: exit `error`.
pub(crate) fn internal(e: impl Into<anyhow::Error>) -> CliError {
    CliError {
        kind: ExitKind::Error,
        source: e.into(),
    }
}

impl From<run::RunError> for CliError {
    fn from(e: run::RunError) -> Self {
        CliError {
            kind: e.exit_kind(),
            source: e.into(),
        }
    }
}

impl From<crate::defs::bundled::ReadError> for CliError {
    fn from(e: crate::defs::bundled::ReadError) -> Self {
        run::RunError::from(e).into()
    }
}

impl From<crate::defs::goal::GoalError> for CliError {
    fn from(e: crate::defs::goal::GoalError) -> Self {
        run::RunError::from(e).into()
    }
}

/// Output that could not be written (a closed pipe is not an error: see [`output`]).
pub fn output_error(e: std::io::Error) -> CliError {
    internal(anyhow::Error::new(e).context("cannot write to stdout"))
}

/// Prints an error the way the output mode asks, and returns its exit code.
pub fn report_error(json: bool, e: &CliError) -> u8 {
    if json {
        let v = serde_json::json!({
            "error": format!("{:#}", e.source),
            "exit": e.kind.as_str(),
            "exit_code": e.kind.code(),
        });
        // The error is already being reported; a second failure has nowhere to go.
        let _ = crate::outln!("{v}");
    } else {
        output::stderr(&format!("steward: {:#}\n", e.source));
    }
    e.kind.code()
}
