//! When each goal last ran and last succeeded, as Unix timestamps (the Prometheus idiom: an
//! alert computes `time() - steward_goal_last_success_timestamp_seconds`). Read from the runs'
//! `result.json`, so runs from the CLI and inline triggers count as well as the daemon's.
//!
//! Each result is read once: the first refresh (the first scrape after the daemon starts) reads
//! the results present, at most [`READS_PER_REFRESH`] of them, newest first; later refreshes list
//! the run directory's names and read only the results of runs not yet seen (a run still going
//! is looked at again next time). The listing itself is skipped while the run directory is
//! unchanged (its mtime), no run seen is still going, and less than [`RELIST_SECS`] passed.
//! Runs removed by retention are forgotten; the times they set are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use time::OffsetDateTime;

use crate::base::ledger::Ledger;

/// Results read by one refresh at most: a large history is read over several scrapes.
pub(crate) const READS_PER_REFRESH: usize = 2000;

/// The run directory is listed at least this often, whatever its mtime says.
pub(crate) const RELIST_SECS: u64 = 60;

/// Outcomes that count as the goal succeeding.
const SUCCESS: &[&str] = &["ok", "fixed", "no_action"];

#[derive(Debug, Deserialize)]
struct Facts {
    goal: String,
    outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    finished: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(crate) struct GoalTimes {
    /// Run ids whose result was read (or cannot be: unreadable ones are not retried).
    seen: BTreeSet<String>,
    pub(crate) last_run: BTreeMap<String, i64>,
    pub(crate) last_success: BTreeMap<String, i64>,
    /// The last listing: when, the run directory's mtime then, and whether it left work (a run
    /// still going, or results beyond the read cap).
    listed: Option<(Instant, Option<SystemTime>, bool)>,
}

impl GoalTimes {
    pub(crate) fn refresh(&mut self, ledger: &Ledger) {
        let mtime = std::fs::metadata(ledger.runs_dir())
            .and_then(|m| m.modified())
            .ok();
        if let Some((at, seen_mtime, false)) = self.listed
            && seen_mtime == mtime
            && mtime.is_some()
            && at.elapsed() < Duration::from_secs(RELIST_SECS)
        {
            return;
        }
        let left_work = self.read_new(ledger);
        self.listed = Some((Instant::now(), mtime, left_work));
    }

    /// Reads the results not read yet; whether any run is still going or left unread.
    fn read_new(&mut self, ledger: &Ledger) -> bool {
        let ids = match ledger.run_ids() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("metrics: cannot list the runs: {e}");
                return true;
            }
        };
        let present: BTreeSet<&String> = ids.iter().collect();
        self.seen.retain(|id| present.contains(id));
        let (mut reads, mut left_work) = (0, false);
        for id in ids.iter().rev() {
            if self.seen.contains(id) {
                continue;
            }
            if reads == READS_PER_REFRESH {
                left_work = true;
                break;
            }
            let Ok(run) = ledger.run(id) else { continue };
            if !run.exists("result.json") {
                left_work = true;
                continue;
            }
            reads += 1;
            self.seen.insert(id.clone());
            match run.read_json::<Facts>("result.json") {
                Ok(f) => self.record(&f.goal, &f.outcome, f.finished),
                Err(e) => tracing::warn!("metrics: run {id}: {e}"),
            }
        }
        left_work
    }

    fn record(&mut self, goal: &str, outcome: &str, finished: OffsetDateTime) {
        let t = finished.unix_timestamp();
        let newer = |m: &mut BTreeMap<String, i64>| {
            let e = m.entry(goal.to_string()).or_insert(t);
            *e = (*e).max(t);
        };
        newer(&mut self.last_run);
        if SUCCESS.contains(&outcome) {
            newer(&mut self.last_success);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(ledger: &Ledger, goal: &str, outcome: &str, at: i64) -> String {
        let run = ledger.create_run(goal).unwrap();
        let finished = OffsetDateTime::from_unix_timestamp(at).unwrap();
        let t = finished
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        run.write_json(
            "result.json",
            &serde_json::json!({"goal": goal, "outcome": outcome, "finished": t}),
        )
        .unwrap();
        run.id
    }

    #[test]
    fn last_run_and_success_per_goal_each_result_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        finish(&ledger, "a", "ok", 100);
        finish(&ledger, "a", "failed", 200);
        let mut times = GoalTimes::default();
        times.refresh(&ledger);
        assert_eq!(times.last_run["a"], 200);
        assert_eq!(times.last_success["a"], 100);
        // A running run (no result) is picked up once it has one.
        let run = ledger.create_run("b").unwrap();
        times.refresh(&ledger);
        assert!(!times.last_run.contains_key("b"));
        run.write_json(
            "result.json",
            &serde_json::json!({"goal": "b", "outcome": "no_action", "finished": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        times.refresh(&ledger);
        assert_eq!(times.last_success["b"], 1767225600);
        assert_eq!(times.seen.len(), 3);
    }
}
