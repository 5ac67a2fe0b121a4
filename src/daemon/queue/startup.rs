//! What a dead steward may have left in `STATE/queue/`, put right: temp files of a write it did
//! not finish (`.tmp*`), job files it left truncated (moved to `bad/`, and the start goes on),
//! and jobs it left `running` (back to `queued`, told by the job's claim lock, not its pid).
//!
//! [`Queue::recover`] runs at daemon start and before an inline trigger routes. It is safe at
//! any time: a claim lock that can be taken proves its claimer dead, and a claimer that lives is
//! never disturbed. The daemon's worker also runs [`Queue::requeue_orphans`] while idle, so a
//! job a dead process (an inline trigger) left `running` does not absorb every repeat of its
//! signal as `merged`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::claim::{self, Claimer};
use super::{Job, JobState, Queue, QueueError, Session};
use crate::base::ledger::LedgerError;

/// A job file that could not be read, moved aside.
#[derive(Debug, Clone, Serialize)]
pub struct Quarantined {
    /// The job id, from the file's name (`<seq>-<id>.json`), when it has one.
    pub job: Option<String>,
    pub file: PathBuf,
    pub moved_to: PathBuf,
    pub error: String,
}

/// What [`Queue::recover`] found and did.
#[derive(Debug, Default, Serialize)]
pub struct Recovered {
    /// Jobs left `running` by a process that is gone, queued again.
    pub requeued: Vec<String>,
    /// Job files that could not be read, moved to `bad/`.
    pub quarantined: Vec<Quarantined>,
    /// Temp files of writes that never finished, removed.
    pub tmp_removed: Vec<String>,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        self.requeued.is_empty() && self.quarantined.is_empty() && self.tmp_removed.is_empty()
    }
}

/// The job id in a job file's name: `<seq>-<id>.json`.
pub(crate) fn job_id_of(file: &Path) -> Option<String> {
    let stem = file.file_name()?.to_str()?.strip_suffix(".json")?;
    let (_, id) = stem.split_once('-')?;
    (!id.is_empty()).then(|| id.to_string())
}

impl Queue {
    /// Puts right what a dead process left (see the module docs), under the queue's lock.
    /// Every step is an event: `queue_tmp_removed`, `queue_corrupt_job`, `job_recovered`.
    pub fn recover(&self, now: OffsetDateTime) -> Result<Recovered, QueueError> {
        let mut q = self.session()?;
        let mut out = Recovered {
            tmp_removed: self.remove_tmp_files()?,
            ..Recovered::default()
        };
        if !out.tmp_removed.is_empty() {
            self.ledger.event(
                "queue_tmp_removed",
                None,
                serde_json::json!({"files": out.tmp_removed,
                    "reason": "temp files of job writes a steward did not finish (it died between write and rename)"}),
            )?;
        }
        // Each unreadable file is moved aside by the scan, which then fails; the next scan goes
        // on without it. Bounded: every round removes one file from the folder.
        loop {
            match q.refresh() {
                Ok(()) => break,
                Err(QueueError::Corrupt {
                    path,
                    moved_to,
                    message,
                }) => out.quarantined.push(Quarantined {
                    job: job_id_of(&path),
                    file: path,
                    moved_to,
                    error: message,
                }),
                Err(e) => return Err(e),
            }
        }
        out.requeued = self.requeue_orphans_in(&mut q, now)?;
        Ok(out)
    }

    /// Jobs `running` whose claim lock nobody holds go back to `queued` (see the module docs);
    /// returns their ids.
    pub fn requeue_orphans(&self, now: OffsetDateTime) -> Result<Vec<String>, QueueError> {
        let mut q = self.session()?;
        self.requeue_orphans_in(&mut q, now)
    }

    /// Removes `.tmp*` files (the temp files of [`crate::base::ledger::write_atomic`]) from `queue/`
    /// and `queue/archive/`. Called under the queue's lock, which every job write holds, so
    /// none of them is a write in progress.
    fn remove_tmp_files(&self) -> Result<Vec<String>, QueueError> {
        let mut removed = Vec::new();
        for dir in [self.dir.clone(), self.dir.join("archive")] {
            let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let is_tmp = name.to_str().is_some_and(|n| n.starts_with(".tmp"));
                if !is_tmp || !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|source| LedgerError::Write {
                    path: path.clone(),
                    source,
                })?;
                removed.push(path.display().to_string());
            }
        }
        Ok(removed)
    }

    /// Jobs `running` whose claim lock nobody holds go back to `queued`. A job this process
    /// claimed is left alone, and so is one whose claimer holds its lock, whatever its pid says.
    fn requeue_orphans_in(
        &self,
        q: &mut Session<'_>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, QueueError> {
        let running: Vec<Job> = q
            .jobs()?
            .filter(|j| j.state == JobState::Running)
            .cloned()
            .collect();
        let mut ids = Vec::new();
        for mut job in running {
            if q.cache.claims.contains_key(&job.id) {
                continue;
            }
            let claim = match claim::take(&self.dir, &job.id) {
                Ok(Claimer::Alive) => continue,
                Ok(Claimer::Gone(claim)) => claim,
                Err(source) => {
                    return Err(QueueError::Claim {
                        job: job.id,
                        source,
                    });
                }
            };
            let pid = job.claimed_by.take();
            job.state = JobState::Queued;
            job.updated = now;
            job.reason = Some(format!(
                "recovered: left running by pid {}, which no longer holds the job's claim lock \
                 (it died)",
                pid.map_or("?".into(), |p| p.to_string())
            ));
            // Saved before the claim goes: until then the file says `running`.
            let saved = q.save(&job);
            claim.release();
            saved?;
            self.ledger.event(
                "job_recovered",
                None,
                serde_json::json!({"job": job.id, "goal": job.goal, "pid": pid,
                    "attempts": job.attempts, "reason": job.reason}),
            )?;
            ids.push(job.id);
        }
        Ok(ids)
    }
}
