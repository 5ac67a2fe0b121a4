//! The router: between a [`Signal`] and the [`Queue`]. It picks a goal and variables from the
//! routing table (`triggers/routes.toml`), then decides whether a run may start at all: dedup by
//! fingerprint, maintenance windows, flapping, cooldown per (goal, subject), rate limits per
//! source and overall, and the daily budget. Every decision is recorded as a `routing` event with
//! its reason.
//!
//! The order of the checks is deliberate:
//! 1. a resolved alert cancels queued work for its fingerprint (nothing else applies to it);
//! 2. a maintenance window suppresses everything, and such signals do not count as failures;
//! 3. no matching route: nothing to do;
//! 4. a fingerprint already queued or running absorbs the signal (a unit failing again still
//!    counts as a failure of its subject; an alert's repeats do not);
//! 5. flapping (acute, then chronic): the subject keeps *failing*, so a human must look instead
//!    of another run;
//! 6. cooldown, 7. rate limits (per source, then overall), 8. budget, and only then
//! 9. a job is queued.
//!
//! Flapping counts failures of a subject, never plain fires: a unit that failed (`on_failure`),
//! an alert or webhook that starts firing (its first firing, or firing again after it resolved;
//! Alertmanager's repeat notifications of an alert still firing are not new failures), and runs
//! of the subject started by a timer or an operator that ended `failed` or `escalated` (read from
//! the runs' `result.json` by [`RunIndex`]; runs of failure signals are not counted twice).
//! A timer firing, an operator's run and CI never count, so a goal on a schedule is never
//! flapping merely for running.
//!
//! A signal held back by flapping, a rate limit or the budget is told to the operator: an
//! `operator_notice` event, at most once per window (flapping: per subject per flapping window;
//! rate limit: per scope per hour; budget: per UTC day), so a storm does not write thousands.
//!
//! State that must survive a restart lives in `STATE/router.json` (written atomically): failure
//! times per subject and the alerts seen firing (flapping), enqueue times per source (rate
//! limits; the router commits to a run when it queues one, so that is what is counted), the last
//! enqueue per (goal, subject) (cooldown), and when the operator was last told about flapping,
//! a rate limit and the budget. Spend and run outcomes are not kept there: they are read from
//! the runs' `result.json`, so CLI runs count too and the record stays the single source of
//! truth. A state file that cannot be read is an error naming it, never a silent reset. Its
//! size is bounded by `[router] max_subjects`, whatever the history (see [`forget`]), and every
//! signal is bounded (see [`crate::base::signal::bound`]) before it is decided.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::ledger::{self, EventBatch, Ledger, LedgerError};
use crate::base::signal::Signal;
use crate::config::maintenance::Maintenance;
use crate::config::{Config, ConfigError, RouterConfig};
use crate::daemon::queue::{Queue, QueueError};
use crate::engine::run_index::RunIndex;

mod forget;
use forget::StateWindow;

#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("cannot read routes file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Routes(#[from] RoutesError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Approval(#[from] crate::engine::approval::ApprovalError),
    #[error("the routing record could not be written ({0}): nothing of the batch was queued")]
    Unrecorded(LedgerError),
}

mod budget;
mod decision;
mod flapping;
mod lost;
mod routes;
mod rules;
mod undo;

pub use decision::{Decided, FlapKind, RateScope, Routed, RoutingDecision, exit_for, is_resolved};
use decision::{record, withdraw_actions};
use flapping::{Flap, failure_times};
pub use routes::{BUNDLED_ROUTES, Matched, Route, Routes, VarsFrom, render};

// ---------------------------------------------------------------------------------------------
// Persistent state (`STATE/router.json`). Times are unix seconds (UTC).

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterState {
    /// Failure times per subject from failure signals (flapping; see the module docs).
    #[serde(default)]
    failures: BTreeMap<String, Vec<i64>>,
    /// Alert and webhook fingerprints firing, with when they were last counted as firing; a
    /// resolved signal removes its fingerprint, so the next firing is a new failure.
    #[serde(default)]
    firing: BTreeMap<String, i64>,
    /// Enqueue times per source (rate limits).
    #[serde(default)]
    enqueued: BTreeMap<String, Vec<i64>>,
    /// Last enqueue per goal, then subject (cooldown).
    #[serde(default)]
    last_run: BTreeMap<String, BTreeMap<String, i64>>,
    /// Last flapping escalation (and operator notice) per subject.
    #[serde(default)]
    escalated: BTreeMap<String, i64>,
    /// The last rate-limit notice per scope (`overall`, `source:NAME`).
    #[serde(default)]
    rate_told: BTreeMap<String, i64>,
    /// The UTC day (`YYYY-MM-DD`) the operator was last told the budget is spent.
    #[serde(default)]
    budget_told: Option<String>,
    /// Older steward counted every signal per subject here; those counts included timer fires,
    /// so they are read and dropped, never used.
    #[serde(default, rename = "signals", skip_serializing)]
    _legacy_signals: Option<serde::de::IgnoredAny>,
}

pub struct Router {
    settings: RouterConfig,
    routes: Routes,
    maintenance: Maintenance,
    queue: Queue,
    ledger: Ledger,
    state_path: PathBuf,
    state: RouterState,
    /// `state` differs from `router.json`.
    state_changed: bool,
    /// The second `state` was last pruned at: windows are whole seconds, so once is enough.
    pruned_at: Option<i64>,
    /// Recent finished runs: spend and the failures of timer and manual runs.
    runs: RunIndex,
    /// Keys forgotten per window because it was full, not yet recorded (see [`forget`]).
    forgotten: BTreeMap<StateWindow, usize>,
}

const HOUR: i64 = 3600;

impl Router {
    /// The router for a configuration (its routes, its state) over the process's queue.
    pub fn open(cfg: &Config, queue: Queue) -> Result<Router, RouterError> {
        Router::new(queue, cfg.router.clone(), Routes::load(cfg)?)
    }

