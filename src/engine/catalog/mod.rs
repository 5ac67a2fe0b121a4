//! The run catalog: an index of finished runs (id, goal, subject, source, outcome, cost, times,
//! change set, number of actions) so that the web page's runs list and its per-day chart cost the
//! same with 10,000 recorded runs as with 10. Nothing here is a record of its own: every line is
//! derived from a run's `result.json`, and the whole index can be rebuilt from them at any time.
//!
//! On disk (`STATE/catalog/runs.jsonl`, [`file`]): a version line, then one line per finished run
//! appended when its result is written (by whichever process wrote it: the daemon, `steward run`,
//! crash recovery), and a `removed` line per run retention removed. In memory ([`Catalog`], kept
//! by `steward serve`): the entries by id plus running aggregates (per day, per filter value), kept
//! current by a `stat` of the file and a read of what was appended since: never a directory
//! listing per request.

mod days;
mod file;
mod memory;
mod query;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::ledger::LedgerError;
use crate::engine::run::RunResult;

pub use days::DayStats;
pub use file::{forget, rebuild, record};
pub use memory::Catalog;
pub use query::{Menus, Page, Query};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot lock the run catalog {path}: {source}")]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// One finished run, as the runs list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub goal: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub source: String,
    pub outcome: String,
    #[serde(default)]
    pub cost_usd: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
    #[serde(default)]
    pub duration_ms: u64,
    /// The change set the run filed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Pending actions the run filed.
    #[serde(default)]
    pub actions: usize,
}

impl Entry {
    pub fn of(r: &RunResult) -> Entry {
        Entry {
            id: r.id.clone(),
            goal: r.goal.clone(),
            subject: r.subject.clone(),
            source: r.source.clone(),
            outcome: r.outcome.as_str().to_string(),
            cost_usd: r.cost_usd,
            started: r.started,
            finished: r.finished,
            duration_ms: r.duration_ms,
            change: r.change.as_ref().map(|c| c.id.clone()),
            actions: r.actions_filed.len(),
        }
    }

    /// The UTC day the run started on: the day its cost counts against (as the daily budget's).
    pub fn day(&self) -> time::Date {
        self.started.to_offset(time::UtcOffset::UTC).date()
    }
}

#[cfg(test)]
mod tests;
