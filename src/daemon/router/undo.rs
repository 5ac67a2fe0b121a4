//! Taking a batch of decisions back when their record could not be written (a full disk): the
//! webhook answers 500 and the sender retries, so the retry must find things as they were. A
//! queued job is withdrawn (a job never exists without the record of why it was queued), a
//! merge uncounted, a cooldown and a rate-limit count released, an operator notice unmarked so
//! the retry tells the operator after all.
//!
//! Not taken back: what a resolved alert cancelled (each cancellation has its own
//! `job_cancelled` record) and a failure counted for flapping (the retry of a firing alert is
//! not counted again, so it is counted once either way).

use std::borrow::Cow;

use time::OffsetDateTime;

use super::forget::key;
use super::{RateScope, Routed, Router, RouterError, RoutingDecision};
use crate::base::signal::Signal;
use crate::daemon::queue::Session;

impl Router {
    /// Takes back every decision of a batch, last first.
    pub(super) fn undo(
        &mut self,
        queue: &mut Session<'_>,
        signals: &[Cow<'_, Signal>],
        decisions: &[Result<Routed, RouterError>],
        now: OffsetDateTime,
    ) {
        for (signal, decided) in signals.iter().zip(decisions).rev() {
            if let Ok(routed) = decided {
                self.undo_one(queue, signal, routed, now);
            }
        }
    }

    pub(super) fn undo_one(
        &mut self,
        queue: &mut Session<'_>,
        s: &Signal,
        routed: &Routed,
        now: OffsetDateTime,
    ) {
        let t = now.unix_timestamp();
        match &routed.decision {
            RoutingDecision::Enqueue { goal, job_id, .. } => {
                match queue.withdraw(job_id) {
                    Ok(true) => {}
                    Ok(false) => tracing::error!(job = %job_id,
                        "a job whose routing record could not be written was already taken"),
                    Err(e) => tracing::error!(job = %job_id,
                        "cannot withdraw a job whose routing record could not be written: {e}"),
                }
                self.release(goal, &s.subject, s.source.as_str(), t);
            }
            RoutingDecision::Merged { into } => queue.unmerge(into),
            RoutingDecision::Flapping { escalate: true, .. } => {
                let subject = key(&s.subject);
                if self.state.escalated.get(subject.as_ref()) == Some(&t) {
                    self.state.escalated.remove(subject.as_ref());
                }
            }
            RoutingDecision::RateLimited {
                notify: true,
                scope,
                ..
            } => {
                let key = match scope {
                    RateScope::Source => format!("source:{}", s.source.as_str()),
                    RateScope::Overall => "overall".to_string(),
                };
                if self.state.rate_told.get(&key) == Some(&t) {
                    self.state.rate_told.remove(&key);
                }
            }
            RoutingDecision::OverBudget { notify: true, .. } => self.state.budget_told = None,
            _ => return,
        }
        self.state_changed = true;
    }

    /// The enqueue at `t` of `goal` on `subject` from `source` holds no cooldown any more and no
    /// longer counts against the rate limits: its job will never run.
    pub(super) fn release(&mut self, goal: &str, subject: &str, source: &str, t: i64) -> bool {
        let mut released = false;
        let subject = key(subject);
        if let Some(g) = self.state.last_run.get_mut(key(goal).as_ref())
            && g.get(subject.as_ref()) == Some(&t)
        {
            g.remove(subject.as_ref());
            released = true;
        }
        if let Some(v) = self.state.enqueued.get_mut(source)
            && let Some(i) = v.iter().position(|&x| x == t)
        {
            v.remove(i);
            released = true;
        }
        self.state_changed |= released;
        released
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::base::ledger::LedgerError;
    use crate::base::signal::{Severity, Source};
    use crate::config::RouterConfig;
    use crate::daemon::queue::Queue;
    use crate::daemon::router::Routes;

    const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn alert(subject: &str, fp: &str) -> Signal {
        let labels: BTreeMap<String, String> = [("alertname", subject), ("severity", "critical")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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

    fn disk_full() -> LedgerError {
        LedgerError::Write {
            path: "events/2026-11-22.jsonl".into(),
            source: std::io::Error::from_raw_os_error(28),
        }
    }

    #[test]
    fn a_batch_whose_record_cannot_be_written_is_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path()).unwrap();
        let settings = RouterConfig {
            max_runs_per_hour_per_source: 1,
            ..RouterConfig::default()
        };
        let mut r = Router::new(queue.clone(), settings, Routes::bundled().unwrap()).unwrap();
        // A job that is there before, and one merge into it in the failing batch.
        let before = r.route(&alert("Old", "f0"), T0).unwrap();
        assert_eq!(before.decision.name(), "enqueue");
        let t1 = T0 + time::Duration::hours(2);
        let batch = [alert("Disk", "f1"), alert("Disk", "f1"), alert("Old", "f0")];
        let err = r
            .decide_all(&batch, t1, |_| Err::<(), _>(disk_full()))
            .unwrap_err();
        assert!(matches!(err, RouterError::Unrecorded(_)), "{err}");
        assert!(err.to_string().contains("nothing of the batch was queued"));
        // No job without its record, and the merge is not counted.
        let jobs = queue.list().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].merged, 0);
        let files = std::fs::read_dir(queue.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count();
        assert_eq!(files, 1);
        // The retry finds things as they were: queued, not held by a cooldown or the rate limit.
        let ledger = queue.ledger().clone();
        let retry = r
            .decide_all(&batch[..1], t1, |events| ledger.append(events))
            .unwrap();
        let routed = retry.decisions[0].as_ref().unwrap();
        assert_eq!(routed.decision.name(), "enqueue", "{}", routed.reason);
    }
}