    pub fn new(
        queue: Queue,
        settings: RouterConfig,
        routes: Routes,
    ) -> Result<Router, RouterError> {
        let ledger = queue.ledger().clone();
        let state_path = ledger.root().join("router.json");
        // Missing means fresh; anything else unreadable is an error that names the file.
        let mut state: RouterState = if state_path.exists() {
            ledger::read_json(&state_path)?
        } else {
            RouterState::default()
        };
        // A state written under a larger `max_subjects` (or flapping count) is fitted at once.
        let forgotten: BTreeMap<StateWindow, usize> = state
            .fit(settings.max_subjects, failure_times(&settings))
            .into_iter()
            .collect();
        Ok(Router {
            maintenance: Maintenance::compile(&settings.maintenance)?,
            settings,
            routes,
            queue,
            ledger,
            state_path,
            state,
            state_changed: !forgotten.is_empty(),
            pruned_at: None,
            runs: RunIndex::default(),
            forgotten,
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// Decides what to do with one signal, acts on it (queue, merge, cancel, escalate), and
    /// records the decision with its reason as a `routing` event.
    #[cfg(test)]
    pub fn route(&mut self, signal: &Signal, now: OffsetDateTime) -> Result<Routed, RouterError> {
        let mut all = self.route_all(std::slice::from_ref(signal), now)?;
        all.pop().expect("one decision per signal")
    }

    /// Routes signals in order and records the decisions: [`Router::decide_all`], its events
    /// written and fsynced, then the state saved. The outer error means the record could not
    /// be written, so no decision of the batch was taken (see [`Router::decide_all`]).
    pub fn route_all(
        &mut self,
        signals: &[Signal],
        now: OffsetDateTime,
    ) -> Result<Vec<Result<Routed, RouterError>>, RouterError> {
        let ledger = self.ledger.clone();
        let decided = self.decide_all(signals, now, |events| ledger.write_events(events))?;
        // Written, so taken: an fsync that fails now is an error, but the jobs stay with their
        // records (taking them back would leave records of jobs that do not exist).
        let synced = decided.written.sync();
        self.save_state()?;
        synced?;
        Ok(decided.decisions)
    }

    /// Writes `router.json` if a decision changed the state since it was last written.
    pub fn save_state(&mut self) -> Result<(), RouterError> {
        if let Some(bytes) = self.state_snapshot()? {
            ledger::write_atomic(&self.state_path, &bytes)?;
        }
        Ok(())
    }

    /// The state as `router.json` bytes if it changed since the last snapshot, which it now
    /// counts as saved: the caller writes it to [`Router::state_path`] (the daemon does so
    /// outside the router's lock) and calls [`Router::state_unsaved`] if that fails.
    pub fn state_snapshot(&mut self) -> Result<Option<Vec<u8>>, RouterError> {
        if !self.state_changed {
            return Ok(None);
        }
        let mut bytes = serde_json::to_vec(&self.state).map_err(|source| LedgerError::Encode {
            what: self.state_path.display().to_string(),
            source,
        })?;
        bytes.push(b'\n');
        self.state_changed = false;
        Ok(Some(bytes))
    }

    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// A snapshot could not be written: the next one must be taken.
    pub fn state_unsaved(&mut self) {
        self.state_changed = true;
    }

    /// Decides signals in order, one decision each (a failure for one does not stop the
    /// others), acts on them (jobs queued and cancelled are on disk), and hands the decisions'
    /// events to `write`, which records them. What the decisions changed in the router's own
    /// state (cooldowns, rate and flapping windows) is written by [`Router::save_state`].
    ///
    /// A job never exists without the record of why it was queued: `write` runs while the
    /// queue is still held, so no worker can claim a job of the batch before its record is
    /// written, and when `write` fails (a full disk) the batch is taken back: its jobs
    /// withdrawn, its merges uncounted, its cooldowns and notices released (see `undo`), and
    /// the error says nothing was queued. The daemon writes the events before answering and
    /// fsyncs them shortly after; the state follows within a second.
    pub fn decide_all<T>(
        &mut self,
        signals: &[Signal],
        now: OffsetDateTime,
        write: impl FnOnce(EventBatch) -> Result<T, LedgerError>,
    ) -> Result<Decided<T>, RouterError> {
        let t = now.unix_timestamp();
        if self.pruned_at != Some(t) {
            self.prune(t);
            self.pruned_at = Some(t);
        }
        let mut events = EventBatch::default();
        // The adapters bound their signals; this is what keeps the state bounded whoever
        // called (see `signal::bound`). Borrowed unless a signal needed cutting.
        let signals: Vec<Cow<'_, Signal>> = signals
            .iter()
            .map(|s| {
                if s.is_bounded() {
                    Cow::Borrowed(s)
                } else {
                    Cow::Owned(s.clone().bounded())
                }
            })
            .collect();
        // Held for the batch and its record, so other processes' changes are looked for once.
        let queue = self.queue.clone();
        let mut session = queue.session()?;
        let decisions: Vec<Result<Routed, RouterError>> = signals
            .iter()
            .map(|signal| {
                let routed = self.decide(&mut session, signal, now)?;
                if let Err(e) = record(&mut events, signal, &routed, now) {
                    self.undo_one(&mut session, signal, &routed, now);
                    return Err(e.into());
                }
                Ok(routed)
            })
            .collect();
        // A job file found unreadable was moved aside: the work it held never runs.
        self.release_quarantined(&decisions, now);
        self.record_forgotten(&mut events, now);
        match write(events) {
            Ok(written) => {
                self.forgotten.clear();
                Ok(Decided { decisions, written })
            }
            Err(e) => {
                // What was forgotten stays forgotten; it is recorded with the next batch.
                self.undo(&mut session, &signals, &decisions, now);
                Err(RouterError::Unrecorded(e))
            }
        }
    }

    /// Before a new key goes into `window`: makes room if it is full (see [`forget`]).
    fn remember(&mut self, window: StateWindow) {
        let cap = self.settings.max_subjects;
        let n = self.state.make_room(window, cap);
        if n > 0 {
            tracing::warn!(
                window = window.name(),
                forgotten = n,
                max_subjects = cap,
                "the router forgot the {n} oldest entries of `{}`: more than \
                 router.max_subjects ({cap}) distinct keys in its window",
                window.name()
            );
            *self.forgotten.entry(window).or_default() += n;
            self.state_changed = true;
        }
    }

    /// A `router_forgot` event per window that forgot keys since the last batch was recorded.
    fn record_forgotten(&self, events: &mut EventBatch, now: OffsetDateTime) {
        for (window, n) in &self.forgotten {
            let data = serde_json::json!({
                "window": window.name(), "forgotten": n, "max_subjects": self.settings.max_subjects,
                "at": now.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
            // Only encoding can fail here, and the warning at the forgetting still says it.
            if let Err(e) = events.add("router_forgot", None, &data) {
                tracing::error!("cannot record that the router forgot entries: {e}");
            }
        }
    }

    /// Whether a rate limit of `scope` must be told now: once per scope per hour.
    fn tell_rate_limit(&mut self, scope: &str, t: i64) -> bool {
        let notify = self
            .state
            .rate_told
            .get(scope)
            .is_none_or(|&last| last <= t.saturating_sub(HOUR));
        if notify {
            self.state.rate_told.insert(scope.to_string(), t);
            self.state_changed = true;
        }
        notify
    }

    /// Drops what no limit can look at any more, so the state file stays small.
    fn prune(&mut self, t: i64) {
        let flap_window = self.flap_window();
        let max_cooldown = self
            .routes
            .routes()
            .iter()
            .filter_map(|r| r.cooldown_secs)
            .chain([self.settings.cooldown_secs])
            .max()
            .unwrap_or(0);
        let max_cooldown = i64::try_from(max_cooldown).unwrap_or(i64::MAX);
        let size = |s: &RouterState| {
            s.failures.values().map(Vec::len).sum::<usize>()
                + s.firing.len()
                + s.enqueued.values().map(Vec::len).sum::<usize>()
                + s.last_run.values().map(BTreeMap::len).sum::<usize>()
                + s.escalated.len()
                + s.rate_told.len()
        };
        let before = size(&self.state);
        let keep = |v: &mut Vec<i64>, w: i64| v.retain(|&x| x > t.saturating_sub(w));
        for v in self.state.failures.values_mut() {
            keep(v, flap_window);
        }
        self.state.failures.retain(|_, v| !v.is_empty());
        // An alert not seen firing for a whole window counts anew when it next fires.
        self.state
            .firing
            .retain(|_, &mut x| x > t.saturating_sub(flap_window));
        self.state
            .rate_told
            .retain(|_, &mut x| x > t.saturating_sub(HOUR));
        for v in self.state.enqueued.values_mut() {
            keep(v, HOUR);
        }
        self.state.enqueued.retain(|_, v| !v.is_empty());
        for g in self.state.last_run.values_mut() {
            g.retain(|_, &mut x| x > t.saturating_sub(max_cooldown));
        }
        self.state.last_run.retain(|_, g| !g.is_empty());
        self.state
            .escalated
            .retain(|_, &mut x| x > t.saturating_sub(flap_window));
        self.state_changed |= size(&self.state) != before;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::outcome::ExitKind;
    use crate::base::signal::{Severity, Source};
    use crate::config::FlapWindow;
    use crate::config::MaintenanceWindow;
    use crate::daemon::queue::{JobOutcome, JobState};
    use std::path::Path;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn at(secs: i64) -> OffsetDateTime {
        T0 + time::Duration::seconds(secs)
    }

    fn alert(subject: &str, fp: &str) -> Signal {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), subject.to_string());
        labels.insert("severity".to_string(), "critical".to_string());
        Signal {
            source: Source::Alertmanager,
            subject: subject.to_string(),
            fingerprint: fp.to_string(),
            severity: Severity::Critical,
            labels,
            annotations: BTreeMap::new(),
            payload: serde_json::json!({"status": "firing"}),
            received: T0,
            truncated: Vec::new(),
        }
    }

    fn resolved(subject: &str, fp: &str) -> Signal {
        let mut s = alert(subject, fp);
        s.payload = serde_json::json!({"status": "resolved"});
        s
    }

    fn signal(source: Source, subject: &str, labels: &[(&str, &str)]) -> Signal {
        Signal {
            source,
            subject: subject.to_string(),
            fingerprint: crate::base::signal::fingerprint(&[source.as_str(), subject]),
            severity: Severity::Info,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            payload: serde_json::Value::Null,
            received: T0,
            truncated: Vec::new(),
        }
    }

    fn router_with(dir: &Path, settings: RouterConfig) -> Router {
        Router::new(
            Queue::open(dir).unwrap(),
            settings,
            Routes::bundled().unwrap(),
        )
        .unwrap()
    }

    fn router(dir: &Path) -> Router {
        router_with(dir, RouterConfig::default())
    }

    fn events(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for f in std::fs::read_dir(dir.join("events")).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if v["kind"] == kind {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Ends a job as the worker would, so later signals are not merged into it.
    fn finish_all(r: &Router) {
        let q = r.queue();
        while let Some(job) = q.claim_next(T0).unwrap() {
            q.finish(
                &job,
                JobOutcome {
                    state: JobState::Done,
                    run_id: None,
                    outcome: Some("fixed".into()),
                    reason: "test".into(),
                    cost_usd: 0.0,
                },
                T0,
            )
            .unwrap();
        }
    }

    fn job_id(r: &Routed) -> String {
        match &r.decision {
            RoutingDecision::Enqueue { job_id, .. } => job_id.clone(),
            other => panic!("expected enqueue, got {other:?} ({})", r.reason),
        }
    }

    #[test]
    fn bundled_routes_send_each_source_to_its_goal() {
        let routes = Routes::bundled().unwrap();
        let m = routes.find(&alert("DiskFull", "f1")).unwrap();
        assert_eq!(m.goal, "incident");
        assert_eq!(m.vars["alertname"], "DiskFull");

        let m = routes
            .find(&signal(Source::OnFailure, "nginx.service", &[]))
            .unwrap();
        assert_eq!(m.goal, "on-failure");
        assert_eq!(m.vars["unit"], "nginx.service");

        let m = routes
            .find(&signal(
                Source::Timer,
                "health-check",
                &[("goal", "health-check")],
            ))
            .unwrap();
        assert_eq!(m.goal, "health-check");
        // A timer that names no goal has nothing to run.
        assert!(routes.find(&signal(Source::Timer, "x", &[])).is_none());

        let m = routes
            .find(&signal(
                Source::Ci,
                "main",
                &[("base", "a1"), ("head", "b2")],
            ))
            .unwrap();
        assert_eq!(m.goal, "deploy-review");
        assert_eq!(m.vars["head"], "b2");

        let mut vars = BTreeMap::new();
        vars.insert("intent".to_string(), "free the disk".to_string());
        let m = routes.find(&Signal::manual("intent", &vars)).unwrap();
        assert_eq!(m.goal, "intent");
        assert_eq!(m.vars["intent"], "free the disk");

        assert!(
            routes
                .find(&signal(Source::Webhook, "anything", &[]))
                .is_none()
        );
    }

    #[test]
    fn route_errors_name_origin_and_line() {
        let text = "[[route]]\nname = \"a\"\ngoal = \"incident\"\n\n[[route]]\nname = \"b\"\ngoal = \"x\"\ncooldwn_secs = 3\n";
        let err = Routes::parse("/etc/steward/routes.toml", text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/etc/steward/routes.toml:8:"), "{err}");
        assert!(err.contains("cooldwn_secs"), "{err}");

        let text =
            "[[route]]\nname = \"a\"\ngoal = \"incident\"\n[route.match]\nsource = \"pager\"\n";
        let err = Routes::parse("r.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:5:"), "{err}");

        let text = "[[route]]\nname = \"a\"\ngoal = \"incident\"\n\n[[route]]\nname = \"b\"\ngoal = \"x\"\n[route.match]\nlabels = { alertname = \"Disk(\" }\n";
        let err = Routes::parse("r.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("r.toml:5:"), "{err}");
        assert!(err.contains("match.labels.alertname"), "{err}");

        let text =
            "[[route]]\nname = \"a\"\ngoal = \"incident\"\nvars = { unit = \"${label.unit}\" }\n";
        let err = Routes::parse("r.toml", text).unwrap_err().to_string();
        assert!(
            err.contains("r.toml:1:") && err.contains("label.unit"),
            "{err}"
        );
    }

    #[test]
    fn a_webhook_never_picks_its_own_goal() {
        // A templated goal on a route that webhooks can reach must list what it may reach.
        for matcher in [
            "",
            "[route.match]\nsource = \"webhook\"\n",
            "[route.match]\nsource = \"alertmanager\"\n",
        ] {
            let text =
                format!("[[route]]\nname = \"pick\"\ngoal = \"${{labels.goal}}\"\n{matcher}");
            let err = Routes::parse("r.toml", &text).unwrap_err().to_string();
            assert!(err.contains("the sender would pick the goal"), "{err}");
        }
        // For a local source it stays the route's template (the operator's own labels).
        let text = "[[route]]\nname = \"t\"\ngoal = \"${labels.goal}\"\n[route.match]\nsource = \"timer\"\n";
        Routes::parse("r.toml", text).unwrap();
        let text = "[[route]]\nname = \"g\"\ngoal = \"incident\"\ngoals = [\"incident\"]\n";
        let err = Routes::parse("r.toml", text).unwrap_err().to_string();
        assert!(err.contains("only for a templated"), "{err}");

        let text = r#"
[[route]]
name = "monitor"
goal = "${labels.check}"
goals = ["health-check", "on-failure"]
vars_from = ["labels"]
[route.match]
source = "webhook"
"#;
        let routes = Routes::parse("r.toml", text).unwrap();
        let m = routes
            .find(&signal(
                Source::Webhook,
                "backup",
                &[("check", "health-check")],
            ))
            .unwrap();
        assert_eq!(m.goal, "health-check");
        for goal in ["intent", "incident"] {
            assert!(
                routes
                    .find(&signal(Source::Webhook, "backup", &[("check", goal)]))
                    .is_none(),
                "{goal}"
            );
        }
        // The bundled table has no route for webhooks at all.
        let bundled = Routes::bundled().unwrap();
        assert!(
            bundled
                .find(&signal(Source::Webhook, "x", &[("goal", "intent")]))
                .is_none()
        );
    }

    #[test]
    fn matching_by_priority_labels_severity_and_subject() {
        let text = r#"
[[route]]
name = "catch-all"
goal = "health-check"

[[route]]
name = "disk"
goal = "incident"
priority = 10
cooldown_secs = 60
[route.match]
source = "alertmanager"
severity = "critical"
subject = "Disk.*"
labels = { alertname = "Disk.*" }
[route.vars]
what = "${labels.alertname} on ${subject} (${severity})"
missing = "${labels.nope}"

[[route]]
name = "exact"
goal = "on-failure"
priority = 10
[route.match]
subject_exact = "a.service"
"#;
        let routes = Routes::parse("t.toml", text).unwrap();
        let m = routes.find(&alert("DiskFull", "f")).unwrap();
        assert_eq!(m.route, "disk");
        assert_eq!(m.vars["what"], "DiskFull on DiskFull (critical)");
        assert!(!m.vars.contains_key("missing"));
        assert_eq!(m.cooldown_secs, Some(60));
        let mut warn = alert("DiskFull", "f");
        warn.severity = Severity::Warning;
        assert_eq!(routes.find(&warn).unwrap().route, "catch-all");
        assert_eq!(
            routes.find(&alert("CpuHigh", "f")).unwrap().route,
            "catch-all"
        );
        assert_eq!(
            routes
                .find(&signal(Source::OnFailure, "a.service", &[]))
                .unwrap()
                .route,
            "exact"
        );
        assert_eq!(
            routes
                .find(&signal(Source::OnFailure, "aXservice", &[]))
                .unwrap()
                .route,
            "catch-all"
        );
    }

    #[test]
    fn same_fingerprint_merges_into_queued_or_running_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let first = r.route(&alert("DiskFull", "fp1"), at(0)).unwrap();
        let id = job_id(&first);
        let second = r.route(&alert("DiskFull", "fp1"), at(5)).unwrap();
        assert_eq!(
            second.decision,
            RoutingDecision::Merged { into: id.clone() }
        );
        // Still merges while it runs.
        r.queue().claim_next(at(6)).unwrap().unwrap();
        let third = r.route(&alert("DiskFull", "fp1"), at(7)).unwrap();
        assert_eq!(third.decision, RoutingDecision::Merged { into: id.clone() });
        assert!(third.reason.contains("running"), "{}", third.reason);
        let jobs = r.queue().list().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].merged, 2);
    }

    #[test]
    fn cooldown_per_goal_and_subject_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        job_id(&r.route(&alert("DiskFull", "fp1"), at(0)).unwrap());
        finish_all(&r);
        drop(r);
        let mut r = router(dir.path());
        let d = r.route(&alert("DiskFull", "fp2"), at(60)).unwrap();
        assert_eq!(d.decision, RoutingDecision::Cooldown { until: at(900) });
        // Another subject is not cooling down.
        job_id(&r.route(&alert("CpuHigh", "fp3"), at(61)).unwrap());
        finish_all(&r);
        job_id(&r.route(&alert("DiskFull", "fp4"), at(901)).unwrap());
    }

    #[test]
    fn rate_limits_per_source_and_overall() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                max_runs_per_hour: 3,
                max_runs_per_hour_per_source: 2,
                ..RouterConfig::default()
            },
        );
        job_id(&r.route(&alert("A", "a"), at(0)).unwrap());
        job_id(&r.route(&alert("B", "b"), at(1)).unwrap());
        let d = r.route(&alert("C", "c"), at(2)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::RateLimited {
                scope: RateScope::Source,
                count: 2,
                limit: 2,
                notify: true,
            }
        );
        // Told once per scope per hour, not per signal.
        let d = r.route(&alert("D", "d"), at(3)).unwrap();
        assert!(matches!(
            d.decision,
            RoutingDecision::RateLimited { notify: false, .. }
        ));
        let timer = |g: &str| signal(Source::Timer, g, &[("goal", g)]);
        job_id(&r.route(&timer("health-check"), at(3)).unwrap());
        let d = r.route(&timer("proactive"), at(4)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::RateLimited {
                scope: RateScope::Overall,
                count: 3,
                limit: 3,
                notify: true,
            }
        );
        assert_eq!(d.decision.exit(), ExitKind::Limited);
        let notices = events(dir.path(), "operator_notice");
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert_eq!(notices[0]["cause"], "rate_limit");
        assert_eq!(notices[0]["scope"], "source");
        assert_eq!(notices[1]["scope"], "overall");
        // An hour later the window has moved on.
        job_id(&r.route(&alert("C", "c"), at(3601)).unwrap());
    }

