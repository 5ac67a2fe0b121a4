//! Reading the run ledger: one summary per run, newest first, filtered the way an operator asks
//! (`steward runs list --goal G --outcome O --since 2h --limit 20`), and run ids resolved the
//! way an operator types them (`last`, a unique prefix).

use serde::Serialize;
use time::OffsetDateTime;

use super::{RunMeta, RunResult};
use crate::base::ledger::{Ledger, LedgerError, RunDir};
use crate::base::outcome::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Approval(#[from] crate::engine::approval::ApprovalError),
    #[error(transparent)]
    Changes(#[from] crate::engine::change::store::StoreError),
    #[error(transparent)]
    Incidents(#[from] crate::engine::incident::store::IncidentError),
    #[error("no run matches `{0}` (see `steward runs list`)")]
    Unknown(String),
    #[error("`{prefix}` matches {} runs: {}; give more of the id", matches.len(), matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("no runs recorded yet")]
    Empty,
    #[error("`{value}`: {message}")]
    BadTime { value: String, message: String },
    #[error("--outcome `{value}`: expected one of {}", OUTCOMES.join(", "))]
    BadOutcome { value: String },
}

impl HistoryError {
    /// Whether the operator asked for something that is not there or not valid (usage), rather
    /// than steward failing to read its own record.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            HistoryError::Ledger(_) | HistoryError::Approval(_) | HistoryError::Changes(_)
        )
    }
}

/// Every outcome a summary can show: a run's recorded outcome, or what its record says about a
/// run without one.
pub const OUTCOMES: &[&str] = &[
    "ok",
    "fixed",
    "no_action",
    "aborted",
    "failed",
    "escalated",
    "running",
    "crashed",
    "cancelled",
    "unknown",
    "unreadable",
];

/// One line per run for `steward runs list`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub goal: String,
    pub outcome: String,
    pub cost_usd: f64,
    pub duration_ms: u64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run started (from its record; absent when the record is unreadable).
    #[serde(with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    pub source: String,
    pub subject: String,
    /// Pending actions the run filed.
    pub actions_filed: Vec<String>,
}

/// Every run, newest first. A run whose record cannot be read is listed as `unreadable` with
/// the error, never skipped.
pub fn list_runs(ledger: &Ledger) -> Result<Vec<RunSummary>, HistoryError> {
    let mut out = Vec::new();
    for id in ledger.run_ids()? {
        let run = ledger.run(&id)?;
        out.push(summarize(&run));
    }
    // Ids start with the start time, so they order like the runs; a record's own time wins.
    out.sort_by(|a, b| (b.started, &b.id).cmp(&(a.started, &a.id)));
    Ok(out)
}

/// The summary of one run from its record.
pub fn summarize(run: &RunDir) -> RunSummary {
    if run.exists("result.json") {
        return match run.read_json::<RunResult>("result.json") {
            Ok(r) => RunSummary {
                id: run.id.clone(),
                goal: r.goal,
                outcome: r.outcome.to_string(),
                cost_usd: r.cost_usd,
                duration_ms: r.duration_ms,
                reason: r.reason,
                error: None,
                started: Some(r.started),
                source: r.source,
                subject: r.subject,
                actions_filed: r.actions_filed,
            },
            Err(e) => unreadable(run.id.clone(), e),
        };
    }
    match run.read_json::<RunMeta>("run.json") {
        Ok(m) => {
            let signal = run
                .read_json::<crate::base::signal::Signal>("signal.json")
                .ok();
            // Running only while its steward holds the run's lock; else it crashed.
            let (life, why) = crate::engine::liveness::unfinished(run, &m);
            RunSummary {
                id: run.id.clone(),
                outcome: life.as_str().to_string(),
                cost_usd: 0.0,
                duration_ms: 0,
                reason: why,
                goal: m.goal,
                error: None,
                started: Some(m.started),
                source: signal
                    .as_ref()
                    .map(|s| s.source.as_str().to_string())
                    .unwrap_or_default(),
                subject: signal.map(|s| s.subject).unwrap_or_default(),
                actions_filed: Vec::new(),
            }
        }
        Err(_) if being_created(run) => RunSummary {
            outcome: Outcome::Running.to_string(),
            reason: "starting: no record written yet".into(),
            error: None,
            ..unreadable(run.id.clone(), LedgerError::UnknownRun(run.id.clone()))
        },
        Err(e) => unreadable(run.id.clone(), e),
    }
}

