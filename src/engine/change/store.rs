//! The change records on disk: `STATE/changes/<state>/<id>.json`, one file per change, moved
//! between state directories as the change goes on. Every write happens under
//! `changes/.lock`; a move writes the new file (atomically) before it removes the old one, so a
//! crash leaves the record in one state or two, never none, and the later state wins when read.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::base::flock::{FileLock, lock_exclusive};
use crate::base::ledger::{self, LedgerError};

use super::record::{CHANGE_FORMAT, ChangeRecord, ChangeState, Transition};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no change `{0}` (see `steward changes list`)")]
    Unknown(String),
    #[error("change `{id}` is {state}, not {wanted}")]
    WrongState {
        id: String,
        state: ChangeState,
        wanted: String,
    },
    #[error("{}: change record format {found}, but this steward reads format {CHANGE_FORMAT}", path.display())]
    Format { path: PathBuf, found: u32 },
    #[error("change `{0}` exists already")]
    Exists(String),
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The `changes/` directory.
#[derive(Debug, Clone)]
pub struct ChangeStore {
    root: PathBuf,
}

impl ChangeStore {
    /// Opens (creating) `STATE/changes/` and its state directories.
    pub fn open(state_dir: &Path) -> Result<ChangeStore, StoreError> {
        let root = state_dir.join("changes");
        for s in ChangeState::ALL {
            let dir = root.join(s.as_str());
            std::fs::create_dir_all(&dir)
                .map_err(|source| LedgerError::Write { path: dir, source })?;
        }
        Ok(ChangeStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, state: ChangeState, id: &str) -> PathBuf {
        self.root.join(state.as_str()).join(format!("{id}.json"))
    }

    fn lock(&self) -> Result<FileLock, StoreError> {
        let path = self.root.join(".lock");
        lock_exclusive(&path).map_err(|source| StoreError::Lock { path, source })
    }

    /// Files a new record in its state's directory.
    pub fn create(&self, record: &ChangeRecord) -> Result<(), StoreError> {
        if !ChangeRecord::valid_id(&record.id) {
            return Err(StoreError::Unknown(record.id.clone()));
        }
        let _lock = self.lock()?;
        if self.find(&record.id)?.is_some() {
            return Err(StoreError::Exists(record.id.clone()));
        }
        ledger::write_json(&self.path(record.state, &record.id), record)?;
        Ok(())
    }

    /// The record of this id; when a crash left it in two states, the later one.
    pub fn get(&self, id: &str) -> Result<ChangeRecord, StoreError> {
        self.find(id)?
            .ok_or_else(|| StoreError::Unknown(id.to_string()))
    }

    fn find(&self, id: &str) -> Result<Option<ChangeRecord>, StoreError> {
        if !ChangeRecord::valid_id(id) {
            return Ok(None);
        }
        let mut found = None;
        for s in ChangeState::ALL {
            let p = self.path(s, id);
            match ledger::read_json::<ChangeRecord>(&p) {
                Ok(r) => found = Some(check_format(r, &p)?),
                // Absent, or moved on between the look and the read: the later state is read next.
                Err(LedgerError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    /// Every change, open first, then newest first. Pending changes past their expiry are moved
    /// to `expired` here, so every reader sees the same truth.
    pub fn list(&self) -> Result<Vec<ChangeRecord>, StoreError> {
        self.expire_due(OffsetDateTime::now_utc())?;
        let mut out: Vec<ChangeRecord> = Vec::new();
        for s in ChangeState::ALL {
            for r in self.read_state(s)? {
                // A record a crash left in two states is listed once, in its later state.
                out.retain(|o| o.id != r.id);
                out.push(r);
            }
        }
        out.sort_by(|a, b| {
            b.state
                .is_open()
                .cmp(&a.state.is_open())
                .then(b.created.cmp(&a.created))
        });
        Ok(out)
    }

    fn read_state(&self, state: ChangeState) -> Result<Vec<ChangeRecord>, StoreError> {
        let dir = self.root.join(state.as_str());
        let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in entries {
            let p = e
                .map_err(|source| LedgerError::Read {
                    path: dir.clone(),
                    source,
                })?
                .path();
            let is_record = p.extension().is_some_and(|x| x == "json")
                && p.file_stem()
                    .and_then(|x| x.to_str())
                    .is_some_and(ChangeRecord::valid_id);
            if is_record {
                match ledger::read_json::<ChangeRecord>(&p) {
                    Ok(r) => out.push(check_format(r, &p)?),
                    Err(LedgerError::Read { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(out)
    }

    /// Moves pending changes whose time is up to `expired`.
    pub fn expire_due(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        let due: Vec<String> = self
            .read_state(ChangeState::Pending)?
            .into_iter()
            .filter(|r| r.expires <= now)
            .map(|r| r.id)
            .collect();
        let mut expired = Vec::new();
        for id in due {
            let moved = self.transition(
                id.as_str(),
                &[ChangeState::Pending],
                ChangeState::Expired,
                "steward",
                "nobody decided before it expired",
                |_| Ok(()),
            );
            match moved {
                Ok(_) => expired.push(id),
                // Decided meanwhile: not expired.
                Err(StoreError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Moves a change from one of `from` to `to`, recording who and why, after `update` edited
    /// the record (it may refuse, and then nothing moves). Under the store's lock, so two
    /// approvals of one change cannot both pass.
    pub fn transition<E>(
        &self,
        id: &str,
        from: &[ChangeState],
        to: ChangeState,
        by: &str,
        note: &str,
        update: impl FnOnce(&mut ChangeRecord) -> Result<(), E>,
    ) -> Result<ChangeRecord, E>
    where
        E: From<StoreError>,
    {
        let _lock = self.lock()?;
        let mut r = self.get(id)?;
        if !from.contains(&r.state) {
            let wanted = from
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(StoreError::WrongState {
                id: id.to_string(),
                state: r.state,
                wanted,
            }
            .into());
        }
        update(&mut r)?;
        let old = r.state;
        r.state = to;
        r.history.push(Transition {
            at: OffsetDateTime::now_utc(),
            to,
            by: by.to_string(),
            note: note.to_string(),
        });
        // `reason` says why the change is where it is; a step without a note keeps the old one.
        if !note.is_empty() {
            r.reason = note.to_string();
        }
        ledger::write_json(&self.path(to, id), &r).map_err(StoreError::from)?;
        if old != to {
            remove_if_present(&self.path(old, id)).map_err(StoreError::from)?;
        }
        Ok(r)
    }

    /// Rewrites a record in place (steps recorded while applying), under the lock.
    pub fn update(&self, record: &ChangeRecord) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let current = self.get(&record.id)?;
        if current.state != record.state {
            return Err(StoreError::WrongState {
                id: record.id.clone(),
                state: current.state,
                wanted: record.state.as_str().to_string(),
            });
        }
        ledger::write_json(&self.path(record.state, &record.id), record)?;
        Ok(())
    }

    /// Open changes whose runs must be kept (their worktrees and records): the run ids, and the
    /// worktree names of changes rebased at approval.
    pub fn open_run_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for s in [
            ChangeState::Pending,
            ChangeState::Approved,
            ChangeState::Applying,
        ] {
            for r in self.read_state(s)? {
                // A change rebased at approval has a worktree of its own, named as its branch
                // (`steward/<run>-<change id>`); it is kept as long as the change is open.
                if let Some(name) = r.branch.strip_prefix(super::worktree::BRANCH_PREFIX)
                    && name != r.run
                {
                    ids.push(name.to_string());
                }
                ids.push(r.run);
            }
        }
        Ok(ids)
    }
}

fn check_format(r: ChangeRecord, path: &Path) -> Result<ChangeRecord, StoreError> {
    if r.format != CHANGE_FORMAT {
        return Err(StoreError::Format {
            path: path.to_path_buf(),
            found: r.format,
        });
    }
    Ok(r)
}

fn remove_if_present(path: &Path) -> Result<(), LedgerError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LedgerError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
