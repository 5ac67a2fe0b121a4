//! `steward serve`: the daemon. One process holds the HTTP listener (Alertmanager and generic
//! webhooks, health, metrics), a local socket for triggers to hand signals over, the router and
//! the one queue worker. axum stays in this file: the services below it know nothing of HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, mpsc as std_mpsc};
use std::time::Duration;

use axum::Router as HttpRouter;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::{Notify, oneshot, watch};

use crate::base::cancel::{Cancel, StopSignal};
use crate::base::ledger::{Ledger, LedgerError, Unsynced};
use crate::base::signal::{Severity, Signal, Source, fingerprint};
use crate::config::{Config, ConfigArgs, ConfigError};
use crate::daemon::handoff::{self, DaemonInfo};
use crate::daemon::queue::{self, JobState, Queue, QueueError, Worked};
use crate::daemon::router::{Routed, Router, RouterError, RoutingDecision};
use crate::defs::schedule::{self, ScheduleError};
use crate::engine::agent::QuietObserver;
use crate::engine::run::RunReport;

mod auth;
mod conn;
mod health;
mod upkeep;

use auth::{Endpoint, Tokens};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Conn(#[from] conn::ConnError),
    #[error("`{0}` is not a listen address (e.g. 127.0.0.1:8787)")]
    BadListen(String),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("webhook token file {path}: {message}")]
    Token { path: PathBuf, message: String },
    #[error("state_dir changed from {from} to {to}: that needs a restart, not a reload")]
    StateDirChanged { from: PathBuf, to: PathBuf },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    DaemonLock(#[from] crate::daemon::daemon_lock::DaemonLockError),
}

/// What the command line gives the daemon.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config_args: ConfigArgs,
    pub listen: Option<String>,
    pub webhook_token_file: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// Metrics

type Labels = Vec<(String, String)>;

struct Metrics {
    registry: Registry,
    signals: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    duration: Histogram,
    cost: Counter<f64, AtomicU64>,
    depth: Gauge,
    denials: Counter,
    flush_errors: Counter,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let signals = Family::<Labels, Counter>::default();
        let runs = Family::<Labels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let cost = Counter::<f64, AtomicU64>::default();
        let depth = Gauge::default();
        let denials = Counter::default();
        let flush_errors = Counter::default();
        registry.register(
            "steward_signals",
            "Signals received, by source and routing decision",
            signals.clone(),
        );
        registry.register(
            "steward_runs",
            "Queued jobs the worker ended, by goal and outcome",
            runs.clone(),
        );
        registry.register(
            "steward_run_duration_seconds",
            "Wall-clock time of runs",
            duration.clone(),
        );
        registry.register(
            "steward_run_cost_usd",
            "Model spend of runs, in USD",
            cost.clone(),
        );
        registry.register(
            "steward_queue_depth",
            "Jobs queued or running",
            depth.clone(),
        );
        registry.register(
            "steward_policy_denials",
            "Tool calls the policy denied in runs",
            denials.clone(),
        );
        registry.register(
            "steward_flush_errors",
            "Failed background writes: event log fsyncs (records written but perhaps not on disk) and router state saves",
            flush_errors.clone(),
        );
        Metrics {
            registry,
            signals,
            runs,
            duration,
            cost,
            depth,
            denials,
            flush_errors,
        }
    }

    fn signal(&self, source: Source, decision: &str) {
        self.signals
            .get_or_create(&vec![
                ("source".into(), source.as_str().into()),
                ("decision".into(), decision.into()),
            ])
            .inc();
    }

    fn worked(&self, w: &Worked) {
        let outcome = match &w.report {
            Some(RunReport::Done(r)) => {
                self.duration.observe(r.duration_ms as f64 / 1000.0);
                if r.cost_usd.is_finite() && r.cost_usd > 0.0 {
                    self.cost.inc_by(r.cost_usd);
                }
                self.denials.inc_by(r.permission_denials.len() as u64);
                r.outcome.to_string()
            }
            Some(RunReport::Planned(_)) => "planned".into(),
            // No run record: the job's state says what became of it.
            None => match w.job.state {
                JobState::Queued => "requeued".into(),
                other => serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "error".into()),
            },
        };
        self.runs
            .get_or_create(&vec![
                ("goal".into(), w.job.goal.clone()),
                ("outcome".into(), outcome),
            ])
            .inc();
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

// Routing: how a signal becomes a recorded decision and an answer.

/// The signals of one request, and where their answers go.
struct RouteRequest {
    signals: Vec<Signal>,
    reply: oneshot::Sender<Vec<Answer>>,
}

