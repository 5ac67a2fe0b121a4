//! The daemon's Prometheus metrics (`GET /metrics`): signals by decision, runs by outcome, run
//! time and cost, queue depth, policy denials, failed background writes.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::base::signal::Source;
use crate::daemon::queue::{JobState, Worked};
use crate::engine::run::RunReport;

type Labels = Vec<(String, String)>;

pub(super) struct Metrics {
    pub(super) registry: Registry,
    pub(super) signals: Family<Labels, Counter>,
    pub(super) runs: Family<Labels, Counter>,
    pub(super) duration: Histogram,
    pub(super) cost: Counter<f64, AtomicU64>,
    pub(super) depth: Gauge,
    pub(super) denials: Counter,
    pub(super) flush_errors: Counter,
    pub(super) notify_delivered: Family<Labels, Counter>,
    pub(super) notify_failed: Family<Labels, Counter>,
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
        let notify_delivered = Family::<Labels, Counter>::default();
        let notify_failed = Family::<Labels, Counter>::default();
        registry.register(
            "steward_notifications_delivered",
            "Notifications delivered, by [[notify]] target",
            notify_delivered.clone(),
        );
        registry.register(
            "steward_notification_failures",
            "Notification attempts that failed, and messages given up or rate limited, by [[notify]] target",
            notify_failed.clone(),
        );
        Metrics {
            registry,
            notify_delivered,
            notify_failed,
            signals,
            runs,
            duration,
            cost,
            depth,
            denials,
            flush_errors,
        }
    }

    /// One message's turn in a notification pass: delivered, or not.
    pub(super) fn notified(&self, target: &str, ok: bool) {
        let family = if ok {
            &self.notify_delivered
        } else {
            &self.notify_failed
        };
        family
            .get_or_create(&vec![("target".into(), target.into())])
            .inc();
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