    /// A goal on a schedule is never flapping merely for running: the issue's
    /// `*/15 * * * *` goal, fired all day, and hourly timers.
    #[test]
    fn timer_fires_never_flap() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let timer = signal(Source::Timer, "health-check", &[("goal", "health-check")]);
        for i in 0..96 {
            let d = r.route(&timer, at(i * 900)).unwrap();
            job_id(&d);
            finish_all(&r);
        }
        assert!(events(dir.path(), "escalation").is_empty());
        assert!(events(dir.path(), "operator_notice").is_empty());
        // Operators' runs and CI neither.
        let manual = Signal::manual("intent", &BTreeMap::new());
        for i in 0..6 {
            let d = r.route(&manual, at(96 * 900 + i * 1000)).unwrap();
            job_id(&d);
            finish_all(&r);
        }
    }

    fn write_result(dir: &Path, id: &str, source: &str, subject: &str, outcome: &str, at: i64) {
        let run = dir.join("runs").join(id);
        std::fs::create_dir_all(&run).unwrap();
        let finished = (T0 + time::Duration::seconds(at))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        std::fs::write(
            run.join("result.json"),
            serde_json::json!({"id": id, "cost_usd": 0.0, "source": source,
                "subject": subject, "outcome": outcome, "finished": finished})
            .to_string(),
        )
        .unwrap();
    }

    #[test]
    fn timer_runs_that_keep_failing_make_the_subject_flap() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let timer = signal(Source::Timer, "health-check", &[("goal", "health-check")]);
        // Healthy runs, runs of other subjects and failed runs of failure signals (their
        // signal counted already) do not count.
        for i in 0..10 {
            let id = format!("20261122T0{i}0000Z-health-check-ok{i:04}");
            write_result(dir.path(), &id, "timer", "health-check", "no_action", -3600);
        }
        write_result(
            dir.path(),
            "20261122T011000Z-on-failure-aaaaaa",
            "on_failure",
            "health-check",
            "failed",
            -3000,
        );
        write_result(
            dir.path(),
            "20261122T012000Z-health-check-bbbbbb",
            "timer",
            "other",
            "failed",
            -3000,
        );
        for i in 0..4 {
            let id = format!("20261122T02{i}000Z-health-check-fail{i:02}");
            write_result(dir.path(), &id, "timer", "health-check", "escalated", -2000);
        }
        job_id(&r.route(&timer, at(0)).unwrap());
        finish_all(&r);
        // The fifth failed run in a day: chronic flapping, and the operator is told once.
        write_result(
            dir.path(),
            "20261122T030000Z-health-check-fail05",
            "manual",
            "health-check",
            "failed",
            -1000,
        );
        let d = r.route(&timer, at(3600)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Chronic,
                count: 5,
                escalate: true
            },
            "{}",
            d.reason
        );
        assert!(d.reason.contains("5 of them runs"), "{}", d.reason);
        assert_eq!(d.decision.exit(), ExitKind::NeedsHuman);
        let d = r.route(&timer, at(7200)).unwrap();
        assert!(matches!(
            d.decision,
            RoutingDecision::Flapping {
                escalate: false,
                ..
            }
        ));
        let notices = events(dir.path(), "operator_notice");
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0]["cause"], "flapping");
        assert_eq!(notices[0]["subject"], "health-check");
    }

    #[test]
    fn an_alert_counts_when_it_starts_firing_not_on_its_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                cooldown_secs: 0,
                ..RouterConfig::default()
            },
        );
        // Alertmanager repeats a firing alert: one failure, however often it is sent.
        for i in 0..6 {
            job_id(&r.route(&alert("Disk", "fp"), at(i * 60)).unwrap());
            finish_all(&r);
        }
        // Resolved, then firing again: that is flapping (third onset within ten minutes).
        r.route(&resolved("Disk", "fp"), at(400)).unwrap();
        job_id(&r.route(&alert("Disk", "fp"), at(410)).unwrap());
        finish_all(&r);
        r.route(&resolved("Disk", "fp"), at(420)).unwrap();
        let d = r.route(&alert("Disk", "fp"), at(430)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Acute,
                count: 3,
                escalate: true
            },
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_unit_failing_again_while_its_run_is_queued_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let failed = signal(Source::OnFailure, "nginx.service", &[]);
        job_id(&r.route(&failed, at(0)).unwrap());
        for t in [10, 20] {
            let d = r.route(&failed, at(t)).unwrap();
            assert_eq!(d.decision.name(), "merged");
        }
        finish_all(&r);
        let d = r.route(&failed, at(30)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Acute,
                count: 4,
                escalate: true
            }
        );
    }

    #[test]
    fn an_old_state_file_counting_every_signal_is_read_and_its_counts_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let t = at(0).unix_timestamp();
        std::fs::write(
            dir.path().join("router.json"),
            serde_json::json!({
                "signals": {"health-check": [t - 50, t - 40, t - 30, t - 20, t - 10]},
                "enqueued": {}, "last_run": {}, "escalated": {}, "budget_told": null
            })
            .to_string(),
        )
        .unwrap();
        let mut r = router(dir.path());
        let timer = signal(Source::Timer, "health-check", &[("goal", "health-check")]);
        job_id(&r.route(&timer, at(0)).unwrap());
        r.save_state().unwrap();
        let text = std::fs::read_to_string(dir.path().join("router.json")).unwrap();
        assert!(!text.contains("\"signals\""), "{text}");
    }

    #[test]
    fn exit_codes_of_decisions() {
        for (name, exit) in [
            ("enqueue", ExitKind::Ok),
            ("merged", ExitKind::Ok),
            ("cooldown", ExitKind::Ok),
            ("maintenance", ExitKind::Ok),
            ("flapping", ExitKind::NeedsHuman),
            ("rate_limited", ExitKind::Limited),
            ("over_budget", ExitKind::Limited),
            ("no_route", ExitKind::Usage),
            ("error", ExitKind::Error),
        ] {
            assert_eq!(exit_for(name), exit, "{name}");
        }
    }

    fn write_run(dir: &Path, id: &str, cost: f64) {
        let run = dir.join("runs").join(id);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("result.json"),
            serde_json::json!({"cost_usd": cost, "id": id}).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn over_budget_records_signals_and_tells_the_operator_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        write_run(dir.path(), "20261122T010000Z-incident-aaaaaa", 3.0);
        // Yesterday's spend does not count.
        write_run(dir.path(), "20261121T230000Z-incident-bbbbbb", 9.0);
        job_id(&r.route(&alert("A", "a"), at(0)).unwrap());
        // A run still going (no result yet) costs nothing so far.
        std::fs::create_dir_all(dir.path().join("runs/20261122T020000Z-incident-cccccc")).unwrap();
        write_run(dir.path(), "20261122T030000Z-incident-dddddd", 2.5);
        let d = r.route(&alert("B", "b"), at(10)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::OverBudget {
                spent: 5.5,
                budget: 5.0,
                notify: true
            }
        );
        let d = r.route(&alert("C", "c"), at(20)).unwrap();
        assert!(matches!(
            d.decision,
            RoutingDecision::OverBudget { notify: false, .. }
        ));
        // A restart does not tell the operator again the same day.
        drop(r);
        let mut r = router(dir.path());
        let d = r.route(&alert("D", "d"), at(30)).unwrap();
        assert!(matches!(
            d.decision,
            RoutingDecision::OverBudget { notify: false, .. }
        ));
        assert_eq!(events(dir.path(), "operator_notice").len(), 1);
        assert_eq!(d.decision.exit(), ExitKind::Limited);
        // The next day starts from zero.
        job_id(&r.route(&alert("E", "e"), at(86400)).unwrap());
    }

    #[test]
    fn unreadable_run_result_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let run = dir.path().join("runs/20261122T010000Z-incident-aaaaaa");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("result.json"), "{oops").unwrap();
        let err = r.route(&alert("A", "a"), at(0)).unwrap_err().to_string();
        assert!(err.contains("result.json"), "{err}");
    }

    #[test]
    fn acute_flapping_escalates_once_instead_of_running() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        job_id(&r.route(&alert("Disk", "f1"), at(0)).unwrap());
        finish_all(&r);
        let d = r.route(&alert("Disk", "f2"), at(100)).unwrap();
        assert!(matches!(d.decision, RoutingDecision::Cooldown { .. }));
        let d = r.route(&alert("Disk", "f3"), at(200)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Acute,
                count: 3,
                escalate: true
            }
        );
        let d = r.route(&alert("Disk", "f4"), at(300)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Acute,
                count: 4,
                escalate: false
            }
        );
        let esc = events(dir.path(), "escalation");
        assert_eq!(esc.len(), 1);
        assert_eq!(esc[0]["subject"], "Disk");
        // The operator is told once, with the escalation.
        let told = events(dir.path(), "operator_notice");
        assert_eq!(told.len(), 1);
        assert_eq!(told[0]["cause"], "flapping");
        assert_eq!(r.queue().list().unwrap().len(), 0);
    }

    #[test]
    fn chronic_flapping_over_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                cooldown_secs: 60,
                flapping_chronic: FlapWindow {
                    count: 5,
                    window_secs: 86400,
                },
                ..RouterConfig::default()
            },
        );
        for i in 0..4 {
            job_id(
                &r.route(&alert("Mem", &format!("f{i}")), at(i * 3600))
                    .unwrap(),
            );
            finish_all(&r);
        }
        let d = r.route(&alert("Mem", "f9"), at(4 * 3600)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Chronic,
                count: 5,
                escalate: true
            }
        );
        // The window is configurable: a shorter one forgets the early signals.
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                cooldown_secs: 60,
                flapping_chronic: FlapWindow {
                    count: 5,
                    window_secs: 3 * 3600,
                },
                ..RouterConfig::default()
            },
        );
        for i in 0..6 {
            job_id(
                &r.route(&alert("Mem", &format!("f{i}")), at(i * 3600))
                    .unwrap(),
            );
            finish_all(&r);
        }
    }

    #[test]
    fn maintenance_windows_suppress_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                maintenance: vec![
                    MaintenanceWindow {
                        name: Some("disk swap".into()),
                        start: Some("2026-11-22T09:00:00Z".into()),
                        end: Some("2026-11-22T11:00:00Z".into()),
                        daily: None,
                        subjects: vec!["Disk.*".into()],
                    },
                    MaintenanceWindow {
                        daily: Some("23:00-01:00".into()),
                        ..MaintenanceWindow::default()
                    },
                ],
                ..RouterConfig::default()
            },
        );
        let d = r.route(&alert("DiskFull", "f1"), at(0)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Maintenance {
                window: "disk swap".into()
            }
        );
        job_id(&r.route(&alert("CpuHigh", "f2"), at(0)).unwrap());
        job_id(&r.route(&alert("DiskFull", "f1"), at(2 * 3600)).unwrap());
        // The daily window wraps past midnight (T0 is 10:00).
        let d = r.route(&alert("Net", "f3"), at(13 * 3600 + 1800)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Maintenance {
                window: "daily 23:00-01:00".into()
            }
        );
        let d = r.route(&alert("Net", "f3"), at(14 * 3600 + 1800)).unwrap();
        assert!(matches!(d.decision, RoutingDecision::Maintenance { .. }));
        job_id(&r.route(&alert("Net", "f3"), at(15 * 3600 + 60)).unwrap());
    }

    #[test]
    fn bad_maintenance_windows_are_config_errors() {
        for w in [
            MaintenanceWindow {
                daily: Some("25:00-01:00".into()),
                ..Default::default()
            },
            MaintenanceWindow {
                start: Some("tomorrow".into()),
                end: Some("2026-11-22T11:00:00Z".into()),
                ..Default::default()
            },
            MaintenanceWindow::default(),
            MaintenanceWindow {
                daily: Some("01:00-02:00".into()),
                subjects: vec!["(".into()],
                ..Default::default()
            },
        ] {
            let err = Maintenance::compile(&[w]).unwrap_err().to_string();
            assert!(err.contains("router.maintenance[0]"), "{err}");
        }
    }

    #[test]
    fn resolved_alert_cancels_queued_work_for_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let a = job_id(&r.route(&alert("Disk", "fa"), at(0)).unwrap());
        let b = job_id(&r.route(&alert("Cpu", "fb"), at(1)).unwrap());
        let d = r.route(&resolved("Disk", "fa"), at(2)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Resolved {
                cancelled: vec![a.clone()],
                expired_actions: vec![],
                narrowed_actions: vec![]
            }
        );
        let left: Vec<String> = r
            .queue()
            .list()
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(left, vec![b.clone()]);
        let archived = r.queue().archived().unwrap();
        assert_eq!(archived[0].id, a);
        assert_eq!(archived[0].state, JobState::Cancelled);
        // A running job is not cancelled: it is already acting.
        r.queue().claim_next(at(3)).unwrap().unwrap();
        let d = r.route(&resolved("Cpu", "fb"), at(4)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Resolved {
                cancelled: vec![],
                expired_actions: vec![],
                narrowed_actions: vec![]
            }
        );
        assert_eq!(events(dir.path(), "job_cancelled").len(), 1);
        // The cancelled job never ran, so it holds no cooldown: the alert firing again runs.
        job_id(&r.route(&alert("Disk", "fa"), at(5)).unwrap());
    }

    #[test]
    fn a_resolve_cancels_only_the_work_of_its_own_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let a = job_id(&r.route(&alert("Disk", "fa"), at(0)).unwrap());
        // Another source's resolve naming the alert's fingerprint cancels nothing.
        let mut forged = resolved("Disk", "fa");
        forged.source = Source::Webhook;
        let d = r.route(&forged, at(1)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Resolved {
                cancelled: vec![],
                expired_actions: vec![],
                narrowed_actions: vec![]
            }
        );
        assert_eq!(r.queue().list().unwrap()[0].id, a);
        assert!(events(dir.path(), "job_cancelled").is_empty());
        // Alertmanager's own resolve does.
        let d = r.route(&resolved("Disk", "fa"), at(2)).unwrap();
        assert!(
            matches!(&d.decision, RoutingDecision::Resolved { cancelled, .. } if *cancelled == [a.clone()]),
            "{d:?}"
        );
    }

    #[test]
    fn no_route_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let d = r
            .route(&signal(Source::Webhook, "something", &[]), at(0))
            .unwrap();
        assert_eq!(d.decision, RoutingDecision::NoRoute);
        let ev = events(dir.path(), "routing");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["decision"], "no_route");
        assert_eq!(ev[0]["source"], "webhook");
        assert_eq!(ev[0]["subject"], "something");
        assert!(ev[0]["fingerprint"].is_string());
        assert!(ev[0]["reason"].as_str().unwrap().contains("no route"));
    }

    #[test]
    fn unreadable_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("router.json"), "{not json").unwrap();
        let err = Router::new(
            Queue::open(dir.path()).unwrap(),
            RouterConfig::default(),
            Routes::bundled().unwrap(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("router.json"), "{err}");
    }

    fn saved_state(dir: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("router.json")).unwrap()).unwrap()
    }

    fn keys(state: &serde_json::Value, window: &str) -> Vec<String> {
        state[window]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_storm_of_distinct_subjects_forgets_the_oldest_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                max_subjects: 32,
                ..RouterConfig::default()
            },
        );
        for i in 0..200 {
            r.route(&alert(&format!("A{i:03}"), &format!("fp{i:03}")), at(i))
                .unwrap();
        }
        let state = saved_state(dir.path());
        let (failures, firing) = (keys(&state, "failures"), keys(&state, "firing"));
        assert!(failures.len() <= 32 && firing.len() <= 32, "{state}");
        // The newest are remembered, the oldest forgotten.
        assert!(failures.contains(&"A199".to_string()), "{failures:?}");
        assert!(!failures.contains(&"A000".to_string()), "{failures:?}");
        assert!(firing.contains(&"fp199".to_string()), "{firing:?}");
        let forgot = events(dir.path(), "router_forgot");
        let total = |w: &str| -> u64 {
            forgot
                .iter()
                .filter(|e| e["window"] == w)
                .map(|e| e["forgotten"].as_u64().unwrap())
                .sum()
        };
        assert_eq!(total("failures") as usize + failures.len(), 200);
        assert_eq!(total("firing") as usize + firing.len(), 200);
        assert!(forgot.iter().all(|e| e["max_subjects"] == 32));
    }

    #[test]
    fn a_forgotten_cooldown_lets_a_repeat_run_and_a_remembered_one_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                max_subjects: 8,
                max_runs_per_hour: 1000,
                max_runs_per_hour_per_source: 1000,
                ..RouterConfig::default()
            },
        );
        for i in 0..20 {
            job_id(
                &r.route(&alert(&format!("S{i:02}"), &format!("a{i}")), at(i))
                    .unwrap(),
            );
        }
        finish_all(&r);
        // S00 was forgotten (the oldest of 20 in a window of 8): it runs again.
        job_id(&r.route(&alert("S00", "b0"), at(60)).unwrap());
        // S19 is remembered: still cooling down.
        let d = r.route(&alert("S19", "b19"), at(61)).unwrap();
        assert!(
            matches!(d.decision, RoutingDecision::Cooldown { .. }),
            "{d:?}"
        );
        let state = saved_state(dir.path());
        let cooling: usize = state["last_run"]
            .as_object()
            .unwrap()
            .values()
            .map(|g| g.as_object().unwrap().len())
            .sum();
        assert!(cooling <= 8, "{state}");
    }

    #[test]
    fn a_lower_cap_fits_the_saved_state_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        for i in 0..50 {
            r.route(&alert(&format!("A{i:02}"), &format!("fp{i}")), at(i))
                .unwrap();
        }
        assert_eq!(keys(&saved_state(dir.path()), "failures").len(), 50);
        drop(r);
        let mut r = router_with(
            dir.path(),
            RouterConfig {
                max_subjects: 10,
                ..RouterConfig::default()
            },
        );
        r.route(&alert("A49", "fp49"), at(60)).unwrap();
        let state = saved_state(dir.path());
        assert_eq!(keys(&state, "failures").len(), 10, "{state}");
        assert!(keys(&state, "failures").contains(&"A49".to_string()));
        let forgot = events(dir.path(), "router_forgot");
        assert!(
            forgot
                .iter()
                .any(|e| e["window"] == "failures" && e["forgotten"] == 40),
            "{forgot:?}"
        );
    }

    #[test]
    fn a_subject_failing_without_end_keeps_only_what_flapping_needs() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let mut last = None;
        for i in 0..300 {
            last = Some(r.route(&alert("Disk", &format!("f{i}")), at(i)).unwrap());
        }
        let state = saved_state(dir.path());
        // The highest flapping count (chronic, 5) is all a subject keeps.
        assert_eq!(state["failures"]["Disk"].as_array().unwrap().len(), 5);
        let last = last.unwrap();
        assert!(matches!(
            last.decision,
            RoutingDecision::Flapping {
                kind: FlapKind::Acute,
                ..
            }
        ));
        assert!(
            last.reason.contains("failed at least 5 times"),
            "{}",
            last.reason
        );
    }

    /// `router.json` is rewritten whole, so its size is the cost of a write: it must depend on
    /// the caps only. Hostile subjects and fingerprints (as long as a signal allows, full of
    /// characters JSON escapes), storm after storm, each filling every window past the cap.
    #[test]
    fn router_json_is_bounded_by_the_caps_not_by_history() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 8;
        let runs = 1000;
        let settings = RouterConfig {
            max_subjects: cap,
            max_runs_per_hour: runs,
            max_runs_per_hour_per_source: runs,
            ..RouterConfig::default()
        };
        let times = failure_times(&settings);
        let mut r = router_with(dir.path(), settings);
        let hostile = |n: usize, round: usize| {
            let mut s = alert(&format!("{n:05}{}", "\"\\\u{1}é".repeat(200)), "");
            s.fingerprint = format!("{n:05}-{round}-{}", "\u{2}".repeat(300));
            s.bounded()
        };
        let mut sizes = Vec::new();
        for storm in 0..3usize {
            // Each subject fails six times in a row: queued, cooling down, then flapping.
            for i in 0..3 * cap {
                for round in 0..6 {
                    let t = i64::try_from(storm * 10_000 + i * 6 + round).unwrap();
                    r.route(&hostile(storm * 1000 + i, round), at(t)).unwrap();
                }
            }
            finish_all(&r);
            sizes.push(
                std::fs::metadata(dir.path().join("router.json"))
                    .unwrap()
                    .len(),
            );
        }
        let state = saved_state(dir.path());
        for w in ["failures", "firing", "last_run", "escalated"] {
            assert!(!keys(&state, w).is_empty(), "{w} was not filled: {state}");
        }
        assert!(keys(&state, "escalated").len() <= cap);
        // Per entry: a key of at most KEY_MAX bytes (no escapes) with quotes, colon and comma,
        // times of up to 20 digits and a comma; `last_run` may need a goal key per subject.
        let entry = forget::KEY_MAX + 4;
        let time = 21;
        let bound = cap * (entry + 2 + times * time)
            + 2 * cap * (entry + time)
            + cap * (2 * entry + 2 + time)
            // `enqueued`: the last hour's jobs, bounded by the rate limits (here one storm's).
            + 3 * cap * time
            + 1024;
        for size in &sizes {
            assert!(*size as usize <= bound, "{sizes:?} > {bound}");
        }
        // The third storm costs what the second did, within a few bytes of changed times.
        let (second, third) = (sizes[1] as f64, sizes[2] as f64);
        assert!(third <= second * 1.05, "{sizes:?}");
    }

    #[test]
    fn a_truncated_signal_is_recorded_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let name = "N".repeat(10_000);
        // Unbounded as it arrives: the router bounds it itself.
        let d = r.route(&alert(&name, "fp"), at(0)).unwrap();
        job_id(&d);
        let ev = events(dir.path(), "routing");
        assert_eq!(ev[0]["subject"].as_str().unwrap().len(), 256);
        assert_eq!(
            ev[0]["truncated"],
            serde_json::json!(["subject", "labels.alertname"])
        );
        let job = &r.queue().list().unwrap()[0];
        assert_eq!(job.signal.truncated, ["subject", "labels.alertname"]);
        assert!(job.signal.labels["alertname"].len() <= 1024);
        // An ordinary signal's event has no `truncated`.
        r.route(&alert("Small", "fp2"), at(1)).unwrap();
        let ev = events(dir.path(), "routing");
        assert!(ev[1].get("truncated").is_none(), "{}", ev[1]);
    }

    #[test]
    fn storm_of_alerts_is_bounded_and_every_decision_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for i in 0..500i64 {
            let k = i % 5;
            let s = alert(&format!("Alert{k}"), &format!("storm-{k}"));
            let d = r.route(&s, at(i * 60 / 500)).unwrap();
            *counts.entry(d.decision.name()).or_default() += 1;
        }
        assert!(counts["enqueue"] <= 5, "{counts:?}");
        assert_eq!(counts.values().sum::<usize>(), 500);
        assert_eq!(r.queue().list().unwrap().len(), counts["enqueue"]);
        assert_eq!(events(dir.path(), "routing").len(), 500);
    }

    #[test]
    fn a_batch_decides_like_one_signal_at_a_time() {
        let signals: Vec<Signal> = (0..60)
            .map(|i| alert(&format!("Alert{}", i % 4), &format!("fp-{}", i % 7)))
            .chain([resolved("Alert1", "fp-1")])
            .collect();
        let one_by_one = {
            let dir = tempfile::tempdir().unwrap();
            let mut r = router(dir.path());
            let names: Vec<&str> = signals
                .iter()
                .map(|s| r.route(s, at(0)).unwrap().decision.name())
                .collect();
            (names, events(dir.path(), "routing").len())
        };
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let batch: Vec<&str> = r
            .route_all(&signals, at(0))
            .unwrap()
            .into_iter()
            .map(|d| d.unwrap().decision.name())
            .collect();
        assert_eq!(batch, one_by_one.0);
        assert_eq!(events(dir.path(), "routing").len(), one_by_one.1);
        assert_eq!(one_by_one.1, signals.len());
        // The state the batch left is on disk: a new router carries on from it.
        let again = router(dir.path())
            .route(&alert("Alert0", "fp-0"), at(1))
            .unwrap();
        assert_eq!(again.decision.name(), "merged");
    }

    #[test]
    fn a_resolved_alert_expires_the_pending_actions_its_runs_filed() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = router(dir.path());
        let store = crate::engine::approval::Store::open(dir.path()).unwrap();
        let file = |subject: &str, fp: &str, unit: &str| {
            store
                .file(crate::engine::approval::Proposal {
                    subject: subject.into(),
                    signal_fingerprint: Some(fp.into()),
                    argv: vec!["systemctl".into(), "restart".into(), unit.into()],
                    rationale: "down".into(),
                    checks: vec![],
                    state_fingerprint: "sf".into(),
                    goal: "incident".into(),
                    run_id: Some(format!("run-{subject}")),
                    rule: "systemctl restart UNIT".into(),
                    ttl: std::time::Duration::from_secs(3600),
                    executor: crate::engine::approval::Executor::Steward,
                })
                .unwrap()
                .action
                .id
        };
        let only_disk = file("Disk", "fa", "a.service");
        let shared = file("Disk", "fa", "nginx.service");
        assert_eq!(file("Cpu", "fb", "nginx.service"), shared);
        let d = r.route(&resolved("Disk", "fa"), at(2)).unwrap();
        assert_eq!(
            d.decision,
            RoutingDecision::Resolved {
                cancelled: vec![],
                expired_actions: vec![only_disk.clone()],
                narrowed_actions: vec![shared.clone()]
            }
        );
        assert!(
            d.reason
                .contains("1 pending action(s) expired, 1 still needed"),
            "{}",
            d.reason
        );
        assert_eq!(
            store.get(&only_disk).unwrap().state,
            crate::engine::approval::ActionState::Expired
        );
        assert_eq!(store.get(&shared).unwrap().subjects(), ["Cpu"]);
        let routing = events(dir.path(), "routing");
        assert_eq!(routing[0]["detail"]["expired_actions"][0], only_disk);
    }
}