/// What the daemon answers for one signal: its routing decision, or why it has none.
#[derive(Debug, serde::Serialize)]
struct Answer {
    subject: String,
    fingerprint: String,
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Verdict {
    Routed(Routed),
    Failed {
        /// Always `"error"`.
        decision: &'static str,
        reason: String,
    },
}

impl Answer {
    fn decision(&self) -> &'static str {
        match &self.verdict {
            Verdict::Routed(r) => r.decision.name(),
            Verdict::Failed { decision, .. } => decision,
        }
    }

    fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Failed { .. })
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
fn start_routing(
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

struct Shared {
    opts: ServeOptions,
    config: RwLock<Arc<Config>>,
    /// Used by the routing thread (and swapped by a reload): one batch of decisions at a time.
    router: Mutex<Router>,
    /// The process's queue: the router queues into it, the worker claims from it.
    queue: Queue,
    /// Signals to route, to the routing thread; `None` once the daemon stops routing.
    routing: Mutex<Option<std_mpsc::Sender<RouteRequest>>>,
    /// Each webhook's token; an endpoint without one refuses everything (never open).
    tokens: RwLock<Tokens>,
    ledger: Ledger,
    /// Whether the event log can be written (`/healthz`).
    health: health::Health,
    wake: Notify,
    metrics: Metrics,
    /// The scheduled goals; replaced on reload, and `rescheduled` tells the scheduler.
    schedule: RwLock<Arc<Vec<schedule::Entry>>>,
    rescheduled: Notify,
}

/// The scheduled goals of a configuration: none when `[serve] scheduler = false`.
fn scheduled(cfg: &Config) -> Result<Vec<schedule::Entry>, ScheduleError> {
    if cfg.serve.scheduler {
        schedule::entries(cfg)
    } else {
        Ok(Vec::new())
    }
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn schedule(&self) -> Arc<Vec<schedule::Entry>> {
        match self.schedule.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn token(&self, endpoint: Endpoint) -> Option<auth::TokenDigest> {
        match self.tokens.read() {
            Ok(t) => t.get(endpoint),
            Err(poisoned) => poisoned.into_inner().get(endpoint),
        }
    }

    fn queue_depth(&self) -> Result<usize, QueueError> {
        self.queue.depth()
    }

    /// Routes the signals of one request through the routing thread and waits for their
    /// answers, one per signal. `None`: the daemon stopped routing.
    async fn submit(&self, signals: Vec<Signal>) -> Option<Vec<Answer>> {
        let (reply, answer) = oneshot::channel();
        self.routing
            .lock()
            .ok()?
            .as_ref()?
            .send(RouteRequest { signals, reply })
            .ok()?;
        answer.await.ok()
    }

    /// Writes the router's state if decisions changed it: serialised under the router's lock,
    /// written outside it, so routing waits for a copy, not for the disk.
    fn save_router_state(&self) {
        let (snapshot, path) = {
            let mut router = self
                .router
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (router.state_snapshot(), router.state_path().to_path_buf())
        };
        let written = match snapshot {
            Ok(None) => return,
            Ok(Some(bytes)) => {
                crate::base::ledger::write_atomic(&path, &bytes).map_err(RouterError::from)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!("cannot save the router's state: {e}");
            self.metrics.flush_errors.inc();
            self.router
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .state_unsaved();
        }
    }

    /// Decides a batch of requests' signals in arrival order, appends their routing events,
    /// and answers each request; returns the events still to fsync.
    fn route_batch(&self, batch: Vec<RouteRequest>) -> Unsynced {
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
                    Verdict::Routed(routed)
                }
                Err(reason) => {
                    if log_failures {
                        tracing::error!(subject = %s.subject, "routing failed: {reason}");
                    }
                    Verdict::Failed {
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

    /// SIGHUP: a new configuration, routes and token, or none of them.
    fn reload(&self) {
        type Loaded = (Config, Router, Tokens, Vec<schedule::Entry>);
        // Held until the new router is in place: it starts from `router.json`, so the current
        // state is written first and no decision may come in between.
        let mut current_router = self
            .router
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = (|| -> Result<Loaded, ServeError> {
            let cfg = Config::load(&self.opts.config_args)?.config;
            // The worker's queue, the socket and the pid file live in the old one.
            let current = self.config().state_dir.clone();
            if cfg.state_dir != current {
                return Err(ServeError::StateDirChanged {
                    from: current,
                    to: cfg.state_dir,
                });
            }
            current_router.save_state()?;
            let router = Router::open(&cfg, self.queue.clone())?;
            let tokens = Tokens::load(&self.opts, &cfg)?;
            // A goal with a bad schedule refuses the whole reload, like a bad route.
            let entries = scheduled(&cfg)?;
            Ok((cfg, router, tokens, entries))
        })();
        match result {
            Ok((cfg, router, tokens, entries)) => {
                let scheduled = entries.len();
                let routes = router.routes().routes().len();
                *current_router = router;
                drop(current_router);
                tokens.log();
                if let Ok(mut t) = self.tokens.write() {
                    *t = tokens;
                }
                let paused = cfg.serve.paused;
                if let Ok(mut c) = self.config.write() {
                    *c = Arc::new(cfg);
                }
                if let Ok(mut s) = self.schedule.write() {
                    *s = Arc::new(entries);
                }
                tracing::info!(routes, paused, scheduled, "configuration reloaded");
                self.event(
                    "config_reloaded",
                    serde_json::json!({"routes": routes, "paused": paused,
                        "scheduled": scheduled}),
                );
                self.wake.notify_one();
                self.rescheduled.notify_one();
            }
            Err(e) => {
                tracing::error!("configuration reload refused, keeping the old one: {e}");
                self.event(
                    "config_reload_refused",
                    serde_json::json!({"reason": e.to_string()}),
                );
            }
        }
    }

    /// A queued job was not started because the day's budget is spent: the operator is told
    /// once a day (shared with the router's `over_budget` decisions).
    fn budget_spent(&self, job: &str, spent: f64, budget: f64) {
        let tell = self
            .router
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .tell_budget(OffsetDateTime::now_utc());
        if tell {
            let reason = format!(
                "today's runs cost ${spent:.4}, the daily budget is ${budget:.2}: queued job {job} \
                 was not started"
            );
            tracing::warn!(%job, "{reason}");
            self.event(
                "operator_notice",
                serde_json::json!({"cause": "daily_budget", "spent_usd": spent,
                    "budget_usd": budget, "job": job, "reason": reason}),
            );
        }
    }

    /// Jobs a dead process (an inline trigger) left `running` back in the queue.
    fn requeue_orphans(&self) {
        match self.queue.requeue_orphans(OffsetDateTime::now_utc()) {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(jobs = %ids.join(","), "jobs a dead process left running are queued again");
                self.wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot recover the queue: {e}"),
        }
    }

    fn event(&self, kind: &str, data: serde_json::Value) {
        if let Err(e) = self.ledger.event(kind, None, data) {
            tracing::error!("cannot record the {kind} event: {e}");
            self.health.failed(format_args!("the {kind} event: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A JSON answer with a status.
fn answer(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    answer(status, serde_json::json!({"error": reason.into()}))
}

/// Auth, content type and size: everything a webhook checks before it parses anything.
async fn admit(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Response> {
    let Some(token) = shared.token(endpoint) else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no webhook token is configured for this endpoint: it refuses every request",
        ));
    };
    let bad_request = |e: auth::Repeated| refuse(StatusCode::BAD_REQUEST, e.to_string());
    let credentials =
        auth::single(headers, &header::AUTHORIZATION, "Authorization").map_err(bad_request)?;
    if !auth::authorized(credentials, &token) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong credentials (Authorization: Bearer TOKEN)",
        ));
    }
    let json = auth::single(headers, &header::CONTENT_TYPE, "Content-Type")
        .map_err(bad_request)?
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let serve = shared.config().serve.clone();
    let limit = serve.max_body_bytes;
    let too_big = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    // A body trickled in a byte at a time would hold its connection (and descriptor) for ever.
    let deadline = Duration::from_secs(serve.body_timeout_secs);
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b.to_vec()),
        // Past the limit, or the client went away; either way nothing is routed.
        Ok(Err(_)) => Err(too_big()),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (serve.body_timeout_secs)",
                deadline.as_secs()
            ),
        )),
    }
}

