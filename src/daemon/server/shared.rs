//! What the daemon's tasks share: the configuration, the router, the queue, the tokens, the
//! ledger, health and metrics, and the schedule; and what changes them (a reload, the budget
//! notice, orphaned jobs, events).

use std::sync::{Arc, Mutex, RwLock, mpsc as std_mpsc};

use time::OffsetDateTime;
use tokio::sync::Notify;

use super::auth::{self, Endpoint, Tokens};
use super::health;
use super::metrics::Metrics;
use super::routing::RouteRequest;
use super::{ServeError, ServeOptions};
use crate::base::ledger::Ledger;
use crate::config::Config;
use crate::daemon::queue::{Queue, QueueError};
use crate::daemon::router::{Router, RouterError};
use crate::defs::schedule::{self, ScheduleError};

pub(super) struct Shared {
    pub(super) opts: ServeOptions,
    pub(super) config: RwLock<Arc<Config>>,
    /// Used by the routing thread (and swapped by a reload): one batch of decisions at a time.
    pub(super) router: Mutex<Router>,
    /// The process's queue: the router queues into it, the worker claims from it.
    pub(super) queue: Queue,
    /// Signals to route, to the routing thread; `None` once the daemon stops routing.
    pub(super) routing: Mutex<Option<std_mpsc::Sender<RouteRequest>>>,
    /// Each webhook's token; an endpoint without one refuses everything (never open).
    pub(super) tokens: RwLock<Tokens>,
    pub(super) ledger: Ledger,
    /// Whether the event log can be written (`/healthz`).
    pub(super) health: health::Health,
    pub(super) wake: Notify,
    pub(super) metrics: Metrics,
    /// The scheduled goals; replaced on reload, and `rescheduled` tells the scheduler.
    pub(super) schedule: RwLock<Arc<Vec<schedule::Entry>>>,
    pub(super) rescheduled: Notify,
    /// The web page, when a UI token is configured (loaded at start; a reload keeps it).
    pub(super) ui: Option<Arc<super::ui::Ui>>,
    /// The run catalog the runs page reads (opened at start when the page is on, else on first
    /// use; see `engine::catalog`).
    pub(super) catalog: Mutex<Option<super::ui::runs::Cached>>,
}

/// The scheduled goals of a configuration: none when `[serve] scheduler = false`.
pub(super) fn scheduled(cfg: &Config) -> Result<Vec<schedule::Entry>, ScheduleError> {
    if cfg.serve.scheduler {
        schedule::entries(cfg)
    } else {
        Ok(Vec::new())
    }
}

impl Shared {
    pub(super) fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn schedule(&self) -> Arc<Vec<schedule::Entry>> {
        match self.schedule.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn token(&self, endpoint: Endpoint) -> Option<auth::TokenDigest> {
        match self.tokens.read() {
            Ok(t) => t.get(endpoint),
            Err(poisoned) => poisoned.into_inner().get(endpoint),
        }
    }

    pub(super) fn queue_depth(&self) -> Result<usize, QueueError> {
        self.queue.depth()
    }

    /// Writes the router's state if decisions changed it: serialised under the router's lock,
    /// written outside it, so routing waits for a copy, not for the disk.
    pub(super) fn save_router_state(&self) {
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

    /// SIGHUP: a new configuration, routes and token, or none of them.
    pub(super) fn reload(&self) {
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
    pub(super) fn budget_spent(&self, job: &str, spent: f64, budget: f64) {
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
    pub(super) fn requeue_orphans(&self) {
        match self.queue.requeue_orphans(OffsetDateTime::now_utc()) {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(jobs = %ids.join(","), "jobs a dead process left running are queued again");
                self.wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot recover the queue: {e}"),
        }
    }

    pub(super) fn event(&self, kind: &str, data: serde_json::Value) {
        if let Err(e) = self.ledger.event(kind, None, data) {
            tracing::error!("cannot record the {kind} event: {e}");
            self.health.failed(format_args!("the {kind} event: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
