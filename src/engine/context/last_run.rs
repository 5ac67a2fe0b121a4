//! What a subject's last run saw: its host snapshot and a digest of each probe's output, one
//! file per subject in `STATE/context/subjects/`, written atomically like every ledger file and
//! bounded in number (the least recently written go first). The next run on the same subject
//! compares with it: "what changed since this subject's last run".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::base::ledger::{self, LedgerError};
use crate::defs::probe::{ProbeResult, ProbeStatus};
use crate::engine::report::snapshot::Snapshot;

/// The file's format; a file of another format is not compared with.
pub const LAST_RUN_FORMAT: u32 = 1;
/// Subjects remembered at most; beyond this the least recently written file is removed.
pub const MAX_SUBJECTS: usize = 512;

/// How [`ProbeDigest`]s are computed; digests of another version are not compared (each probe
/// then reads as having no earlier run, never as changed). 2: elapsed-time phrases masked.
pub const DIGEST_VERSION: u32 = 2;

/// One probe's output as a run saw it: enough to tell "unchanged", not the output itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeDigest {
    pub status: ProbeStatus,
    /// SHA-256 of the text the prompt would fence (output and detail) with its elapsed-time
    /// phrases masked ([`super::elapsed`]), hex.
    pub sha256: String,
    pub bytes: usize,
}

impl ProbeDigest {
    /// The same status and output, elapsed time aside (`bytes` counts the real text, which
    /// differs when only a duration grew a digit).
    pub fn same_as(&self, other: &ProbeDigest) -> bool {
        self.status == other.status && self.sha256 == other.sha256
    }