/// Alertmanager's webhook payload, version 4 (only what steward reads; the rest is ignored).
#[derive(Debug, Deserialize)]
struct AmPayload {
    version: String,
    alerts: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct AmAlert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: String,
}

fn severity_of(label: Option<&String>) -> Severity {
    match label.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical" | "page" | "error" | "high") => Severity::Critical,
        Some("info" | "none" | "low") => Severity::Info,
        // An alert that fired without saying how bad is worth a look.
        _ => Severity::Warning,
    }
}

/// One signal per alert; the alert's JSON (with its `status`) is the payload.
pub fn alertmanager_signals(body: &[u8]) -> Result<Vec<Signal>, String> {
    let payload: AmPayload =
        serde_json::from_slice(body).map_err(|e| format!("not an Alertmanager payload: {e}"))?;
    if payload.version != "4" {
        return Err(format!(
            "payload version `{}` is not supported (want \"4\")",
            payload.version
        ));
    }
    let now = OffsetDateTime::now_utc();
    payload
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let a = AmAlert::deserialize(&raw).map_err(|e| format!("alerts[{i}]: {e}"))?;
            if a.status != "firing" && a.status != "resolved" {
                return Err(format!(
                    "alerts[{i}]: status `{}` is neither firing nor resolved",
                    a.status
                ));
            }
            let Some(name) = a.labels.get("alertname").filter(|n| !n.is_empty()) else {
                return Err(format!("alerts[{i}]: no `alertname` label"));
            };
            let subject = match a.labels.get("instance") {
                Some(inst) if !inst.is_empty() => format!("{name}/{inst}"),
                _ => name.clone(),
            };
            let fp = if a.fingerprint.is_empty() {
                let parts: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                fingerprint(&refs)
            } else {
                a.fingerprint.clone()
            };
            Ok(Signal {
                source: Source::Alertmanager,
                subject,
                fingerprint: fp,
                severity: severity_of(a.labels.get("severity")),
                labels: a.labels,
                annotations: a.annotations,
                payload: raw,
                received: now,
                truncated: Vec::new(),
            }
            .bounded())
        })
        .collect()
}

