//! Effectiveness memory: which action on which subject worked. Repeating an action that failed
//! its post-action checks twice is flapping, and the third attempt goes to a human instead.
//!
//! `STATE/effectiveness.jsonl`: one JSON object per line, appended and fsynced. An unreadable
//! line is an error naming the file and line: silently skipping it could hide the very failures
//! that should stop a third attempt.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::outcome::Outcome;

pub const FILE_NAME: &str = "effectiveness.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Ledger(#[from] crate::base::ledger::LedgerError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: unreadable record: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One attempt: `action` on `subject` and how it turned out. `outcome` is the judged outcome
/// of the run that took the action; `failed` means its post-action checks did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub subject: String,
    pub action: String,
    pub outcome: Outcome,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Attempt {
    /// Whether the action did not work: its post-action checks (or invariants) failed.
    pub fn ineffective(&self) -> bool {
        self.outcome == Outcome::Failed
    }
}

#[derive(Debug, Clone)]
pub struct Memory {
    path: PathBuf,
}

impl Memory {
    /// The memory of a state directory; nothing is touched until the first record.
    pub fn open(state_dir: &Path) -> Memory {
        Memory {
            path: state_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one attempt as one line with one write, then fsyncs: a crash may lose the line
    /// being written, never an earlier one.
    pub fn record(&self, attempt: &Attempt) -> Result<(), MemoryError> {
        Ok(crate::base::ledger::append_json_line(&self.path, attempt)?)
    }

    /// Records `(subject, action, outcome)` now.
    pub fn record_now(
        &self,
        subject: &str,
        action: &str,
        outcome: Outcome,
    ) -> Result<(), MemoryError> {
        self.record(&Attempt {
            subject: subject.to_string(),
            action: action.to_string(),
            outcome,
            at: OffsetDateTime::now_utc(),
        })
    }

    /// Every attempt, oldest first. A missing file is an empty memory.
    pub fn all(&self) -> Result<Vec<Attempt>, MemoryError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(MemoryError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|source| MemoryError::Read {
                path: self.path.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let a: Attempt = serde_json::from_str(&line).map_err(|e| MemoryError::Corrupt {
                path: self.path.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            out.push(a);
        }
        Ok(out)
    }

    /// True when the same action on the same subject failed its post-action checks at least
    /// twice within `window` before now: the next attempt should go to a human.
    pub fn should_escalate(
        &self,
        subject: &str,
        action: &str,
        window: Duration,
    ) -> Result<bool, MemoryError> {
        self.should_escalate_at(subject, action, window, OffsetDateTime::now_utc())
    }

    /// `should_escalate` with an explicit "now", for tests and replays.
    pub fn should_escalate_at(
        &self,
        subject: &str,
        action: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, MemoryError> {
        let window = time::Duration::try_from(window).unwrap_or(time::Duration::MAX);
        let since = now
            .checked_sub(window)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let failures = self
            .all()?
            .iter()
            .filter(|a| a.subject == subject && a.action == action)
            .filter(|a| a.at >= since && a.at <= now)
            .filter(|a| a.ineffective())
            .count();
        Ok(failures >= 2)
    }

    /// The last `n` attempts on `subject`, oldest first, for the prompt.
    pub fn recent(&self, subject: &str, n: usize) -> Result<Vec<Attempt>, MemoryError> {
        let mut mine: Vec<Attempt> = self
            .all()?
            .into_iter()
            .filter(|a| a.subject == subject)
            .collect();
        let skip = mine.len().saturating_sub(n);
        Ok(mine.split_off(skip))
    }
}

#[cfg(test)]
mod tests;
