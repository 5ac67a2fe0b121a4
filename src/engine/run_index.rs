//! The recent finished runs, as the router needs them: what today's runs cost (the daily budget)
//! and which runs of a subject ended `failed` or `escalated` (flapping). Read from each run's
//! `result.json`, the single record of a run, so runs started by the CLI, an inline trigger or
//! the daemon all count, and nothing is kept twice.
//!
//! Bounded: only runs whose id (it starts with the run's start stamp, `YYYYMMDDTHHMMSSZ`) falls
//! in today (UTC) or within the horizon (the longest flapping window, plus an hour for runs that
//! started before it and ended inside it) are read, each result once. The run directory is
//! listed again only when it changed (its mtime: a run was created) or a second of the router's
//! clock passed; runs still going are looked at on every refresh (a stat each, and there is one
//! worker), so a result is counted by the next decision after it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::base::ledger::{Ledger, LedgerError};

/// Sources whose runs count as the subject's failures when they end `failed` or `escalated`.
/// Runs of failure signals (a unit failing, an alert firing) are not counted again: their signal
/// already was.
const COUNTED_SOURCES: &[&str] = &["timer", "manual"];
const FAILED_OUTCOMES: &[&str] = &["failed", "escalated"];

/// The fields of `result.json` the router needs; everything else may evolve freely, and records
/// that lack these (old or hand-written ones) still count their cost.
#[derive(Debug, Clone, Deserialize)]
struct Facts {
    cost_usd: f64,
    #[serde(default)]
    source: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    outcome: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    finished: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
pub struct RunIndex {
    /// Finished runs by id.
    runs: BTreeMap<String, Facts>,
    /// Runs in the horizon without a result yet.
    pending: BTreeSet<String>,
    /// The second of the last listing, and the run directory's mtime then.
    listed_at: Option<(i64, Option<SystemTime>)>,
    /// Finish times of counted failures per subject, rebuilt when `runs` changes.
    failures: BTreeMap<String, Vec<i64>>,
}

/// `YYYYMMDDTHHMMSSZ` of a time: run ids sort by it.
fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl RunIndex {
    /// Reads the results of runs that finished since the last refresh. `horizon_secs`: how far
    /// back failures may be asked for.
    pub fn refresh(
        &mut self,
        ledger: &Ledger,
        now: OffsetDateTime,
        horizon_secs: i64,
    ) -> Result<(), LedgerError> {
        let t = now.unix_timestamp();
        let today = now
            .to_offset(time::UtcOffset::UTC)
            .replace_time(time::Time::MIDNIGHT);
        let back = now - time::Duration::seconds(horizon_secs.saturating_add(3600));
        let oldest = stamp(today.min(back));
        let mtime = std::fs::metadata(ledger.runs_dir())
            .and_then(|m| m.modified())
            .ok();
        let mut changed = false;
        if self.listed_at != Some((t, mtime)) {
            let before = self.runs.len();
            self.runs.retain(|id, _| id.as_str() >= oldest.as_str());
            self.pending.clear();
            changed |= self.runs.len() != before;
            for id in ledger.run_ids()? {
                if id.as_str() >= oldest.as_str() && !self.runs.contains_key(&id) {
                    self.pending.insert(id);
                }
            }
            self.listed_at = Some((t, mtime));
        }
        let pending: Vec<String> = self.pending.iter().cloned().collect();
        for id in pending {
            // Removed since it was listed (retention): nothing to count.
            let Ok(run) = ledger.run(&id) else {
                self.pending.remove(&id);
                continue;
            };
            // A run still going has no result yet: it is looked at again next time.
            if !run.exists("result.json") {
                continue;
            }
            let facts: Facts = run.read_json("result.json")?;
            self.pending.remove(&id);
            self.runs.insert(id, facts);
            changed = true;
        }
        if changed {
            self.rebuild_failures();
        }
        Ok(())
    }

    fn rebuild_failures(&mut self) {
        self.failures.clear();
        for f in self.runs.values() {
            if COUNTED_SOURCES.contains(&f.source.as_str())
                && FAILED_OUTCOMES.contains(&f.outcome.as_str())
                && let Some(done) = f.finished
            {
                self.failures
                    .entry(f.subject.clone())
                    .or_default()
                    .push(done.unix_timestamp());
            }
        }
    }

    /// USD spent by runs started on `now`'s UTC day.
    pub fn spent_on(&self, now: OffsetDateTime) -> f64 {
        let day = stamp(now);
        let prefix = &day[..8];
        self.runs
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(_, f)| f.cost_usd)
            .sum()
    }

    /// Timer and manual runs of `subject` that ended failed or escalated after `since` (unix
    /// seconds).
    pub fn failures_since(&self, subject: &str, since: i64) -> usize {
        self.failures
            .get(subject)
            .map_or(0, |v| v.iter().filter(|&&t| t > since).count())
    }
}

/// USD spent by runs started on `now`'s UTC day: the `cost_usd` of their `result.json`. Run ids
/// begin with their start stamp (`YYYYMMDDT…`), so the day's runs are found by name. A run still
/// going has no result yet and costs nothing so far. An unreadable result is an error naming it.
pub fn spent_on_day(ledger: &Ledger, now: OffsetDateTime) -> Result<f64, LedgerError> {
    let mut runs = RunIndex::default();
    runs.refresh(ledger, now, 0)?;
    Ok(runs.spent_on(now))
}
