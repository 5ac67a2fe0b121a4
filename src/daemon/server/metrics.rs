//! The daemon's Prometheus metrics (`GET /metrics`): signals by decision, runs by outcome, run
//! time and cost, queue depth, policy denials, failed background writes; and what to alert on
//! (`triggers/steward-alerts.yml`): what waits for a human and for how long (`metrics/pending.rs`),
//! and when each goal last ran and last succeeded (`metrics/goal_times.rs`), both brought up to
//! date at each scrape.

mod goal_times;
mod pending;

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::base::ledger::Ledger;
use crate::base::signal::Source;
use crate::daemon::queue::{JobState, Worked};
use crate::engine::run::RunReport;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

pub(super) struct Metrics {
    pub(super) registry: Registry,
    pub(super) signals: Family<Labels, Counter>,
    pub(super) runs: Family<Labels, Counter>,
    pub(super) duration: Histogram,
    pub(super) cost: Counter<f64, AtomicU64>,
    pub(super) depth: Gauge,
    pub(super) denials: Counter,
    pub(super) flush_errors: Counter,
    alerting: Alerting,
}

/// The series alerts are written against, refreshed at scrape time.
struct Alerting {
    pending: Family<Labels, Gauge>,
    pending_oldest: Family<Labels, FloatGauge>,
    last_run: Family<Labels, Gauge>,
    last_success: Family<Labels, Gauge>,
    goal_times: Mutex<goal_times::GoalTimes>,
}

impl Alerting {
    fn register(registry: &mut Registry) -> Alerting {
        let a = Alerting {
            pending: Family::default(),
            pending_oldest: Family::default(),
            last_run: Family::default(),
            last_success: Family::default(),
            goal_times: Mutex::new(goal_times::GoalTimes::default()),
        };
        registry.register(
            "steward_pending",
            "Items waiting for a human, by kind (action, change, knowledge)",
            a.pending.clone(),
        );
        registry.register(
            "steward_pending_oldest_age_seconds",
            "Age of the oldest item waiting for a human, by kind (0 when none)",
            a.pending_oldest.clone(),
        );
        registry.register(
            "steward_goal_last_run_timestamp_seconds",
            "When a run of the goal last finished, whatever its outcome (Unix time)",
            a.last_run.clone(),
        );
        registry.register(
            "steward_goal_last_success_timestamp_seconds",
            "When a run of the goal last finished ok, fixed or no_action (Unix time)",
            a.last_success.clone(),
        );
        a
    }

    fn scrape(&self, ledger: &Ledger) {
        for w in pending::read(ledger, time::OffsetDateTime::now_utc()) {
            let kind = vec![("kind".to_string(), w.kind.to_string())];
            self.pending
                .get_or_create(&kind)
                .set(i64::try_from(w.count).unwrap_or(i64::MAX));
            self.pending_oldest.get_or_create(&kind).set(w.oldest_secs);
        }
        let Ok(mut times) = self.goal_times.lock() else {
            return;
        };
        times.refresh(ledger);
        for (family, map) in [
            (&self.last_run, &times.last_run),
            (&self.last_success, &times.last_success),
        ] {
            for (goal, t) in map {
                family
                    .get_or_create(&vec![("goal".to_string(), goal.clone())])
                    .set(*t);
            }
        }
    }
}

impl Metrics {
    pub(super) fn new() -> Metrics {
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
        let alerting = Alerting::register(&mut registry);
        Metrics {
            alerting,
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

    /// Brings the alerting series up to date from the stores and the runs (before encoding).
    pub(super) fn scrape(&self, ledger: &Ledger) {
        self.alerting.scrape(ledger);
    }

    pub(super) fn signal(&self, source: Source, decision: &str) {
        self.signals
            .get_or_create(&vec![
                ("source".into(), source.as_str().into()),
                ("decision".into(), decision.into()),
            ])
            .inc();
    }

    pub(super) fn worked(&self, w: &Worked) {
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
