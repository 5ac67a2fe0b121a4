//! The routing thread: every request's signals go through one committer that decides them in
//! batches, records the decisions and answers; a flusher behind it fsyncs the event log and
//! saves the router's state.

use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::shared::Shared;
use crate::base::ledger::Unsynced;
use crate::base::signal::Signal;
use crate::daemon::router::{Routed, RouterError, RoutingDecision};

/// The signals of one request, and where their answers go.
pub(super) struct RouteRequest {
    signals: Vec<Signal>,
    reply: oneshot::Sender<Vec<Answer>>,
}

/// What the daemon answers for one signal: its routing decision, or why it has none.
#[derive(Debug, serde::Serialize)]
pub(super) struct Answer {
    subject: String,
    fingerprint: String,
    #[serde(flatten)]
    verdict: AnswerBody,
}

#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub(super) enum AnswerBody {
    Routed(Routed),
    Failed {
        /// Always `"error"`.
        decision: &'static str,
        reason: String,
    },
}

impl Answer {
    pub(super) fn decision(&self) -> &'static str {
        match &self.verdict {
            AnswerBody::Routed(r) => r.decision.name(),
            AnswerBody::Failed { decision, .. } => decision,
        }
    }

    pub(super) fn failed(&self) -> bool {
        matches!(self.verdict, AnswerBody::Failed { .. })
    }
}

/// The most signals decided in one batch: bounds how long the first request in it waits.
const MAX_BATCH_SIGNALS: usize = 512;

/// How often, at most, the event log is fsynced while signals keep coming.
const FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// How often, at most, the router's state is written when decisions changed it.
const STATE_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Takes the first value and then whatever else is already waiting, up to `max` by `size`.
fn drain<T>(rx: &std_mpsc::Receiver<T>, size: impl Fn(&T) -> usize, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut total = size(&first);
    let mut all = vec![first];
    while total < max {
        let Ok(next) = rx.try_recv() else { break };
        total += size(&next);
        all.push(next);
    }
    Some(all)
}

/// Starts the two routing threads; both end once `Shared::routing` is closed.
///
/// The committer takes every request waiting and decides their signals as one batch
/// ([`Router::decide_all`]: a queued job is fsynced there), appends the batch's routing events
/// to the event log, and only then answers. The flusher follows it: it fsyncs the event log at
/// most every [`FLUSH_INTERVAL`], and writes the router's state (cooldowns, rate and flapping
/// windows) at most every [`STATE_SAVE_INTERVAL`] when it changed. An fsync costs this VM about
/// 70 µs of CPU, and one per batch halved the ingest rate in `bench/webhook.sh`; the state is
/// one JSON file that grows with the subjects seen in a day, and rewriting it per batch made a
/// storm of distinct alerts quadratic. So an answered alert's record is in the kernel (it
/// survives steward crashing or being killed) and on disk within about 10 ms; queued work is on
/// disk before the answer; a crash loses at most the last second of window entries.
pub(super) fn start_routing(
    shared: &Arc<Shared>,
    requests: std_mpsc::Receiver<RouteRequest>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let (to_flush, written) = std_mpsc::channel::<Unsynced>();
    let committer = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("steward-route".into())
            .spawn(move || {
                while let Some(batch) = drain(&requests, |r| r.signals.len(), MAX_BATCH_SIGNALS) {
                    // Sent even when empty: the flusher also saves the router's state.
                    let _ = to_flush.send(shared.route_batch(batch));
                }
            })?
    };
    let flusher = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("steward-flush".into())
            .spawn(move || {
                let mut state_saved = std::time::Instant::now();
                loop {
                    // Woken by written events, or once a second for the router's state.
                    let first = match written.recv_timeout(STATE_SAVE_INTERVAL) {
                        Ok(unsynced) => Some(unsynced),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    let started = std::time::Instant::now();
                    let had_events = first.is_some();
                    let events = first
                        .into_iter()
                        .chain(written.try_iter())
                        .fold(Unsynced::default(), Unsynced::merge);
                    if let Err(e) = events.sync() {
                        tracing::error!("cannot fsync the event log: {e}");
                        shared.metrics.flush_errors.inc();
                        shared.health.failed(format_args!("fsync: {e}"));
                    }
                    shared.health.probe(&shared.ledger);
                    if state_saved.elapsed() >= STATE_SAVE_INTERVAL {
                        shared.save_router_state();
                        state_saved = std::time::Instant::now();
                    }
                    if had_events {
                        std::thread::sleep(FLUSH_INTERVAL.saturating_sub(started.elapsed()));
                    }
                }
            })?
    };
    Ok(vec![committer, flusher])
}