    pub fn of(result: &ProbeResult) -> ProbeDigest {
        let text = crate::engine::prompt::probe_text(result);
        ProbeDigest {
            status: result.status,
            sha256: hex::encode(Sha256::digest(super::elapsed::masked(&text).as_bytes())),
            bytes: text.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub format: u32,
    pub subject: String,
    /// The run that saw these probes.
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The newest host snapshot taken for this subject, and the run that took it (an earlier
    /// one when this run could not take its own).
    #[serde(default)]
    pub snapshot: Option<Snapshot>,
    #[serde(default)]
    pub snapshot_run: Option<String>,
    #[serde(default)]
    pub probes: BTreeMap<String, ProbeDigest>,
    /// The [`DIGEST_VERSION`] of `probes` (absent: 1).
    #[serde(default = "first_digest_version")]
    pub digest_version: u32,
}

fn first_digest_version() -> u32 {
    1
}

pub struct LastRuns {
    dir: PathBuf,
}

impl LastRuns {
    pub fn new(state_dir: &Path) -> LastRuns {
        LastRuns {
            dir: state_dir.join("context").join("subjects"),
        }
    }

    /// The file of `subject`: a readable slug and a hash, so that any subject text is one safe
    /// file name and two subjects never share one.
    pub fn path(&self, subject: &str) -> PathBuf {
        let slug: String = subject
            .chars()
            .take(48)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = hex::encode(Sha256::digest(subject.as_bytes()));
        self.dir.join(format!("{slug}-{}.json", &hash[..16]))
    }

    /// The subject's last run; `Ok(None)` when it has none. A file that cannot be read or is of
    /// another format is an error the caller names (and the run compares with what else it has).
    pub fn load(&self, subject: &str) -> Result<Option<LastRun>, LedgerError> {
        let path = self.path(subject);
        if !path.exists() {
            return Ok(None);
        }
        let last: LastRun = ledger::read_json(&path)?;
        if last.format != LAST_RUN_FORMAT {
            return Err(LedgerError::Corrupt {
                path,
                message: format!(
                    "format {} (this steward reads {LAST_RUN_FORMAT})",
                    last.format
                ),
            });
        }
        Ok(Some(without_stale_digests(last)))
    }

    /// Writes the subject's last run (atomically) and removes the least recently written files
    /// beyond [`MAX_SUBJECTS`].
    pub fn save(&self, last: &LastRun) -> Result<(), LedgerError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| LedgerError::Write {
            path: self.dir.clone(),
            source,
        })?;
        ledger::write_json(&self.path(&last.subject), last)?;
        self.prune(MAX_SUBJECTS)
    }

    fn prune(&self, keep: usize) -> Result<(), LedgerError> {
        let read_err = |source| LedgerError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(read_err)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= keep {
            return Ok(());
        }
        files.sort();
        for (_, path) in &files[..files.len() - keep] {
            std::fs::remove_file(path).map_err(|source| LedgerError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Digests computed another way cannot say "unchanged" or "changed": they are dropped.
fn without_stale_digests(mut last: LastRun) -> LastRun {
    if last.digest_version != DIGEST_VERSION {
        last.probes.clear();
        last.digest_version = DIGEST_VERSION;
    }
    last
}

/// The record this run leaves for the subject's next run. Without a snapshot of its own, the
/// previous one is carried forward with the run that took it, so "since run X" stays true.
pub fn next(
    subject: &str,
    run_id: &str,
    snapshot: Option<&Snapshot>,
    previous: Option<&LastRun>,
    context: &[ProbeResult],
) -> LastRun {
    let (snapshot, snapshot_run) = match (snapshot, previous) {
        (Some(s), _) => (Some(s.clone()), Some(run_id.to_string())),
        (None, Some(p)) => (p.snapshot.clone(), p.snapshot_run.clone()),
        (None, None) => (None, None),
    };
    LastRun {
        format: LAST_RUN_FORMAT,
        subject: subject.to_string(),
        run_id: run_id.to_string(),
        at: OffsetDateTime::now_utc(),
        snapshot,
        snapshot_run,
        probes: context
            .iter()
            .map(|r| (r.name.clone(), ProbeDigest::of(r)))
            .collect(),
        digest_version: DIGEST_VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(name: &str, out: &str) -> ProbeResult {
        ProbeResult {
            name: name.into(),
            description: String::new(),
            status: ProbeStatus::Ok,
            output: serde_json::json!(out),
            truncated: false,
            detail: None,
            exit_code: Some(0),
            duration_ms: 1,
        }
    }

    #[test]
    fn saved_loaded_and_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = LastRuns::new(tmp.path());
        assert_eq!(runs.load("unit:nginx.service").unwrap(), None);
        let last = next("unit:nginx.service", "r1", None, None, &[probe("df", "x")]);
        runs.save(&last).unwrap();
        assert_eq!(runs.load("unit:nginx.service").unwrap(), Some(last));
        // Odd subjects are safe file names, and distinct.
        let a = runs.path("../../etc/passwd");
        let b = runs.path("__.._etc_passwd");
        assert_eq!(a.parent(), b.parent());
        assert_ne!(a, b);
        for i in 0..5 {
            runs.save(&next(&format!("s{i}"), "r", None, None, &[]))
                .unwrap();
        }
        runs.prune(3).unwrap();
        assert_eq!(std::fs::read_dir(&runs.dir).unwrap().count(), 3);
    }

    #[test]
    fn another_format_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = LastRuns::new(tmp.path());
        let mut last = next("s", "r1", None, None, &[]);
        last.format = 99;
        runs.save(&last).unwrap();
        let err = runs.load("s").unwrap_err().to_string();
        assert!(
            err.contains("format 99") && err.contains("subjects/s-"),
            "{err}"
        );
    }

    #[test]
    fn digests_of_an_older_version_are_not_compared() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = LastRuns::new(tmp.path());
        let mut last = next("s", "r1", None, None, &[probe("docker", "Up 2 seconds")]);
        // Only the clock moved: the same output.
        let later = next("s", "r2", None, None, &[probe("docker", "Up 19 minutes")]);
        assert!(last.probes["docker"].same_as(&later.probes["docker"]));
        last.digest_version = 1;
        runs.save(&last).unwrap();
        let loaded = runs.load("s").unwrap().unwrap();
        assert!(loaded.probes.is_empty());
        assert_eq!(loaded.digest_version, DIGEST_VERSION);
    }

    #[test]
    fn a_run_without_a_snapshot_carries_the_previous_forward() {
        let snap: Snapshot = serde_json::from_value(serde_json::json!({
            "format": 1, "taken": "2026-11-30T00:00:00Z", "host": "h"
        }))
        .unwrap();
        let first = next("s", "r1", Some(&snap), None, &[]);
        let second = next("s", "r2", None, Some(&first), &[]);
        assert_eq!(second.snapshot_run.as_deref(), Some("r1"));
        assert_eq!(second.snapshot, Some(snap));
        assert_eq!(second.run_id, "r2");
    }
}