/// `POST /hooks/generic`: one signal from anything that can send JSON (another monitoring
/// system, a script). Its sender holds a token, not the operator's seat: the signal is always of
/// source `webhook`, and whether it starts a goal, and which, is the routes' decision on its
/// subject, severity and labels, never a field the sender sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericHook {
    /// Only `"webhook"`, the one source this endpoint speaks for.
    source: Option<String>,
    subject: String,
    fingerprint: Option<String>,
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// `"firing"` (the default) or `"resolved"`: a resolve cancels this webhook's queued work for
    /// the fingerprint (the router reads `payload.status`).
    status: Option<String>,
}

/// Every fingerprint of a generic webhook signal starts with this: it can never name the work
/// of another source (an Alertmanager alert's, an operator's), to merge into or to resolve.
const WEBHOOK_FINGERPRINT_PREFIX: &str = "webhook:";

/// Fields a generic webhook may not set, with the reason it is told.
const NOT_THE_CALLERS: [(&str, &str); 2] = [
    (
        "goal",
        "`goal` is not accepted: which goal a webhook signal starts is the routes' decision \
         (a route with `source = \"webhook\"` matching the signal's subject, severity or labels)",
    ),
    (
        "vars",
        "`vars` is not accepted: a route sets a goal's variables (from the signal's labels or \
         annotations, with `vars` or `vars_from`)",
    ),
];

pub fn generic_signal(body: &[u8]) -> Result<Signal, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(obj) = raw.as_object() {
        for (field, why) in NOT_THE_CALLERS {
            if obj.contains_key(field) {
                return Err(why.to_string());
            }
        }
    }
    let h: GenericHook = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if let Some(source) = h
        .source
        .as_deref()
        .filter(|s| *s != Source::Webhook.as_str())
    {
        return Err(format!(
            "`source` is `{source}`: a signal through /hooks/generic is always of source \
             `webhook` (it cannot speak for an operator, a timer, CI, systemd or Alertmanager); \
             leave `source` out"
        ));
    }
    if let Some(status) = h
        .status
        .as_deref()
        .filter(|s| !matches!(*s, "firing" | "resolved"))
    {
        return Err(format!(
            "`status` is `{status}`: it is `firing` (the default) or `resolved`"
        ));
    }
    if h.subject.trim().is_empty() {
        return Err("`subject` is empty".into());
    }
    let fp = match h.fingerprint {
        // Idempotent: a fingerprint read back from an answer names the same work.
        Some(given) if given.starts_with(WEBHOOK_FINGERPRINT_PREFIX) => given,
        Some(given) => format!("{WEBHOOK_FINGERPRINT_PREFIX}{given}"),
        None => format!(
            "{WEBHOOK_FINGERPRINT_PREFIX}{}",
            fingerprint(&[Source::Webhook.as_str(), &h.subject])
        ),
    };
    Ok(Signal {
        source: Source::Webhook,
        subject: h.subject,
        fingerprint: fp,
        severity: h.severity.unwrap_or(Severity::Warning),
        labels: h.labels,
        annotations: h.annotations,
        payload: raw,
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
    .bounded())
}

async fn decisions(shared: Arc<Shared>, signals: Vec<Signal>) -> Response {
    #[derive(serde::Serialize)]
    struct Reply {
        accepted: usize,
        decisions: Vec<Answer>,
    }
    let accepted = signals.len();
    let Some(decisions) = shared.submit(signals).await else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "routing stopped unexpectedly",
        );
    };
    // A 5xx makes Alertmanager retry; merged repeats make that harmless.
    let status = if decisions.iter().any(Answer::failed) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    answer(
        status,
        Reply {
            accepted,
            decisions,
        },
    )
}