/// A run directory is created empty and gets its `run.json` a moment later: in that moment it
/// is a run starting, not an unreadable record. An empty directory older than a minute is one.
fn being_created(run: &RunDir) -> bool {
    const STARTING: std::time::Duration = std::time::Duration::from_secs(60);
    !run.exists("run.json")
        && std::fs::metadata(&run.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < STARTING)
}

fn unreadable(id: String, e: LedgerError) -> RunSummary {
    RunSummary {
        id,
        goal: "?".into(),
        outcome: "unreadable".into(),
        cost_usd: 0.0,
        duration_ms: 0,
        reason: String::new(),
        error: Some(e.to_string()),
        started: None,
        source: String::new(),
        subject: String::new(),
        actions_filed: Vec::new(),
    }
}

/// What `steward runs list` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub goal: Option<String>,
    pub outcome: Option<String>,
    /// Runs that started at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many (the newest); 0 means all.
    pub limit: usize,
}

impl Filter {
    pub fn check(&self) -> Result<(), HistoryError> {
        match &self.outcome {
            Some(o) if !OUTCOMES.contains(&o.as_str()) => {
                Err(HistoryError::BadOutcome { value: o.clone() })
            }
            _ => Ok(()),
        }
    }

    /// The matching runs of a newest-first list, newest first, at most `limit`, and how many
    /// matched in all.
    pub fn apply(&self, runs: Vec<RunSummary>) -> (Vec<RunSummary>, usize) {
        let matching: Vec<RunSummary> = runs
            .into_iter()
            .filter(|r| self.goal.as_ref().is_none_or(|g| r.goal == *g))
            .filter(|r| self.outcome.as_ref().is_none_or(|o| r.outcome == *o))
            // An unreadable run has no time: it is shown rather than hidden by `--since`.
            .filter(|r| match (self.since, r.started) {
                (Some(since), Some(started)) => started >= since,
                _ => true,
            })
            .collect();
        let total = matching.len();
        let shown = if self.limit == 0 {
            matching
        } else {
            matching.into_iter().take(self.limit).collect()
        };
        (shown, total)
    }
}

/// The run an operator means: `last` (the newest), an exact id, or a unique prefix of one.
pub fn resolve_id(ledger: &Ledger, wanted: &str) -> Result<String, HistoryError> {
    let ids = ledger.run_ids()?;
    if wanted == "last" {
        return ids.last().cloned().ok_or(HistoryError::Empty);
    }
    if ids.iter().any(|id| id == wanted) {
        return Ok(wanted.to_string());
    }
    let matches: Vec<String> = ids
        .into_iter()
        .filter(|id| !wanted.is_empty() && id.starts_with(wanted))
        .collect();
    match matches.len() {
        0 => Err(HistoryError::Unknown(wanted.to_string())),
        1 => Ok(matches.into_iter().next().unwrap_or_default()),
        _ => Err(HistoryError::Ambiguous {
            prefix: wanted.to_string(),
            matches,
        }),
    }
}

/// An age such as `45s`, `90m`, `2h`, `7d` or `2w`.
pub fn parse_age(value: &str) -> Result<time::Duration, HistoryError> {
    let bad = |message: &str| HistoryError::BadTime {
        value: value.to_string(),
        message: message.to_string(),
    };
    let v = value.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| bad("needs a unit: s, m, h, d or w (e.g. 30d)"))?;
    let (num, unit) = v.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| bad("expected a number and a unit, e.g. 2h or 30d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad("unknown unit: use s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .map(time::Duration::seconds)
        .ok_or_else(|| bad("too large"))
}