impl Shared {
    /// Routes the signals of one request through the routing thread and waits for their
    /// answers, one per signal. `None`: the daemon stopped routing.
    pub(super) async fn submit(&self, signals: Vec<Signal>) -> Option<Vec<Answer>> {
        let (reply, answer) = oneshot::channel();
        self.routing
            .lock()
            .ok()?
            .as_ref()?
            .send(RouteRequest { signals, reply })
            .ok()?;
        answer.await.ok()
    }

    /// Decides a batch of requests' signals in arrival order, appends their routing events,
    /// and answers each request; returns the events still to fsync.
    pub(super) fn route_batch(&self, batch: Vec<RouteRequest>) -> Unsynced {
        let mut replies = Vec::with_capacity(batch.len());
        let mut signals = Vec::new();
        for r in batch {
            replies.push((r.reply, r.signals.len()));
            signals.extend(r.signals);
        }
        // No decision is taken unless its record was written: a batch whose events cannot be
        // written is taken back by the router (no job without its record) and answered 500.
        let decided = self
            .router
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .decide_all(&signals, OffsetDateTime::now_utc(), |events| {
                self.ledger.write_events(events)
            });
        // Logged per signal, except a batch the log could not take: the daemon is degraded
        // then, which is logged once, not once per alert of a storm.
        let mut log_failures = true;
        let (decisions, unsynced) = match decided {
            Ok(d) => (Ok(d.decisions), d.written),
            Err(e @ RouterError::Unrecorded(_)) => {
                self.health.failed(&e);
                log_failures = false;
                (Err(e.to_string()), Unsynced::default())
            }
            Err(e) => (Err(format!("routing failed: {e}")), Unsynced::default()),
        };
        let decisions: Vec<Result<Routed, String>> = match decisions {
            Ok(all) => all
                .into_iter()
                .map(|d| d.map_err(|e| e.to_string()))
                .collect(),
            Err(reason) => signals.iter().map(|_| Err(reason.clone())).collect(),
        };
        let mut enqueued = false;
        let mut answers = Vec::with_capacity(signals.len());
        for (s, decision) in signals.into_iter().zip(decisions) {
            let verdict = match decision {
                Ok(routed) => {
                    enqueued |= matches!(routed.decision, RoutingDecision::Enqueue { .. });
                    // As often as the `operator_notice` it wrote: once per window, not per alert.
                    if routed.decision.told_operator() {
                        tracing::warn!(subject = %s.subject, source = s.source.as_str(),
                            decision = routed.decision.name(), "signal not run: {}", routed.reason);
                    }
                    AnswerBody::Routed(routed)
                }
                Err(reason) => {
                    if log_failures {
                        tracing::error!(subject = %s.subject, "routing failed: {reason}");
                    }
                    AnswerBody::Failed {
                        decision: "error",
                        reason,
                    }
                }
            };
            let answer = Answer {
                subject: s.subject,
                fingerprint: s.fingerprint,
                verdict,
            };
            self.metrics.signal(s.source, answer.decision());
            answers.push(answer);
        }
        if enqueued {
            self.wake.notify_one();
        }
        let mut answers = answers.into_iter();
        for (reply, n) in replies {
            // A request whose client went away still had its signals routed and recorded.
            let _ = reply.send(answers.by_ref().take(n).collect());
        }
        unsynced
    }
}
