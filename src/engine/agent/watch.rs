//! Watching claude while it runs: its output read line by line into the transcript, the
//! observer and the stream's state; a stop request, the wall clock or an unproven boundary
//! turned into SIGINT and, after the grace, SIGKILL; its exit (and whatever it left in its
//! group) collected into the [`Ending`] the outcome is concluded from.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::stream::{self, Ending, Expectations, StreamState};
use super::{AgentError, AgentOutcome, AgentSpec, Observer, elapsed_ms, process};
use crate::base::cancel::{Cancel, Request};

/// How much of claude's stderr is kept for a crash report.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// After claude exits, how long stdout may still be drained (something else could hold it open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Keeps the last `max` bytes of a stream.
async fn tail(mut r: impl AsyncRead + Unpin, max: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * max {
            kept.drain(..kept.len() - max);
        }
    }
    let start = kept.len().saturating_sub(max);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

/// Stops the run: SIGINT now (claude ends its tools and writes a result), SIGKILL later.
/// Dropped before claude was reaped (the caller dropped the run): SIGKILL, so a cancelled run
/// leaves nothing behind either.
struct Stopper {
    pgid: u32,
    namespaced: bool,
    kill_at: Option<tokio::time::Instant>,
    killed: bool,
    reaped: bool,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

impl Stopper {
    fn interrupt(&mut self, grace: Duration) {
        if self.kill_at.is_none() && !self.killed {
            process::signal_group(self.pgid, Signal::SIGINT);
            self.kill_at = Some(tokio::time::Instant::now() + grace);
        }
    }

    fn kill(&mut self) {
        // Once claude is reaped its pid may be reused: never walk a tree from it again.
        if self.reaped {
            return;
        }
        if !self.namespaced {
            // Tool shells have their own groups; without a namespace only the tree finds them.
            process::kill_descendant_groups(self.pgid);
        }
        process::signal_group(self.pgid, Signal::SIGKILL);
        self.killed = true;
    }
}

/// A started claude, its pipes taken: what [`watch`] needs.
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) pgid: u32,
    /// Whether claude runs in its own PID namespace (then its group holds every descendant).
    pub(super) namespaced: bool,
    pub(super) stdout: ChildStdout,
    pub(super) stderr: ChildStderr,
}

/// The state of a run while claude runs.
struct Watch<'s> {
    spec: &'s AgentSpec,
    state: StreamState,
    ending: Ending,
    stop: Stopper,
    stdout_open: bool,
    status: Option<ExitStatus>,
    drain_until: Option<tokio::time::Instant>,
    stop_seen: Option<Request>,
}

impl Watch<'_> {
    /// A stop request: an urgent one kills at once, a first one interrupts with the grace.
    fn stop_asked(&mut self, asked: Request) {
        self.stop_seen = Some(asked);
        self.ending.cancelled.get_or_insert(asked.signal);
        if asked.urgent {
            self.stop.kill();
        } else {
            self.stop.interrupt(self.spec.kill_grace);
        }
    }

    /// One line of stdout (already in the transcript): to the observer and the stream's state.
    /// A boundary not proven interrupts claude, unless it is ending already.
    fn parsed(&mut self, line: &str, observer: &mut dyn Observer) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => {
                observer.line(&v);
                if let Err(e) = self.state.line(&v)
                    && self.ending.aborted.is_none()
                    && !self.ending.timed_out
                {
                    self.ending.aborted = Some(e.to_string());
                    self.stop.interrupt(self.spec.kill_grace);
                }
            }
            _ => self.state.malformed_line(line),
        }
    }

    /// claude exited (or could not be waited for: then it is killed and the watch ends).
    /// Returns whether to go on reading what is left of stdout.
    fn exited(&mut self, waited: std::io::Result<ExitStatus>) -> bool {
        match waited {
            Ok(s) => {
                self.status = Some(s);
                self.stop.reaped = true;
            }
            Err(e) => {
                tracing::warn!("cannot wait for claude: {e}");
                self.stop.kill();
                return false;
            }
        }
        // Whatever claude left running in its group (or namespace) goes now.
        process::signal_group(self.stop.pgid, Signal::SIGKILL);
        self.drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
        true
    }

    /// Whether the wall clock may still interrupt claude.
    fn clock_armed(&self) -> bool {
        self.stop.kill_at.is_none() && !self.stop.killed && self.status.is_none()
    }

    /// Whether an interrupted claude is waiting for its kill.
    fn kill_armed(&self) -> bool {
        self.stop.kill_at.is_some() && !self.stop.killed && self.status.is_none()
    }

    /// How claude ended, concluded into the outcome.
    fn conclude(mut self, stderr_tail: String, started: Instant) -> AgentOutcome {
        if let Some(s) = self.status {
            use std::os::unix::process::ExitStatusExt;
            self.ending.exit_code = s.code();
            self.ending.signal = s.signal();
        }
        self.ending.killed = self.stop.killed;
        self.ending.stderr_tail = stderr_tail;
        self.ending.duration_ms = elapsed_ms(started);
        stream::conclude(&self.state, &self.ending, &self.spec.session_id.to_string())
    }
}

/// Watches a started claude to its end (see the module doc). A transcript that cannot be
/// written kills claude and is an error; everything claude does is in the outcome.
pub(super) async fn watch(
    spec: &AgentSpec,
    running: Running,
    transcript: &mut (dyn FnMut(&str) -> std::io::Result<()> + Send),
    observer: &mut dyn Observer,
    cancel: &mut Cancel,
    started: Instant,
) -> Result<AgentOutcome, AgentError> {
    let Running {
        mut child,
        pgid,
        namespaced,
        stdout,
        stderr,
    } = running;
    let stderr_task = tokio::spawn(tail(stderr, STDERR_TAIL_BYTES));
    let mut w = Watch {
        spec,
        state: StreamState::new(Expectations::from_spec(spec)),
        ending: Ending {
            timeout_secs: spec.timeout.as_secs(),
            ..Ending::default()
        },
        stop: Stopper {
            pgid,
            namespaced,
            kill_at: None,
            killed: false,
            reaped: false,
        },
        stdout_open: true,
        status: None,
        drain_until: None,
        stop_seen: None,
    };
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let far = deadline + Duration::from_secs(365 * 24 * 3600);
    let mut reader = BufReader::new(stdout);
    let mut buf: Vec<u8> = Vec::new();
    while w.stdout_open || w.status.is_none() {
        tokio::select! {
            asked = cancel.beyond(w.stop_seen), if w.status.is_none() && !w.stop.killed => {
                w.stop_asked(asked);
            }
            read = reader.read_until(b'\n', &mut buf), if w.stdout_open => {
                if matches!(read, Ok(0) | Err(_)) {
                    w.stdout_open = false;
                    continue;
                }
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                if let Err(e) = transcript(line) {
                    w.stop.kill();
                    let _ = child.wait().await;
                    w.stop.reaped = true;
                    return Err(AgentError::Transcript(e));
                }
                w.parsed(line, observer);
                buf.clear();
            }
            waited = child.wait(), if w.status.is_none() => {
                if !w.exited(waited) {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline), if w.clock_armed() => {
                w.ending.timed_out = true;
                w.stop.interrupt(spec.kill_grace);
            }
            () = tokio::time::sleep_until(w.stop.kill_at.unwrap_or(far)), if w.kill_armed() => {
                w.stop.kill();
            }
            () = tokio::time::sleep_until(w.drain_until.unwrap_or(far)), if w.drain_until.is_some() => {
                break;
            }
        }
    }
    let stderr_tail = tokio::time::timeout(Duration::from_secs(1), stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(w.conclude(stderr_tail, started))
}