/// `--since`: an age counted back from `now` (`2h`, `7d`) or an RFC 3339 time.
pub fn parse_since(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, HistoryError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(value.trim(), &Rfc3339) {
        return Ok(t);
    }
    match parse_age(value) {
        Ok(age) => Ok(now - age),
        Err(_) => Err(HistoryError::BadTime {
            value: value.to_string(),
            message: "expected an age (45s, 90m, 2h, 7d, 2w) or an RFC 3339 time \
                      (2025-01-31T12:00:00Z)"
                .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, goal: &str, outcome: &str, started: i64) -> RunSummary {
        RunSummary {
            id: id.into(),
            goal: goal.into(),
            outcome: outcome.into(),
            cost_usd: 0.0,
            duration_ms: 0,
            reason: String::new(),
            error: None,
            started: Some(OffsetDateTime::from_unix_timestamp(started).unwrap()),
            source: "manual".into(),
            subject: goal.into(),
            actions_filed: vec![],
        }
    }

    #[test]
    fn ages_and_times() {
        assert_eq!(parse_age("30d").unwrap(), time::Duration::days(30));
        assert_eq!(parse_age("2h").unwrap(), time::Duration::hours(2));
        assert_eq!(parse_age("90m").unwrap(), time::Duration::minutes(90));
        assert_eq!(parse_age("1w").unwrap(), time::Duration::days(7));
        for bad in ["", "30", "d", "3x", "-2h", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(
            parse_since("1h", now).unwrap().unix_timestamp(),
            1_000_000 - 3600
        );
        assert_eq!(
            parse_since("1970-01-01T00:00:10Z", now)
                .unwrap()
                .unix_timestamp(),
            10
        );
        let err = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn filters_keep_the_newest_first() {
        let runs = vec![
            summary("c", "health-check", "ok", 300),
            summary("b", "incident", "escalated", 200),
            summary("a", "health-check", "failed", 100),
        ];
        let f = Filter {
            goal: Some("health-check".into()),
            limit: 1,
            ..Filter::default()
        };
        let (shown, total) = f.apply(runs.clone());
        assert_eq!(total, 2);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].id, "c");
        let f = Filter {
            since: Some(OffsetDateTime::from_unix_timestamp(150).unwrap()),
            outcome: Some("escalated".into()),
            ..Filter::default()
        };
        let (shown, _) = f.apply(runs);
        assert_eq!(shown.iter().map(|r| &r.id).collect::<Vec<_>>(), ["b"]);
        assert!(
            Filter {
                outcome: Some("fixd".into()),
                ..Filter::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn a_run_being_created_is_running_not_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let run = ledger.create_run("g").unwrap();
        let s = summarize(&run);
        assert_eq!(s.outcome, "running");
        assert!(s.error.is_none());
    }

    #[test]
    fn ids_resolve_by_last_exact_and_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert!(matches!(
            resolve_id(&ledger, "last").unwrap_err(),
            HistoryError::Empty
        ));
        for id in [
            "20250101T000000Z-a-111111",
            "20250102T000000Z-b-222222",
            "20250102T000000Z-b-233333",
        ] {
            std::fs::create_dir(ledger.runs_dir().join(id)).unwrap();
        }
        assert_eq!(
            resolve_id(&ledger, "last").unwrap(),
            "20250102T000000Z-b-233333"
        );
        assert_eq!(
            resolve_id(&ledger, "20250101").unwrap(),
            "20250101T000000Z-a-111111"
        );
        assert_eq!(
            resolve_id(&ledger, "20250102T000000Z-b-2")
                .unwrap_err()
                .to_string(),
            "`20250102T000000Z-b-2` matches 2 runs: 20250102T000000Z-b-222222, \
             20250102T000000Z-b-233333; give more of the id"
        );
        assert!(matches!(
            resolve_id(&ledger, "2026").unwrap_err(),
            HistoryError::Unknown(_)
        ));
    }
}
