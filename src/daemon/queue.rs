//! The persistent work queue in `STATE/queue/`: one JSON file per job, so queued work survives a
//! restart of `steward serve`. The worker that turns jobs into runs is in [`worker`].
//!
//! Layout:
//! - `queue/<seq>-<id>.json`: active jobs (`queued` or `running`), `seq` zero-padded so that
//!   names sort in arrival order;
//! - `queue/archive/<seq>-<id>.json`: jobs that ended (`done`, `failed`, `cancelled`), kept for
//!   the record but out of the way of every scan;
//! - `queue/bad/`: job files that could not be read, moved aside (never silently dropped);
//! - `queue/.lock`: an `flock` held for each read-modify-write, and the generation number every
//!   change bumps. It is not the host lock: the worker holds that for a whole run, and the
//!   router must still be able to queue and merge meanwhile. Because every state change (claim
//!   included) happens under it, two processes can never claim the same job.
//! - `queue/claims/<id>.lock`: flocked by the process that claimed the job while it is
//!   `running`: the proof that its claimer lives (see [`claim`]).
//!
//! A job's file is written (and fsynced) when it is queued and at each change of state. The
//! process keeps the active jobs in memory between changes and re-reads the directory only when
//! another process changed it, so routing a signal does not parse every job file. The next
//! sequence number is one past the highest in any file name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::ledger::{self, Ledger, LedgerError};
use crate::base::signal::{Signal, Source};

mod claim;
mod startup;
mod worker;

pub(crate) use startup::job_id_of;
pub use startup::{Quarantined, Recovered};
pub use worker::{Worked, work_one, work_one_until};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot lock the queue ({path}): {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt job file {path} ({message}); moved aside to {moved_to}")]
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("no job `{0}` in the queue")]
    UnknownJob(String),
    #[error("cannot examine the claim of job {job}: {source}")]
    Claim { job: String, source: std::io::Error },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    /// steward could not carry the job out (unknown goal, missing variable, state dir error).
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// One unit of work: a routed signal waiting for (or being handled by) the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub seq: u64,
    pub id: String,
    pub goal: String,
    pub vars: BTreeMap<String, String>,
    pub signal: Signal,
    pub state: JobState,
    /// Later signals with the same fingerprint that merged into this job.
    pub merged: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub enqueued: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished: Option<OffsetDateTime>,
    /// The process that claimed it, for the record. Whether it still lives is told by the
    /// job's claim lock, never by this pid (which a dead claimer's successor may reuse).
    #[serde(default)]
    pub claimed_by: Option<u32>,
    /// Times the job was claimed (a crash or a busy host lock puts it back).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub cost_usd: f64,
}

impl Job {
    pub fn file_name(&self) -> String {
        format!("{:010}-{}.json", self.seq, self.id)
    }
}

/// How a job ended, for [`Queue::finish`].
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub state: JobState,
    pub run_id: Option<String>,
    pub outcome: Option<String>,
    pub reason: String,
    pub cost_usd: f64,
}

/// The queue directory and this process's copy of its active jobs (shared by clones).
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
    ledger: Ledger,
    cache: Arc<Mutex<Cache>>,
}

/// Orders jobs by arrival: the sequence number, then the id.
type JobKey = (u64, String);

/// The active jobs as this process last read or wrote them. Valid while the generation in the
/// lock file and the directory's mtime are the ones it was taken at: every change a queue makes
/// bumps the generation under the lock, so another process's change forces a re-read, and a
/// file added or removed by hand changes the mtime. Without it every routing decision re-read
/// and re-parsed every job file.
#[derive(Debug, Default)]
struct Cache {
    seen: Option<(u64, SystemTime)>,
    /// Active jobs in arrival order, and where to find them by id and by fingerprint.
    jobs: BTreeMap<JobKey, Job>,
    by_id: HashMap<String, JobKey>,
    by_fingerprint: HashMap<String, BTreeSet<JobKey>>,
    next_seq: u64,
    /// Merges per job id not yet in the job's file. A merge is recorded durably by its routing
    /// event; the job's `merged` count follows with the job's next write (claim, finish,
    /// requeue, cancel, [`Queue::write_back`]), so a storm of repeats costs no file rewrites.
    unsaved_merges: BTreeMap<String, u32>,
    /// `queue/.lock`, open between sessions.
    lock_file: Option<File>,
    /// The claims of the jobs this process runs, held until each leaves `running`.
    claims: HashMap<String, claim::Claim>,
}

