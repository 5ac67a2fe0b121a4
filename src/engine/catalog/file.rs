//! The catalog on disk: `STATE/catalog/runs.jsonl`, a version line then whole JSON lines (entries
//! and `removed` marks), appended through [`crate::base::ledger::append_line`] so that a full
//! disk never glues two lines together.
//!
//! Writers (appends, retention's marks, a rebuild) hold `STATE/catalog/lock` while they write, so
//! a rebuild (a listing of `runs/`, then an atomic replace) never loses a run that finished while
//! it listed: that run's append waits for the rebuild and lands in the new file. An append finds
//! no file (never built, or removed after a failed append) and adds nothing: the next reader
//! rebuilds, and the run's `result.json` is already on disk for it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

use super::{CatalogError, Entry};
use crate::base::ledger::{Ledger, LedgerError};
use crate::engine::run::RunResult;

/// The format of `runs.jsonl`; a file of another version is rebuilt.
pub(super) const VERSION: u64 = 1;
/// The key of the first line, whose value is the version.
pub(super) const HEADER_KEY: &str = "steward_catalog";

pub(super) fn path(root: &Path) -> PathBuf {
    root.join("catalog").join("runs.jsonl")
}

fn lock(root: &Path) -> Result<crate::base::flock::FileLock, CatalogError> {
    let dir = root.join("catalog");
    let path = dir.join("lock");
    std::fs::create_dir_all(&dir)
        .and_then(|()| crate::base::flock::lock_exclusive(&path))
        .map_err(|source| CatalogError::Lock { path, source })
}

/// One line of the file, parsed.
#[derive(Debug)]
pub(super) enum Line {
    Header(u64),
    Entry(Box<Entry>),
    Removed(String),
}

/// Parses one line; `Err` says why it is not one (the caller names the line and skips it).
pub(super) fn parse(text: &str) -> Result<Line, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(version) = v.get(HEADER_KEY) {
        return version
            .as_u64()
            .map(Line::Header)
            .ok_or_else(|| format!("`{HEADER_KEY}` is not a version number"));
    }
    if let Some(id) = v.get("removed") {
        return id
            .as_str()
            .map(|id| Line::Removed(id.to_string()))
            .ok_or_else(|| "`removed` is not a run id".to_string());
    }
    serde_json::from_value::<Entry>(v)
        .map(|e| Line::Entry(Box::new(e)))
        .map_err(|e| e.to_string())
}

fn header() -> String {
    serde_json::json!({ HEADER_KEY: VERSION }).to_string()
}

fn encode(entry: &Entry) -> Result<String, LedgerError> {
    serde_json::to_string(entry).map_err(|source| LedgerError::Encode {
        what: format!("the catalog entry of run {}", entry.id),
        source,
    })
}

/// Appends `text` (whole lines, no final newline) when the file exists; `false` when it does not.
fn append(root: &Path, text: &str) -> Result<bool, CatalogError> {
    let _lock = lock(root)?;
    let path = path(root);
    if !path.exists() {
        return Ok(false);
    }
    crate::base::ledger::append_line(&path, text)?;
    Ok(true)
}

/// A run's result was written: its entry is appended. Never fails the run (the result is its
/// record): a failed append is logged and the file removed, so that the next reader rebuilds it
/// rather than miss the run.
pub fn record(ledger: &Ledger, result: &RunResult) {
    let appended = encode(&Entry::of(result))
        .map_err(CatalogError::from)
        .and_then(|line| append(ledger.root(), &line));
    if let Err(e) = appended {
        discard(ledger, &format!("cannot add run {}: {e}", result.id));
    }
}

/// Retention removed these runs: each gets a `removed` line. Like [`record`], a failure removes
/// the file to be rebuilt instead of failing the pass (the runs are gone already).
pub fn forget(ledger: &Ledger, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let lines: Vec<String> = ids
        .iter()
        .map(|id| serde_json::json!({ "removed": id }).to_string())
        .collect();
    if let Err(e) = append(ledger.root(), &lines.join("\n")) {
        discard(
            ledger,
            &format!("cannot mark {} removed run(s): {e}", ids.len()),
        );
    }
}

/// The file missed a change: it is removed, and its next reader rebuilds it from the results.
fn discard(ledger: &Ledger, why: &str) {
    let path = path(ledger.root());
    tracing::warn!(
        "the run catalog {} is removed to be rebuilt: {why}",
        path.display()
    );
    if let Err(rm) = std::fs::remove_file(&path)
        && rm.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!("cannot remove the run catalog {}: {rm}", path.display());
    }
}

/// What a rebuild found.
#[derive(Debug, Default)]
pub struct Rebuilt {
    pub entries: Vec<Entry>,
    /// Results that could not be read, each named with why (left out of the catalog).
    pub skipped: Vec<String>,
}

/// Writes the catalog anew from every run's `result.json` (runs without one are still going or
/// were never finished: crash recovery writes theirs, and its append adds them).
pub fn rebuild(ledger: &Ledger) -> Result<Rebuilt, CatalogError> {
    let _lock = lock(ledger.root())?;
    let mut found = Rebuilt::default();
    for id in ledger.run_ids()? {
        let Ok(run) = ledger.run(&id) else { continue };
        if !run.exists("result.json") {
            continue;
        }
        match run.read_json::<Facts>("result.json") {
            Ok(facts) => found.entries.push(facts.entry(&id)),
            Err(e) => found.skipped.push(e.to_string()),
        }
    }
    let mut text = header();
    text.push('\n');
    for entry in &found.entries {
        text.push_str(&encode(entry)?);
        text.push('\n');
    }
    crate::base::ledger::write_atomic(&path(ledger.root()), text.as_bytes())?;
    Ok(found)
}

/// The fields of `result.json` the catalog needs; lenient, so older records still list.
#[derive(Debug, Deserialize)]
struct Facts {
    #[serde(default)]
    goal: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    cost_usd: f64,
    #[serde(with = "time::serde::rfc3339")]
    started: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    finished: Option<OffsetDateTime>,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    change: Option<ChangeId>,
    #[serde(default)]
    actions_filed: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ChangeId {
    id: String,
}

impl Facts {
    fn entry(self, id: &str) -> Entry {
        Entry {
            id: id.to_string(),
            goal: self.goal,
            subject: self.subject,
            source: self.source,
            outcome: self.outcome,
            cost_usd: self.cost_usd,
            started: self.started,
            finished: self.finished.unwrap_or(self.started),
            duration_ms: self.duration_ms,
            change: self.change.map(|c| c.id),
            actions: self.actions_filed.len(),
        }
    }
}
