//! Stopping a run from outside. The signal steward received (SIGINT from Ctrl-C, SIGTERM from
//! systemd or `kill`, SIGHUP when the terminal closes) asks the run to stop: claude is interrupted and gets its grace to end, and
//! the run is recorded `cancelled`. A second signal asks it to stop at once.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::base::outcome::ExitKind;

/// The signal that stopped a run; it decides the exit code (128 + its number, as a shell does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopSignal {
    #[serde(rename = "SIGINT")]
    Interrupt,
    #[serde(rename = "SIGTERM")]
    Terminate,
    /// The terminal went away (an SSH session dropped): stop as for SIGTERM, and say which.
    #[serde(rename = "SIGHUP")]
    Hangup,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    pub fn exit_kind(self) -> ExitKind {
        match self {
            StopSignal::Interrupt => ExitKind::Interrupted,
            StopSignal::Terminate => ExitKind::Terminated,
            StopSignal::Hangup => ExitKind::HungUp,
        }
    }
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How far a stop request has gone: nothing, stop, stop at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    signal: Option<StopSignal>,
    urgent: bool,
}

impl State {
    fn level(self) -> u8 {
        match (self.signal, self.urgent) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(_), true) => 2,
        }
    }
}

/// A stop request as seen by the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The first signal: it names how the run ended.
    pub signal: StopSignal,
    /// Stop at once: no grace for claude.
    pub urgent: bool,
}

/// The sending side, held by whoever receives the signals.
#[derive(Debug)]
pub struct Canceller {
    tx: watch::Sender<State>,
}

/// The receiving side, passed into a run. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cancel {
    rx: watch::Receiver<State>,
}

pub fn pair() -> (Canceller, Cancel) {
    let (tx, rx) = watch::channel(State::default());
    (Canceller { tx }, Cancel { rx })
}

impl Canceller {
    /// The first call asks for a graceful stop; every later one for a stop at once. Returns
    /// whether this was the first.
    pub fn stop(&self, signal: StopSignal) -> bool {
        let mut first = false;
        self.tx.send_modify(|s| {
            if s.signal.is_none() {
                s.signal = Some(signal);
                first = true;
            } else {
                s.urgent = true;
            }
        });
        first
    }

    /// Stop at once, whatever came before.
    pub fn stop_now(&self, signal: StopSignal) {
        self.tx.send_modify(|s| {
            s.signal.get_or_insert(signal);
            s.urgent = true;
        });
    }
}

impl Cancel {
    /// A run nobody can stop (tests, callers without signal handling).
    pub fn never() -> Cancel {
        let (_, cancel) = pair();
        cancel
    }

    /// The request so far, if any.
    pub fn requested(&self) -> Option<Request> {
        let s = *self.rx.borrow();
        s.signal.map(|signal| Request {
            signal,
            urgent: s.urgent,
        })
    }

    /// Waits until the request goes beyond `seen` (None: any request; a graceful one: an urgent
    /// one). Never returns when nothing more can come.
    pub async fn beyond(&mut self, seen: Option<Request>) -> Request {
        let level = seen.map_or(0, |r| if r.urgent { 2 } else { 1 });
        if let Ok(s) = self.rx.wait_for(|s| s.level() > level).await
            && let Some(signal) = s.signal
        {
            return Request {
                signal,
                urgent: s.urgent,
            };
        }
        std::future::pending().await
    }

    /// Waits for any stop request.
    pub async fn stopped(&mut self) -> Request {
        self.beyond(None).await
    }

    /// Runs `fut` unless a stop request comes first.
    pub async fn or_stop<T>(&self, fut: impl Future<Output = T>) -> Result<T, Request> {
        if let Some(r) = self.requested() {
            return Err(r);
        }
        let mut me = self.clone();
        tokio::select! {
            v = fut => Ok(v),
            r = me.stopped() => Err(r),
        }
    }

    /// Runs `fut` unless an urgent stop request comes first (for work that should finish once
    /// started, like a rollback).
    pub async fn or_urgent<T>(&self, fut: impl Future<Output = T>) -> Result<T, Request> {
        let mut me = self.clone();
        let seen = Some(Request {
            signal: StopSignal::Interrupt,
            urgent: false,
        });
        tokio::select! {
            v = fut => Ok(v),
            r = me.beyond(seen) => Err(r),
        }
    }
}

/// Turns SIGINT, SIGTERM and SIGHUP into stop requests for as long as the returned task lives: the
/// first stops gracefully, the next at once. Each is reported through `report` (the CLI writes it
/// to stderr, so that an operator at a terminal knows a second Ctrl-C kills).
pub fn on_signals(
    canceller: Canceller,
    report: fn(&str),
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                Some(()) = int.recv() => StopSignal::Interrupt,
                Some(()) = term.recv() => StopSignal::Terminate,
                Some(()) = hup.recv() => StopSignal::Hangup,
                else => return,
            };
            let message = if canceller.stop(got) {
                format!("steward: {got}: stopping the run (again to stop at once)\n")
            } else {
                format!("steward: {got}: stopping at once\n")
            };
            report(&message);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_first_signal_stops_and_a_second_stops_at_once() {
        let (c, cancel) = pair();
        assert_eq!(cancel.requested(), None);
        let slow = cancel.or_stop(tokio::time::sleep(Duration::from_secs(30)));
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(c.stop(StopSignal::Terminate));
        };
        let (r, ()) = tokio::join!(slow, stopper);
        assert_eq!(
            r,
            Err(Request {
                signal: StopSignal::Terminate,
                urgent: false
            })
        );
        // A rollback goes on through a first signal, not through a second.
        let rollback = cancel.or_urgent(tokio::time::sleep(Duration::from_millis(50)));
        assert_eq!(rollback.await, Ok(()));
        assert!(!c.stop(StopSignal::Interrupt));
        let r = cancel.requested().unwrap();
        assert_eq!(r.signal, StopSignal::Terminate, "the first signal names it");
        assert!(r.urgent);
        let rollback = cancel.or_urgent(tokio::time::sleep(Duration::from_secs(30)));
        assert!(rollback.await.is_err());
        assert_eq!(StopSignal::Interrupt.exit_kind().code(), 130);
        assert_eq!(StopSignal::Terminate.exit_kind().code(), 143);
    }

    #[tokio::test]
    async fn never_never_stops() {
        let cancel = Cancel::never();
        let r = tokio::time::timeout(Duration::from_millis(50), cancel.clone().stopped()).await;
        assert!(r.is_err());
        assert_eq!(cancel.or_stop(async { 7 }).await, Ok(7));
    }
}