impl Cache {
    fn replace_all(&mut self, jobs: Vec<Job>) {
        self.jobs.clear();
        self.by_id.clear();
        self.by_fingerprint.clear();
        for job in jobs {
            self.insert(job);
        }
    }

    /// Adds (or replaces) an active job.
    fn insert(&mut self, job: Job) {
        self.remove(&job.id);
        let key = (job.seq, job.id.clone());
        self.by_id.insert(job.id.clone(), key.clone());
        self.by_fingerprint
            .entry(job.signal.fingerprint.clone())
            .or_default()
            .insert(key.clone());
        self.jobs.insert(key, job);
    }

    fn remove(&mut self, id: &str) -> Option<Job> {
        let key = self.by_id.remove(id)?;
        let job = self.jobs.remove(&key)?;
        if let Some(keys) = self.by_fingerprint.get_mut(&job.signal.fingerprint) {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_fingerprint.remove(&job.signal.fingerprint);
            }
        }
        Some(job)
    }

    fn get(&self, id: &str) -> Option<&Job> {
        self.jobs.get(self.by_id.get(id)?)
    }

    /// The active jobs with this fingerprint, oldest first.
    fn with_fingerprint(&self, fingerprint: &str) -> impl Iterator<Item = &Job> {
        self.by_fingerprint
            .get(fingerprint)
            .into_iter()
            .flatten()
            .filter_map(|k| self.jobs.get(k))
    }
}

/// The queue held: the lock (an `flock` on `queue/.lock`, which also holds the generation) and
/// this process's cache, both released when dropped. The router holds one for a whole batch of
/// decisions, so the batch checks for other processes' changes once.
pub struct Session<'a> {
    queue: &'a Queue,
    cache: MutexGuard<'a, Cache>,
    /// Always `Some` until dropped, when the unlocked file goes back to the cache.
    flock: Option<nix::fcntl::Flock<File>>,
    /// The cache was checked (or written) under this lock and is current.
    fresh: bool,
}

/// The job a signal merged into.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub id: String,
    pub state: JobState,
    /// Signals merged into the job so far, this one included.
    pub merged: u32,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Unlocked but kept open: the next session locks it again without a path lookup.
        if let Some(flock) = self.flock.take()
            && let Ok(file) = flock.unlock()
        {
            self.cache.lock_file = Some(file);
        }
    }
}

