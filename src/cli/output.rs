//! The one writer for the CLI's output. A closed pipe (`steward runs list | head -1`) ends the
//! output quietly instead of panicking, and the command still exits with its own code: the
//! reader chose to stop reading, which changes nothing about what happened.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::error::{CliError, internal};
use crate::base::outcome::ExitKind;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. A broken pipe is remembered and every later write is dropped; any
/// other error (a full disk behind a redirect) is returned, since the output was lost.
pub fn stdout(text: &str) -> io::Result<()> {
    write_to(&STDOUT_CLOSED, &mut io::stdout().lock(), text)
}

/// Writes `text` to stderr, never failing: there is nowhere left to report a failure to.
pub fn stderr(text: &str) {
    static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
    let _ = write_to(&STDERR_CLOSED, &mut io::stderr().lock(), text);
}

fn write_to(closed: &AtomicBool, w: &mut dyn Write, text: &str) -> io::Result<()> {
    if closed.load(Ordering::Relaxed) {
        return Ok(());
    }
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            closed.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// Whether log lines on stderr may carry ANSI colour: only on a terminal, and never when
/// `NO_COLOR` is set to anything non-empty (<https://no-color.org>). journald shows escapes raw.
pub fn stderr_colour() -> bool {
    colour_allowed(
        io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Whether stdout may carry ANSI colour (a diff for a person): the same rule as [`stderr_colour`].
pub fn stdout_colour() -> bool {
    colour_allowed(
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `println!` through [`stdout`]; evaluates to `Result<(), CliError>`.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::output::stdout("\n").map_err($crate::cli::output_error) };
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(&format!("{}\n", format_args!($($arg)*)))
            .map_err($crate::cli::output_error)
    };
}

/// `print!` through [`stdout`]; evaluates to `Result<(), CliError>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout(&format!($($arg)*)).map_err($crate::cli::output_error)
    };
}

/// A value as pretty JSON on stdout.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(internal)?;
    crate::outln!("{text}")
}

/// A verdict-like answer: the value's JSON object with `exit` and `exit_code` added (the names
/// and codes of the README's exit code table), equal to the process's exit status.
pub(crate) fn print_verdict<T: Serialize + ?Sized>(
    value: &T,
    exit: ExitKind,
) -> Result<(), CliError> {
    let mut v = serde_json::to_value(value).map_err(internal)?;
    let Some(map) = v.as_object_mut() else {
        return Err(internal(anyhow::anyhow!(
            "a verdict must be a JSON object to carry its exit code"
        )));
    };
    map.insert("exit".to_string(), exit.as_str().into());
    map.insert("exit_code".to_string(), exit.code().into());
    print_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_closes_quietly_and_stays_closed() {
        let closed = AtomicBool::new(false);
        assert!(write_to(&closed, &mut Closed, "x").is_ok());
        assert!(closed.load(Ordering::Relaxed));
        // Nothing is attempted once closed (a full writer would otherwise fail).
        assert!(write_to(&closed, &mut Full, "y").is_ok());
    }

    #[test]
    fn other_write_errors_are_reported() {
        let closed = AtomicBool::new(false);
        assert!(write_to(&closed, &mut Full, "x").is_err());
        assert!(!closed.load(Ordering::Relaxed));
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(!colour_allowed(false, None));
        assert!(!colour_allowed(true, Some(std::ffi::OsStr::new("1"))));
        assert!(colour_allowed(true, Some(std::ffi::OsStr::new(""))));
    }
}