async fn hook_alertmanager(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match admit(&shared, Endpoint::Alertmanager, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match alertmanager_signals(&bytes) {
        Ok(signals) => decisions(shared, signals).await,
        Err(reason) => refuse(StatusCode::BAD_REQUEST, reason),
    }
}

async fn hook_generic(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match admit(&shared, Endpoint::Generic, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match generic_signal(&bytes) {
        Ok(signal) => decisions(shared, vec![signal]).await,
        Err(reason) => refuse(StatusCode::BAD_REQUEST, reason),
    }
}

/// `POST /signals` on the local socket: a trigger's whole signal. The socket's file mode (owner
/// only, in the state directory) is the authentication.
async fn local_signal(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Signal>(&body) {
        Ok(signal) => decisions(shared, vec![signal.bounded()]).await,
        Err(e) => refuse(StatusCode::BAD_REQUEST, format!("not a signal: {e}")),
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(t) = shared.health.degraded() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "degraded", "reason": t.reason,
                "since": t.since.format(&time::format_description::well_known::Rfc3339).ok(),
                "failed_writes": t.failed,
                "queue_depth": shared.queue_depth().ok()}),
        );
    }
    match shared.queue_depth() {
        Ok(n) => answer(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "queue_depth": n}),
        ),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "error", "error": e.to_string()}),
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(n) = shared.queue_depth() {
        shared
            .metrics
            .depth
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut text = String::new();
    if encode(&mut text, &shared.metrics.registry).is_err() {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn app(shared: Arc<Shared>) -> HttpRouter {
    HttpRouter::new()
        .route("/hooks/alertmanager", post(hook_alertmanager))
        .route("/hooks/generic", post(hook_generic))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

fn local_app(shared: Arc<Shared>) -> HttpRouter {
    HttpRouter::new()
        .route("/signals", post(local_signal))
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// The worker

/// Runs queued jobs one at a time until `stop` turns true (checked between jobs only: stopping a
/// run is the caller's decision, through `cancel`, or by dropping this future).
async fn worker(
    shared: Arc<Shared>,
    queue: Queue,
    mut stop: watch::Receiver<bool>,
    cancel: Cancel,
) {
    let mut observer = QuietObserver;
    loop {
        if *stop.borrow() {
            return;
        }
        let cfg = shared.config();
        let poll = Duration::from_secs(cfg.serve.poll_secs);
        let mut idle = true;
        // No run starts while its record cannot be written (a full disk): the jobs wait.
        if !cfg.serve.paused && shared.health.degraded().is_none() {
            match queue::work_one_until(&cfg, &queue, &mut observer, cancel.clone()).await {
                Ok(Some(w)) => {
                    shared.metrics.worked(&w);
                    if let Some((spent, budget)) = w.over_budget {
                        shared.budget_spent(&w.job.id, spent, budget);
                    }
                    upkeep::log_job(&w);
                    // A requeued job met a busy host lock: wait before trying again.
                    idle = w.job.state == JobState::Queued;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("the queue worker failed: {e}");
                    shared.event("worker_error", serde_json::json!({"reason": e.to_string()}));
                }
            }
        }
        if idle {
            tokio::select! {
                _ = shared.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
            // A process that died while it ran a job (an inline trigger) leaves it `running`:
            // its claim lock says so, and the job is queued again.
            shared.requeue_orphans();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scheduler

/// The longest the scheduler sleeps without looking at the wall clock again.
const SCHEDULER_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Fires scheduled goals until `stop` turns true: sleeps until the earliest next fire time (UTC)
/// and routes a timer signal per goal due, through the same router as every other trigger, so
/// dedup, cooldown, budget, flapping and maintenance windows all apply. Fires missed while the
/// daemon was down are not replayed: the next fire counts from now. A reload wakes it to start
/// over with the new schedule.
async fn scheduler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    // The last instant fired: the wall clock may lag the monotonic sleep by a little, and
    // counting from it keeps one fire time from firing twice.
    let mut last: Option<OffsetDateTime> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let entries = shared.schedule();
        let now = OffsetDateTime::now_utc();
        let from = last.map_or(now, |l| l.max(now));
        let Some((at, due)) = schedule::next_due(&entries, from) else {
            // Nothing scheduled: only a reload or the stop can change that.
            tokio::select! {
                _ = shared.rescheduled.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        // Sleeps are monotonic and fire times are wall-clock: a clock step (NTP) or a suspend
        // would skew a long sleep, so the scheduler looks at the clock again at least every
        // `SCHEDULER_MAX_SLEEP` and fires only once the wall clock reached the fire time.
        let wait = Duration::try_from(at - now)
            .unwrap_or(Duration::ZERO)
            .min(SCHEDULER_MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.rescheduled.notified() => continue,
            _ = stop.changed() => continue,
        }
        if OffsetDateTime::now_utc() < at {
            continue;
        }
        last = Some(at);
        let due: Vec<(String, String)> = due
            .into_iter()
            .map(|e| (e.goal.clone(), e.expr.clone()))
            .collect();
        let delay = random_delay(shared.config().serve.scheduler_random_delay_secs);
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => continue,
            }
        }
        let signals = due.iter().map(|(goal, _)| Signal::timer(goal)).collect();
        let decisions = shared.submit(signals).await.unwrap_or_default();
        for ((goal, expr), decision) in due.iter().zip(decisions) {
            tracing::info!(%goal, schedule = %expr, "scheduled fire");
            shared.event(
                "scheduled",
                serde_json::json!({"goal": goal, "schedule": expr,
                    "at": at.format(&time::format_description::well_known::Rfc3339).ok(),
                    "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "decision": decision.decision()}),
            );
        }
    }
}

/// A uniformly random delay of 0..=`max_secs` seconds, in whole milliseconds.
fn random_delay(max_secs: u64) -> Duration {
    let span = u128::from(max_secs) * 1000 + 1;
    let ms = uuid::Uuid::new_v4().as_u128() % span;
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// The daemon

/// The pid file and the socket: how a trigger finds the daemon.
struct Presence {
    info_path: PathBuf,
    socket: PathBuf,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info_path);
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn notify_systemd(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// The listeners' connection caps for this process's open-file limit, logged.
fn connection_caps(cfg: &Config) -> Result<conn::Caps, ServeError> {
    let caps = conn::Caps::for_this_process(&cfg.serve)?;
    if caps.lowered {
        tracing::warn!(
            "serve.max_connections = {} lowered to {}: the open-file limit is {}, of which {} \
             are kept for steward's own files and {} for daemon.sock (raise LimitNOFILE= for more)",
            cfg.serve.max_connections,
            caps.tcp,
            caps.nofile,
            caps.reserve,
            caps.local
        );
    }
    tracing::info!(
        tcp = caps.tcp,
        local = caps.local,
        nofile = caps.nofile,
        reserve = caps.reserve,
        "connection caps"
    );
    Ok(caps)
}

/// Runs the daemon until SIGTERM or SIGINT. Returns after the worker stopped and the daemon's
/// traces (pid file, socket) are gone.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    // Handlers first: a SIGTERM right after READY must stop the daemon cleanly, not kill it.
    let mut signals = Signals::install().map_err(|source| ServeError::Io {
        what: "cannot install signal handlers".into(),
        source,
    })?;
    let cfg = Config::load(&opts.config_args)?.config;
    let listen_text = opts.listen.clone().unwrap_or(cfg.serve.listen.clone());
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|_| ServeError::BadListen(listen_text.clone()))?;
    let tokens = Tokens::load(&opts, &cfg)?;
    tokens.log();
    let caps = connection_caps(&cfg)?;
    std::fs::create_dir_all(&cfg.state_dir).map_err(|source| ServeError::Io {
        what: format!("cannot create {}", cfg.state_dir.display()),
        source,
    })?;
    // Before anything is recovered: a second daemon on this state directory stops here. The
    // lock, not a pid in `daemon.json`, is the proof a daemon lives; held until serve returns.
    let _alive = crate::daemon::daemon_lock::hold(&cfg.state_dir)?;
    let ledger = Ledger::open(&cfg.state_dir)?;
    let queue = Queue::open(&cfg.state_dir)?;
    let mut router = Router::open(&cfg, queue.clone())?;
    // First what a dead steward left running (its processes ended, its runs recorded
    // `crashed`), then its jobs: a recovered job must never run beside its orphaned agent.
    let crashed = crate::engine::recover::recover_logged(&ledger);
    let recovered = router.recover_queue(OffsetDateTime::now_utc())?;
    // Before the listener: a goal with a bad schedule stops the start, with its file and line.
    let entries = scheduled(&cfg)?;

    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen.to_string(),
            source,
        })?;
    let bound = tcp.local_addr().map_err(|source| ServeError::Io {
        what: "cannot read the bound address".into(),
        source,
    })?;
    let socket = handoff::daemon_socket(&cfg.state_dir);
    // A socket left by a daemon that died would make bind fail; this daemon holds the lock, so
    // no live one is displaced.
    let _ = std::fs::remove_file(&socket);
    let unix = tokio::net::UnixListener::bind(&socket).map_err(|source| ServeError::Bind {
        addr: socket.display().to_string(),
        source,
    })?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| ServeError::Io {
                what: format!("cannot restrict {}", socket.display()),
                source,
            },
        )?;
    }
    let info = DaemonInfo {
        pid: std::process::id(),
        listen: bound.to_string(),
        socket: socket.clone(),
    };
    let info_path = handoff::daemon_file(&cfg.state_dir);
    crate::base::ledger::write_json(&info_path, &info)?;
    let _presence = Presence {
        info_path,
        socket: socket.clone(),
    };

    let grace = Duration::from_secs(cfg.serve.grace_secs);
    let kill_grace = Duration::from_secs(cfg.claude.kill_grace_secs);
    let (routing, requests) = std_mpsc::channel();
    let shared = Arc::new(Shared {
        opts,
        config: RwLock::new(Arc::new(cfg)),
        router: Mutex::new(router),
        queue: queue.clone(),
        routing: Mutex::new(Some(routing)),
        tokens: RwLock::new(tokens),
        ledger,
        health: health::Health::default(),
        wake: Notify::new(),
        metrics: Metrics::new(),
        schedule: RwLock::new(Arc::new(entries)),
        rescheduled: Notify::new(),
    });
    shared.event(
        "daemon_started",
        serde_json::json!({"pid": std::process::id(), "listen": bound.to_string(),
            "recovered": recovered.requeued, "quarantined": recovered.quarantined,
            "tmp_removed": recovered.tmp_removed, "crashed_runs": crashed, "connections": caps,
            "scheduled": shared.schedule().iter()
                .map(|e| serde_json::json!({"goal": e.goal, "schedule": e.expr}))
                .collect::<Vec<_>>()}),
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let routing_threads = start_routing(&shared, requests).map_err(|source| ServeError::Io {
        what: "cannot start the routing threads".into(),
        source,
    })?;
    let header_read_timeout = Duration::from_secs(shared.config().serve.header_read_timeout_secs);
    let http = tokio::spawn(conn::serve(
        tcp,
        app(shared.clone()),
        conn::Bounds {
            header_read_timeout,
            max_connections: caps.tcp,
        },
        stop_rx.clone(),
    ));
    let local = tokio::spawn(conn::serve(
        unix,
        local_app(shared.clone()),
        conn::Bounds {
            header_read_timeout,
            max_connections: caps.local,
        },
        stop_rx.clone(),
    ));
    let (canceller, cancel) = crate::base::cancel::pair();
    let mut work = tokio::spawn(worker(shared.clone(), queue, stop_rx.clone(), cancel));
    let timer = tokio::spawn(scheduler(shared.clone(), stop_rx.clone()));
    let retention = tokio::spawn(upkeep::retention(shared.clone(), stop_rx.clone()));
    // The first line on stdout says where the daemon listens (tests read it; port 0 works).
    // Not println!: a closed stdout must not panic the daemon.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stdout(),
        format_args!("steward serve listening on http://{bound}\n"),
    );
    tracing::info!(%bound, "listening");
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().map(|d| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(d / 2);
            loop {
                tick.tick().await;
                notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            }
        })
    });

    let why = signals.wait_for_stop(&shared).await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("{why}: stopping");
    let _ = stop_tx.send(true);
    shared.wake.notify_one();
    let stopping = Stopping {
        why,
        grace,
        kill_grace,
        canceller,
    };
    let ended = stopping.finish(&shared, &mut work, &mut signals).await;
    let _ = http.await;
    let _ = local.await;
    let _ = timer.await;
    let _ = retention.await;
    // Every request is answered by now: close the routing and let its threads finish.
    if let Ok(mut routing) = shared.routing.lock() {
        routing.take();
    }
    let _ = tokio::task::spawn_blocking(move || {
        for t in routing_threads {
            let _ = t.join();
        }
    })
    .await;
    shared.save_router_state();
    if let Err(e) = shared.queue.write_back() {
        tracing::error!("cannot write the merge counts back to the job files: {e}");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    shared.event(
        "daemon_stopped",
        serde_json::json!({"signal": why.name(), "worker": ended}),
    );
    tracing::info!("{ended}");
    Ok(())
}

/// Once the run is cancelled, how long recording it may take on top of claude's kill grace before
/// the worker is dropped.
const RECORD_GRACE: Duration = Duration::from_secs(10);

/// How the daemon ends the work in progress when it is told to stop.
struct Stopping {
    why: StopSignal,
    grace: Duration,
    kill_grace: Duration,
    canceller: crate::base::cancel::Canceller,
}

impl Stopping {
    /// The current run gets `grace` to finish. Past it, it is cancelled like `steward run` at
    /// Ctrl-C: claude is interrupted, killed after its own grace, and the run is recorded
    /// `cancelled` while its job goes back to the queue. A second SIGTERM/SIGINT cancels at once.
    /// Only a worker that still does not end is dropped (which kills claude's group too) and its
    /// jobs requeued here. Returns what happened, for the `daemon_stopped` event.
    async fn finish(
        self,
        shared: &Shared,
        work: &mut tokio::task::JoinHandle<()>,
        signals: &mut Signals,
    ) -> String {
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
                    self.canceller.stop(self.why);
                    cancelled = Some("did not finish within the grace");
                    deadline = tokio::time::Instant::now() + self.kill_grace + RECORD_GRACE;
                }
                again = signals.next_stop() => {
                    tracing::info!("{again} again: cancelling the current run at once");
                    self.canceller.stop_now(self.why);
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

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT; SIGHUP reloads on the way.
    async fn wait_for_stop(&mut self, shared: &Shared) -> StopSignal {
        loop {
            tokio::select! {
                _ = self.term.recv() => return StopSignal::Terminate,
                _ = self.int.recv() => return StopSignal::Interrupt,
                _ = self.hup.recv() => shared.reload(),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_from_the_label() {
        let l = |s: &str| Some(s.to_string());
        assert_eq!(severity_of(l("critical").as_ref()), Severity::Critical);
        assert_eq!(severity_of(l("PAGE").as_ref()), Severity::Critical);
        assert_eq!(severity_of(l("info").as_ref()), Severity::Info);
        assert_eq!(severity_of(l("warning").as_ref()), Severity::Warning);
        assert_eq!(severity_of(None), Severity::Warning);
    }

    #[test]
    fn scheduled_fires_spread_over_the_random_delay() {
        assert_eq!(random_delay(0), Duration::ZERO);
        let delays: Vec<Duration> = (0..200).map(|_| random_delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let early = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(1))
            .count();
        // 200 fair draws: both halves of the window are used.
        assert!(
            (40..=160).contains(&early),
            "{early} of 200 in the first second"
        );
    }

    #[test]
    fn the_scheduler_switch_empties_the_schedule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tick.md"),
            "+++\ndescription = \"d\"\nschedule = \"* * * * *\"\n+++\nbody\n",
        )
        .unwrap();
        let mut cfg = Config {
            goals_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        };
        assert_eq!(scheduled(&cfg).unwrap().len(), 1);
        cfg.serve.scheduler = false;
        assert!(scheduled(&cfg).unwrap().is_empty());
    }

    #[test]
    fn alertmanager_payload_becomes_one_signal_per_alert() {
        let body = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "steward",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "h1",
                 "severity": "critical"}, "annotations": {"summary": "disk"},
                 "fingerprint": "abc"},
                {"status": "resolved", "labels": {"alertname": "Load"}, "fingerprint": "def"}
            ]
        });
        let s = alertmanager_signals(body.to_string().as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].subject, "DiskFull/h1");
        assert_eq!(s[0].fingerprint, "abc");
        assert_eq!(s[0].severity, Severity::Critical);
        assert!(!crate::daemon::router::is_resolved(&s[0]));
        assert!(crate::daemon::router::is_resolved(&s[1]));
        let bad =
            serde_json::json!({"version": "4", "alerts": [{"status": "firing", "labels": {}}]});
        let e = alertmanager_signals(bad.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("alertname"), "{e}");
        let e = alertmanager_signals(b"{\"version\":\"3\",\"alerts\":[]}").unwrap_err();
        assert!(e.contains("version"), "{e}");
    }

    #[test]
    fn a_generic_hook_is_always_a_webhook_signal_and_cannot_pick_its_goal() {
        let s = generic_signal(
            br#"{"subject": "backup", "labels": {"job": "nightly"}, "annotations": {"n": "a"}}"#,
        )
        .unwrap();
        assert_eq!(s.source, Source::Webhook);
        assert_eq!(s.labels["job"], "nightly");
        assert_eq!(s.annotations["n"], "a");
        assert!(s.fingerprint.starts_with("webhook:"), "{}", s.fingerprint);
        // The caller's fingerprint is in the webhook's own namespace, and reading it back from
        // an answer names the same work.
        let s = generic_signal(br#"{"subject": "x", "fingerprint": "abc"}"#).unwrap();
        assert_eq!(s.fingerprint, "webhook:abc");
        let s = generic_signal(br#"{"subject": "x", "fingerprint": "webhook:abc"}"#).unwrap();
        assert_eq!(s.fingerprint, "webhook:abc");
        let s = generic_signal(br#"{"subject": "x", "source": "webhook"}"#).unwrap();
        assert_eq!(s.source, Source::Webhook);
        for (body, says) in [
            (
                r#"{"subject": "x", "source": "manual"}"#,
                "always of source `webhook`",
            ),
            (
                r#"{"subject": "x", "source": "ci"}"#,
                "always of source `webhook`",
            ),
            (r#"{"subject": "x", "goal": "intent"}"#, "routes' decision"),
            (
                r#"{"subject": "x", "vars": {"intent": "rm"}}"#,
                "a route sets",
            ),
            (
                r#"{"subject": "x", "status": "gone"}"#,
                "`firing` (the default) or `resolved`",
            ),
            (r#"{"subject": " "}"#, "`subject` is empty"),
            (r#"{"fingerprint": "x"}"#, "subject"),
            (r#"{"subject": "x", "nope": 1}"#, "nope"),
        ] {
            let e = generic_signal(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