impl Session<'_> {
    fn lock_file(&self) -> Result<&File, QueueError> {
        self.flock
            .as_deref()
            .ok_or_else(|| self.lock_err(std::io::Error::other("the queue lock was released")))
    }

    fn lock_path(&self) -> PathBuf {
        self.queue.dir.join(".lock")
    }

    fn lock_err(&self, source: std::io::Error) -> QueueError {
        QueueError::Lock {
            path: self.lock_path(),
            source,
        }
    }

    /// The generation stored in the lock file; an empty or foreign file counts as 0.
    fn generation(&self) -> Result<u64, QueueError> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        let n = self
            .lock_file()?
            .read_at(&mut buf, 0)
            .map_err(|e| self.lock_err(e))?;
        Ok(std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0))
    }

    fn stamp(&self) -> Result<(u64, SystemTime), QueueError> {
        let mtime = std::fs::metadata(&self.queue.dir)
            .and_then(|m| m.modified())
            .map_err(|source| LedgerError::Read {
                path: self.queue.dir.clone(),
                source,
            })?;
        Ok((self.generation()?, mtime))
    }

    /// Re-reads the directory unless the cache is current.
    fn refresh(&mut self) -> Result<(), QueueError> {
        if self.fresh {
            return Ok(());
        }
        let stamp = self.stamp()?;
        if self.cache.seen == Some(stamp) {
            self.fresh = true;
            return Ok(());
        }
        self.cache.seen = None;
        let (mut jobs, next_seq) = self.queue.scan()?;
        for job in &mut jobs {
            if let Some(n) = self.cache.unsaved_merges.get(&job.id) {
                job.merged += n;
            }
        }
        let active: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        // Merges into a job another process ended stay in the routing events only.
        let unsaved = std::mem::take(&mut self.cache.unsaved_merges)
            .into_iter()
            .filter(|(id, _)| active.contains(id.as_str()))
            .collect();
        self.cache.unsaved_merges = unsaved;
        self.cache.replace_all(jobs);
        self.cache.next_seq = next_seq;
        self.cache.seen = Some(stamp);
        self.fresh = true;
        Ok(())
    }

    /// The active jobs in arrival order.
    fn jobs(&mut self) -> Result<impl Iterator<Item = &Job>, QueueError> {
        self.refresh()?;
        Ok(self.cache.jobs.values())
    }

    fn current(&mut self, id: &str) -> Result<Job, QueueError> {
        self.refresh()?;
        self.cache
            .get(id)
            .cloned()
            .ok_or_else(|| QueueError::UnknownJob(id.to_string()))
    }

    /// Writes a job (current cache assumed), updates the cache, and bumps the generation.
    fn save(&mut self, job: &Job) -> Result<(), QueueError> {
        self.refresh()?;
        // Until the write and the new generation are both done, the cache is not trusted.
        self.cache.seen = None;
        self.fresh = false;
        self.queue.write(job)?;
        self.cache.unsaved_merges.remove(&job.id);
        if job.state.is_active() {
            self.cache.insert(job.clone());
        } else {
            self.cache.remove(&job.id);
        }
        // Released once the file says the job is no longer running, never before.
        if job.state != JobState::Running
            && let Some(claim) = self.cache.claims.remove(&job.id)
        {
            claim.release();
        }
        self.bump()
    }

    /// Bumps the generation: other processes re-read the directory.
    fn bump(&mut self) -> Result<(), QueueError> {
        use std::os::unix::fs::FileExt;
        let generation = self.generation()?.wrapping_add(1);
        self.lock_file()?
            .write_all_at(format!("{generation:020}\n").as_bytes(), 0)
            .map_err(|e| self.lock_err(e))?;
        self.cache.seen = Some(self.stamp()?);
        self.fresh = true;
        Ok(())
    }

    /// Takes back a job this session queued whose routing record could not be written: a job
    /// must never exist without the record of why it was queued. Only a job still queued (the
    /// session was held since it was queued, so no worker claimed it); its file is removed,
    /// not archived, since it never was work anybody was told of.
    pub fn withdraw(&mut self, id: &str) -> Result<bool, QueueError> {
        self.refresh()?;
        let Some(job) = self.cache.get(id).cloned() else {
            return Ok(false);
        };
        if job.state != JobState::Queued {
            return Ok(false);
        }
        self.cache.seen = None;
        self.fresh = false;
        let path = self.queue.dir.join(job.file_name());
        if let Err(source) = std::fs::remove_file(&path)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(LedgerError::Write { path, source }.into());
        }
        self.cache.remove(id);
        self.cache.unsaved_merges.remove(id);
        self.bump()?;
        Ok(true)
    }

    /// Takes back one merge into `id` whose routing record could not be written.
    pub fn unmerge(&mut self, id: &str) {
        let cache = &mut *self.cache;
        if let Some(key) = cache.by_id.get(id)
            && let Some(job) = cache.jobs.get_mut(key)
        {
            job.merged = job.merged.saturating_sub(1);
        }
        if let Some(n) = cache.unsaved_merges.get_mut(id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                cache.unsaved_merges.remove(id);
            }
        }
    }

    /// Queues a new job and returns it.
    pub fn push(
        &mut self,
        signal: Signal,
        goal: &str,
        vars: BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<Job, QueueError> {
        self.refresh()?;
        let seq = self.cache.next_seq;
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let job = Job {
            seq,
            id,
            goal: goal.to_string(),
            vars,
            signal,
            state: JobState::Queued,
            merged: 0,
            enqueued: now,
            updated: now,
            started: None,
            finished: None,
            claimed_by: None,
            attempts: 0,
            run_id: None,
            outcome: None,
            reason: None,
            cost_usd: 0.0,
        };
        self.save(&job)?;
        self.cache.next_seq = seq + 1;
        Ok(job)
    }

    /// Merges a signal into the active (queued or running) job with this fingerprint, if any.
    /// The count reaches the job's file with its next write.
    pub fn merge(
        &mut self,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Merge>, QueueError> {
        self.refresh()?;
        let cache = &mut *self.cache;
        let Some(key) = cache
            .by_fingerprint
            .get(fingerprint)
            .and_then(|keys| keys.first())
        else {
            return Ok(None);
        };
        let Some(job) = cache.jobs.get_mut(key) else {
            return Ok(None);
        };
        job.merged += 1;
        job.updated = now;
        *cache.unsaved_merges.entry(job.id.clone()).or_default() += 1;
        Ok(Some(Merge {
            id: job.id.clone(),
            state: job.state,
            merged: job.merged,
        }))
    }

    /// Cancels every queued (not yet running) job with this fingerprint whose signal came from
    /// `source`; returns them as cancelled. A source resolves only its own work: a webhook never
    /// cancels an Alertmanager alert's job. A running job is left alone: its run is already
    /// acting and has its own record.
    pub fn cancel_fingerprint(
        &mut self,
        fingerprint: &str,
        source: Source,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Job>, QueueError> {
        self.refresh()?;
        let matching: Vec<Job> = self
            .cache
            .with_fingerprint(fingerprint)
            .filter(|j| j.state == JobState::Queued && j.signal.source == source)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for job in matching {
            out.push(self.cancel_job(job, reason, now)?);
        }
        Ok(out)
    }

    fn cancel_job(
        &mut self,
        mut job: Job,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Job, QueueError> {
        job.state = JobState::Cancelled;
        job.updated = now;
        job.finished = Some(now);
        job.claimed_by = None;
        job.reason = Some(reason.to_string());
        self.save(&job)?;
        self.queue.ledger.event(
            "job_cancelled",
            None,
            serde_json::json!({"job": job.id, "goal": job.goal,
                "fingerprint": job.signal.fingerprint, "reason": reason}),
        )?;
        Ok(job)
    }
}

impl Queue {
    /// Opens (creating) `STATE/queue/`. Call [`Queue::recover`] once at daemon start.
    pub fn open(state_dir: &Path) -> Result<Queue, QueueError> {
        let ledger = Ledger::open(state_dir)?;
        let dir = state_dir.join("queue");
        for d in [dir.clone(), dir.join("archive"), dir.join("bad")] {
            std::fs::create_dir_all(&d).map_err(|source| LedgerError::Write {
                path: d.clone(),
                source,
            })?;
        }
        Ok(Queue {
            dir,
            ledger,
            cache: Arc::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Holds the queue (see [`Session`]).
    pub fn session(&self) -> Result<Session<'_>, QueueError> {
        // This process first (the cache), then other processes (the flock), always in that order.
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| {
            let mut c = poisoned.into_inner();
            c.seen = None;
            c
        });
        let path = self.dir.join(".lock");
        let err = |source| QueueError::Lock {
            path: path.clone(),
            source,
        };
        let file = match cache.lock_file.take() {
            Some(file) => file,
            None => OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(err)?,
        };
        let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| err(std::io::Error::from(e)))?;
        Ok(Session {
            queue: self,
            cache,
            flock: Some(flock),
            fresh: false,
        })
    }

    /// Active jobs and the next sequence number (one past the highest in use, archive
    /// and quarantine included). A file that cannot be read is moved to `bad/`, recorded, and
    /// returned as an error naming it: the caller sees it, and the next scan goes on without it.
    fn scan(&self) -> Result<(Vec<Job>, u64), QueueError> {
        let mut max_seq = 0;
        let mut paths = Vec::new();
        for dir in [
            self.dir.clone(),
            self.dir.join("archive"),
            self.dir.join("bad"),
        ] {
            let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
                path: dir.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| LedgerError::Read {
                    path: dir.clone(),
                    source,
                })?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let Some(stem) = name.strip_suffix(".json") else {
                    continue;
                };
                // `bad/` names carry a timestamp first: `<time>-<seq>-<id>.json`.
                let seq = stem.split('-').rev().nth(1).and_then(|s| s.parse().ok());
                max_seq = max_seq.max(seq.unwrap_or(0));
                if dir == self.dir && entry.file_type().is_ok_and(|t| t.is_file()) {
                    paths.push(entry.path());
                }
            }
        }
        paths.sort();
        let mut jobs = Vec::with_capacity(paths.len());
        for path in paths {
            match ledger::read_json::<Job>(&path) {
                Ok(job) => {
                    max_seq = max_seq.max(job.seq);
                    jobs.push(job);
                }
                Err(LedgerError::Corrupt { message, .. }) => {
                    return Err(self.move_aside(&path, message)?);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((jobs, max_seq + 1))
    }

    fn move_aside(&self, path: &Path, message: String) -> Result<QueueError, QueueError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job.json".into());
        let moved_to = self.dir.join("bad").join(format!(
            "{}-{name}",
            OffsetDateTime::now_utc().unix_timestamp()
        ));
        std::fs::rename(path, &moved_to).map_err(|source| LedgerError::Write {
            path: moved_to.clone(),
            source,
        })?;
        self.ledger.event(
            "queue_corrupt_job",
            None,
            serde_json::json!({
                "file": path.display().to_string(),
                "moved_to": moved_to.display().to_string(),
                "error": message,
            }),
        )?;
        Ok(QueueError::Corrupt {
            path: path.to_path_buf(),
            moved_to,
            message,
        })
    }

    fn write(&self, job: &Job) -> Result<(), QueueError> {
        let path = self.dir.join(job.file_name());
        if job.state.is_active() {
            ledger::write_json(&path, job)?;
        } else {
            // Ended jobs go to the archive: write there first, then drop the active file, so a
            // crash in between leaves a duplicate (harmless, ended) rather than a lost record.
            ledger::write_json(&self.dir.join("archive").join(job.file_name()), job)?;
            if let Err(source) = std::fs::remove_file(&path)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(LedgerError::Write { path, source }.into());
            }
        }
        Ok(())
    }

    /// Queues a new job and returns it.
    pub fn push(
        &self,
        signal: Signal,
        goal: &str,
        vars: BTreeMap<String, String>,
        now: OffsetDateTime,
    ) -> Result<Job, QueueError> {
        self.session()?.push(signal, goal, vars, now)
    }

    /// See [`Session::merge`].
    pub fn merge(
        &self,
        fingerprint: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Merge>, QueueError> {
        self.session()?.merge(fingerprint, now)
    }

    /// See [`Session::cancel_fingerprint`].
    pub fn cancel_fingerprint(
        &self,
        fingerprint: &str,
        source: Source,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Job>, QueueError> {
        self.session()?
            .cancel_fingerprint(fingerprint, source, reason, now)
    }

    /// Writes the merge counts not yet in their job files (the daemon does at shutdown).
    pub fn write_back(&self) -> Result<(), QueueError> {
        let mut q = self.session()?;
        q.refresh()?;
        let ids: Vec<String> = q.cache.unsaved_merges.keys().cloned().collect();
        for id in ids {
            let job = q.current(&id)?;
            q.save(&job)?;
        }
        Ok(())
    }

    /// Cancels one active job (queued, or claimed but not started by the worker).
    pub fn cancel(&self, job: &Job, reason: &str, now: OffsetDateTime) -> Result<Job, QueueError> {
        let mut q = self.session()?;
        let current = q.current(&job.id)?;
        q.cancel_job(current, reason, now)
    }

    /// Marks the oldest queued job running and returns it.
    pub fn claim_next(&self, now: OffsetDateTime) -> Result<Option<Job>, QueueError> {
        self.claim_next_where(now, |_| true)
    }

    /// Like [`Queue::claim_next`], skipping jobs `eligible` rejects (they stay queued).
    pub fn claim_next_where(
        &self,
        now: OffsetDateTime,
        eligible: impl Fn(&Job) -> bool,
    ) -> Result<Option<Job>, QueueError> {
        let mut q = self.session()?;
        let candidates: Vec<Job> = q
            .jobs()?
            .filter(|j| j.state == JobState::Queued && eligible(j))
            .cloned()
            .collect();
        for mut job in candidates {
            // The claim lock first: held from before the file says `running`.
            let claim = match claim::take(&self.dir, &job.id) {
                Ok(claim::Claimer::Gone(claim)) => claim,
                // Held for a queued job: a claimer that has not let go yet. Not this one.
                Ok(claim::Claimer::Alive) => continue,
                Err(source) => {
                    return Err(QueueError::Claim {
                        job: job.id,
                        source,
                    });
                }
            };
            job.state = JobState::Running;
            job.started = Some(now);
            job.updated = now;
            job.claimed_by = Some(std::process::id());
            job.attempts += 1;
            q.cache.claims.insert(job.id.clone(), claim);
            if let Err(e) = q.save(&job) {
                if let Some(claim) = q.cache.claims.remove(&job.id) {
                    claim.release();
                }
                return Err(e);
            }
            return Ok(Some(job));
        }
        Ok(None)
    }

    /// Puts a claimed job back in the queue (the host lock was busy for too long).
    pub fn requeue(&self, job: &Job, reason: &str, now: OffsetDateTime) -> Result<(), QueueError> {
        let mut q = self.session()?;
        let mut current = q.current(&job.id)?;
        current.state = JobState::Queued;
        current.claimed_by = None;
        current.updated = now;
        current.reason = Some(reason.to_string());
        q.save(&current)?;
        self.ledger.event(
            "job_requeued",
            None,
            serde_json::json!({"job": job.id, "reason": reason}),
        )?;
        Ok(())
    }

    /// Puts a claimed job back that could not be started, as well as the disk allows: requeued,
    /// or, when even that cannot be written, its claim let go, so that the next recovery (the
    /// daemon's, while idle) requeues it.
    pub fn put_back(&self, job: &Job, reason: &str) {
        if let Err(e) = self.requeue(job, reason, OffsetDateTime::now_utc()) {
            tracing::error!(job = %job.id, "cannot requeue the job: {e}; the next recovery will");
        }
        let mut q = match self.session() {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(job = %job.id, "cannot let go of the job's claim: {e}");
                return;
            }
        };
        if let Some(claim) = q.cache.claims.remove(&job.id) {
            claim.release();
        }
    }

    /// Records how a job ended and moves it to the archive.
    pub fn finish(
        &self,
        job: &Job,
        outcome: JobOutcome,
        now: OffsetDateTime,
    ) -> Result<Job, QueueError> {
        let mut q = self.session()?;
        // The current copy: signals may have merged into it while it ran.
        let mut current = q.current(&job.id)?;
        current.state = outcome.state;
        current.finished = Some(now);
        current.updated = now;
        current.run_id = outcome.run_id;
        current.outcome = outcome.outcome;
        current.reason = Some(outcome.reason);
        current.cost_usd = outcome.cost_usd;
        q.save(&current)?;
        self.ledger.event(
            "job_finished",
            current.run_id.as_deref(),
            serde_json::json!({
                "job": current.id, "goal": current.goal, "state": current.state,
                "outcome": current.outcome, "reason": current.reason,
                "cost_usd": current.cost_usd, "merged": current.merged,
                "fingerprint": current.signal.fingerprint,
            }),
        )?;
        Ok(current)
    }

    /// Active jobs (queued and running), oldest first.
    pub fn list(&self) -> Result<Vec<Job>, QueueError> {
        Ok(self.session()?.jobs()?.cloned().collect())
    }

    /// How many jobs are active (queued and running).
    pub fn depth(&self) -> Result<usize, QueueError> {
        let mut q = self.session()?;
        q.refresh()?;
        Ok(q.cache.jobs.len())
    }

    /// Ended jobs from the archive, oldest first.
    pub fn archived(&self) -> Result<Vec<Job>, QueueError> {
        let dir = self.dir.join("archive");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| LedgerError::Read {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| ledger::read_json(p).map_err(QueueError::from))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::signal::{Severity, Source};
    use time::macros::datetime;

    pub(super) const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    pub(super) fn sig(fp: &str) -> Signal {
        Signal {
            source: Source::Alertmanager,
            subject: format!("subject-{fp}"),
            fingerprint: fp.to_string(),
            severity: Severity::Warning,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            payload: serde_json::Value::Null,
            received: T0,
            truncated: Vec::new(),
        }
    }

    pub(super) fn events(dir: &Path, kind: &str) -> usize {
        std::fs::read_dir(dir.join("events"))
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .flat_map(|t| {
                t.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .filter(|v| v["kind"] == kind)
            .count()
    }

    fn done() -> JobOutcome {
        JobOutcome {
            state: JobState::Done,
            run_id: Some("r1".into()),
            outcome: Some("fixed".into()),
            reason: "ok".into(),
            cost_usd: 0.25,
        }
    }

    #[test]
    fn jobs_survive_a_restart_and_a_crashed_running_job_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let a = q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert("unit".to_string(), "x.service".to_string());
        let b = q.push(sig("b"), "on-failure", vars.clone(), T0).unwrap();
        assert!(a.file_name() < b.file_name());
        let claimed = q.claim_next(T0).unwrap().unwrap();
        assert_eq!(claimed.id, a.id);
        drop(q);

        // "Restart": a new Queue on the same directory sees both, one still marked running.
        let q = Queue::open(dir.path()).unwrap();
        let jobs = q.list().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].state, JobState::Running);
        assert_eq!(jobs[1].state, JobState::Queued);
        assert_eq!(jobs[1].vars, vars);
        assert_eq!(q.recover(T0).unwrap().requeued, vec![a.id.clone()]);
        assert_eq!(events(dir.path(), "job_recovered"), 1);
        let jobs = q.list().unwrap();
        assert!(jobs.iter().all(|j| j.state == JobState::Queued));
        // Order is kept: the recovered job is claimed first again.
        let again = q.claim_next(T0).unwrap().unwrap();
        assert_eq!(again.id, a.id);
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn a_live_claimer_is_told_by_its_lock_not_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let mut job = q.claim_next(T0).unwrap().unwrap();
        // A pid that cannot exist: the claimer still holds the job's claim lock.
        job.claimed_by = Some(4_194_304 + 17);
        ledger::write_json(&q.dir().join(job.file_name()), &job).unwrap();
        // Another process (a separate Queue opens its own lock files) looks at it.
        let other = Queue::open(dir.path()).unwrap();
        assert!(other.recover(T0).unwrap().is_empty());
        // The claimer itself leaves its own job alone.
        assert!(q.recover(T0).unwrap().is_empty());
        // The claimer dies: a live pid (1 always exists) does not keep the job.
        job.claimed_by = Some(1);
        ledger::write_json(&q.dir().join(job.file_name()), &job).unwrap();
        drop(q);
        let recovered = other.recover(T0).unwrap();
        assert_eq!(recovered.requeued, vec![job.id.clone()]);
        let again = other.claim_next(T0).unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (job.id.as_str(), 2));
        // Its claim file goes when the job leaves `running`.
        other.finish(&again, done(), T0).unwrap();
        assert!(
            !other
                .dir()
                .join("claims")
                .join(format!("{}.lock", job.id))
                .exists()
        );
    }

    #[test]
    fn recovery_moves_truncated_job_files_aside_and_removes_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let good = q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let cut = q.push(sig("b"), "incident", BTreeMap::new(), T0).unwrap();
        let path = q.dir().join(cut.file_name());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        std::fs::write(q.dir().join("0000000007-empty.json"), "").unwrap();
        std::fs::write(q.dir().join(".tmpAbC123"), "{\"seq\": 1").unwrap();
        std::fs::write(q.dir().join("archive").join(".tmpXyZ789"), "").unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let r = q.recover(T0).unwrap();
        let mut lost: Vec<_> = r.quarantined.iter().filter_map(|b| b.job.clone()).collect();
        lost.sort();
        let mut want = vec![cut.id.clone(), "empty".to_string()];
        want.sort();
        assert_eq!(lost, want);
        assert_eq!(r.tmp_removed.len(), 2, "{:?}", r.tmp_removed);
        assert!(!q.dir().join(".tmpAbC123").exists());
        assert_eq!(events(dir.path(), "queue_corrupt_job"), 2);
        assert_eq!(events(dir.path(), "queue_tmp_removed"), 1);
        // The rest of the queue is there, and the lock file was not taken for a temp file.
        assert_eq!(q.list().unwrap().len(), 1);
        assert_eq!(q.list().unwrap()[0].id, good.id);
        assert!(q.dir().join(".lock").exists());
    }

    #[test]
    fn finish_archives_and_keeps_merges() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let job = q.claim_next(T0).unwrap().unwrap();
        let merged = q.merge("a", T0).unwrap().unwrap();
        assert_eq!(merged.merged, 1);
        assert!(q.merge("zzz", T0).unwrap().is_none());
        let fin = q.finish(&job, done(), T0).unwrap();
        assert_eq!(fin.merged, 1);
        assert_eq!(fin.state, JobState::Done);
        assert!(q.list().unwrap().is_empty());
        let arch = q.archived().unwrap();
        assert_eq!(arch.len(), 1);
        assert_eq!(arch[0].cost_usd, 0.25);
        // Ended work no longer absorbs signals.
        assert!(q.merge("a", T0).unwrap().is_none());
        assert!(q.claim_next(T0).unwrap().is_none());
    }

    #[test]
    fn two_claimers_never_take_the_same_job() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        for i in 0..40 {
            q.push(sig(&format!("f{i}")), "incident", BTreeMap::new(), T0)
                .unwrap();
        }
        let claim_all = |q: Queue| {
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                while let Some(j) = q.claim_next(T0).unwrap() {
                    ids.push(j.id);
                }
                ids
            })
        };
        // Separate Queue values open the lock file separately, like two processes would.
        let a = claim_all(Queue::open(dir.path()).unwrap());
        let b = claim_all(Queue::open(dir.path()).unwrap());
        let mut all = a.join().unwrap();
        all.extend(b.join().unwrap());
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(n, 40);
        assert_eq!(all.len(), 40);
    }

    #[test]
    fn corrupt_job_file_is_an_error_naming_it_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let good = q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let bad = q.dir().join("0000000000-broken.json");
        std::fs::write(&bad, "{\"seq\": 1, trunc").unwrap();
        // Found by the next process to read the directory.
        let q = Queue::open(dir.path()).unwrap();
        let err = q.list().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("0000000000-broken.json"), "{text}");
        assert!(matches!(err, QueueError::Corrupt { .. }));
        assert!(!bad.exists());
        let moved: Vec<_> = std::fs::read_dir(q.dir().join("bad")).unwrap().collect();
        assert_eq!(moved.len(), 1);
        assert_eq!(events(dir.path(), "queue_corrupt_job"), 1);
        // The rest of the queue carries on.
        assert_eq!(q.list().unwrap()[0].id, good.id);
    }

    #[test]
    fn sequence_numbers_continue_past_archived_and_quarantined_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        let b = q.push(sig("b"), "incident", BTreeMap::new(), T0).unwrap();
        let job = q.claim_next(T0).unwrap().unwrap();
        q.finish(&job, done(), T0).unwrap();
        q.cancel(&b, "test", T0).unwrap();
        assert!(q.list().unwrap().is_empty());
        // A new process sees only the archive, and still does not reuse a number.
        let q = Queue::open(dir.path()).unwrap();
        let c = q.push(sig("c"), "incident", BTreeMap::new(), T0).unwrap();
        assert_eq!(c.seq, b.seq + 1);
        std::fs::write(q.dir().join("0000000009-broken.json"), "{").unwrap();
        let q = Queue::open(dir.path()).unwrap();
        assert!(q.list().is_err());
        let d = q.push(sig("d"), "incident", BTreeMap::new(), T0).unwrap();
        assert_eq!(d.seq, 10);
    }

    #[test]
    fn merges_reach_the_job_file_with_its_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let a = q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        for _ in 0..3 {
            q.merge("a", T0).unwrap().unwrap();
        }
        let on_disk =
            |q: &Queue| -> Job { ledger::read_json(&q.dir().join(a.file_name())).unwrap() };
        assert_eq!(on_disk(&q).merged, 0);
        assert_eq!(q.list().unwrap()[0].merged, 3);
        // Another process changes the queue: the unsaved merges survive its re-read.
        let other = Queue::open(dir.path()).unwrap();
        other
            .push(sig("b"), "incident", BTreeMap::new(), T0)
            .unwrap();
        assert_eq!(q.merge("a", T0).unwrap().unwrap().merged, 4);
        let claimed = q.claim_next(T0).unwrap().unwrap();
        assert_eq!((claimed.id.as_str(), claimed.merged), (a.id.as_str(), 4));
        assert_eq!(on_disk(&q).merged, 4);
        q.merge("a", T0).unwrap().unwrap();
        q.write_back().unwrap();
        assert_eq!(on_disk(&q).merged, 5);
        assert_eq!(
            Queue::open(dir.path()).unwrap().list().unwrap()[0].merged,
            5
        );
    }

    #[test]
    fn a_change_by_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        let other = Queue::open(dir.path()).unwrap();
        let a = q.push(sig("a"), "incident", BTreeMap::new(), T0).unwrap();
        assert_eq!(other.list().unwrap().len(), 1);
        other.cancel(&a, "by the other", T0).unwrap();
        assert!(q.list().unwrap().is_empty());
        assert!(q.merge("a", T0).unwrap().is_none());
    }
}
