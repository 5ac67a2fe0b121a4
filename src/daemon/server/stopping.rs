//! How the daemon stops: what tells it to ([`Stop`], SIGTERM/SIGINT in production, any future in
//! tests), SIGHUP reloading on the way, and ending the run in progress within the grace.

use std::time::Duration;

use time::OffsetDateTime;

use super::shared::Shared;
use crate::base::cancel::{Canceller, StopSignal};
use crate::daemon::queue::JobState;

/// Why the daemon stops: what a shutdown future given to [`Daemon::start`](super::Daemon::start)
/// resolves to (a bare [`StopSignal`] converts into one). Stopped by the process's signals, a
/// second SIGTERM/SIGINT cancels the current run at once instead of after the grace.
pub struct Stop {
    pub why: StopSignal,
    /// Where a second stop comes from: none for a stop that is not a signal.
    again: Option<Signals>,
}

impl From<StopSignal> for Stop {
    fn from(why: StopSignal) -> Stop {
        Stop { why, again: None }
    }
}

impl Stop {
    /// The next stop after this one; never, without signals.
    async fn again(&mut self) -> StopSignal {
        match &mut self.again {
            Some(signals) => signals.next_stop().await,
            None => std::future::pending().await,
        }
    }
}

/// Once the run is cancelled, how long recording it may take on top of claude's kill grace before
/// the worker is dropped.
pub(super) const RECORD_GRACE: Duration = Duration::from_secs(10);

/// How the daemon ends the work in progress when it is told to stop.
pub(super) struct Stopping {
    pub grace: Duration,
    pub kill_grace: Duration,
    pub canceller: Canceller,
}

impl Stopping {
    /// The current run gets `grace` to finish. Past it, it is cancelled like `steward run` at
    /// Ctrl-C: claude is interrupted, killed after its own grace, and the run is recorded
    /// `cancelled` while its job goes back to the queue. A second stop (`stop.again`) cancels at
    /// once. Only a worker that still does not end is dropped (which kills claude's group too)
    /// and its jobs requeued here. Returns what happened, for the `daemon_stopped` event.
    pub(super) async fn finish(
        self,
        shared: &Shared,
        work: &mut tokio::task::JoinHandle<()>,
        stop: &mut Stop,
    ) -> String {
        let why = stop.why;
        let mut deadline = tokio::time::Instant::now() + self.grace;
        let mut cancelled: Option<&'static str> = None;
        loop {
            tokio::select! {
                _ = &mut *work => break,
                () = tokio::time::sleep_until(deadline) => {
                    if cancelled.is_some() {
                        work.abort();
                        let _ = (&mut *work).await;
                        let requeued = requeue_mine(shared);
                        return format!(
                            "the current run was cancelled but did not end; the worker was dropped \
                             and its jobs requeued: {}",
                            requeued.join(", ")
                        );
                    }
                    self.canceller.stop(why);
                    cancelled = Some("did not finish within the grace");
                    deadline = tokio::time::Instant::now() + self.kill_grace + RECORD_GRACE;
                }
                again = stop.again() => {
                    tracing::info!("{again} again: cancelling the current run at once");
                    self.canceller.stop_now(why);
                    cancelled = Some("was cancelled at once by a second signal");
                    deadline = tokio::time::Instant::now() + RECORD_GRACE;
                }
            }
        }
        match cancelled {
            None => "the worker finished".to_string(),
            Some(how) => format!(
                "the current run {how} ({} s): it was recorded `cancelled` and its job requeued",
                self.grace.as_secs()
            ),
        }
    }
}

/// Jobs this process claimed go back to the queue: the daemon is stopping, not the job failing.
fn requeue_mine(shared: &Shared) -> Vec<String> {
    let me = std::process::id();
    let queue = &shared.queue;
    let Ok(jobs) = queue.list() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for j in jobs
        .iter()
        .filter(|j| j.state == JobState::Running && j.claimed_by == Some(me))
    {
        match queue.requeue(
            j,
            "the daemon stopped during the run",
            OffsetDateTime::now_utc(),
        ) {
            Ok(()) => out.push(j.id.clone()),
            Err(e) => tracing::error!(job = %j.id, "cannot requeue: {e}"),
        }
    }
    out
}

/// The process's stop and reload signals.
pub(super) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT, calling `reload` at each SIGHUP on the way; the signals stay
    /// with the stop for a second SIGTERM or SIGINT.
    pub(super) async fn stop(mut self, reload: impl Fn()) -> Stop {
        let why = loop {
            tokio::select! {
                _ = self.term.recv() => break StopSignal::Terminate,
                _ = self.int.recv() => break StopSignal::Interrupt,
                _ = self.hup.recv() => reload(),
            }
        };
        Stop {
            why,
            again: Some(self),
        }
    }

    /// The next SIGTERM or SIGINT, once the daemon is stopping (SIGHUP no longer reloads).
    async fn next_stop(&mut self) -> StopSignal {
        tokio::select! {
            _ = self.term.recv() => StopSignal::Terminate,
            _ = self.int.recv() => StopSignal::Interrupt,
        }
    }
}
