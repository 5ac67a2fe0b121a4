//! `STATE/incidents/<id>.json`, one file per incident, written atomically; ids sort by the
//! time of death.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::Incident;
use crate::base::ledger::{self, LedgerError};

#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no incident {0}")]
    Unknown(String),
}

/// Incidents kept at most, whatever their age: a container crash-looping for days must not fill
/// the state disk. The oldest go first.
pub const MAX_INCIDENTS: usize = 10_000;

pub struct IncidentStore {
    dir: PathBuf,
}

impl IncidentStore {
    pub fn new(state_dir: &Path) -> IncidentStore {
        IncidentStore {
            dir: state_dir.join("incidents"),
        }
    }

    pub fn write(&self, incident: &Incident) -> Result<(), IncidentError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| IncidentError::Io {
            path: self.dir.clone(),
            source,
        })?;
        ledger::write_json(&self.dir.join(format!("{}.json", incident.id)), incident)?;
        self.prune(None, MAX_INCIDENTS, false)?;
        Ok(())
    }

    /// Removes the incidents that died before `cutoff` and, of the rest, all but the newest
    /// `keep`; returns their ids (a dry run only names them). A file whose name carries no time
    /// of death is not steward's and is left alone.
    pub fn prune(
        &self,
        cutoff: Option<OffsetDateTime>,
        keep: usize,
        dry_run: bool,
    ) -> Result<Vec<String>, IncidentError> {
        let mut removed = Vec::new();
        let dated = self
            .ids()?
            .into_iter()
            .filter_map(|id| died_at(&id).map(|died| (id, died)));
        for (rank, (id, died)) in dated.enumerate() {
            if rank < keep && cutoff.is_none_or(|c| died >= c) {
                continue;
            }
            if !dry_run {
                let path = self.dir.join(format!("{id}.json"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(IncidentError::Io { path, source }),
                }
            }
            removed.push(id);
        }
        Ok(removed)
    }

    pub fn get(&self, id: &str) -> Result<Incident, IncidentError> {
        let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let path = self.dir.join(format!("{id}.json"));
        if !valid || !path.exists() {
            return Err(IncidentError::Unknown(id.to_string()));
        }
        Ok(ledger::read_json(&path)?)
    }

    /// Incident ids, newest first.
    pub fn ids(&self) -> Result<Vec<String>, IncidentError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(IncidentError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// The newest `limit` incidents; unreadable files are returned as errors beside them.
    pub fn recent(&self, limit: usize) -> Result<(Vec<Incident>, Vec<String>), IncidentError> {
        let mut found = Vec::new();
        let mut broken = Vec::new();
        for id in self.ids()?.into_iter().take(limit) {
            match self.get(&id) {
                Ok(i) => found.push(i),
                Err(e) => broken.push(e.to_string()),
            }
        }
        Ok((found, broken))
    }
}

/// The time of death an id starts with (`<event nanos>-<container>`).
fn died_at(id: &str) -> Option<OffsetDateTime> {
    let nanos: i128 = id.split_once('-')?.0.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(ids: &[&str]) -> (tempfile::TempDir, IncidentStore) {
        let d = tempfile::tempdir().unwrap();
        let store = IncidentStore::new(d.path());
        std::fs::create_dir_all(&store.dir).unwrap();
        for id in ids {
            std::fs::write(store.dir.join(format!("{id}.json")), "{}").unwrap();
        }
        (d, store)
    }

    const DAY: i128 = 86_400 * 1_000_000_000;
    const NOW: i128 = 1_796_000_000 * 1_000_000_000;

    #[test]
    fn old_incidents_and_those_past_the_bound_go_oldest_first() {
        let old = format!("{}-aaaaaaaaaaaa", NOW - 40 * DAY);
        let mid = format!("{}-bbbbbbbbbbbb", NOW - 2 * DAY);
        let new = format!("{}-cccccccccccc", NOW - DAY);
        let newest = format!("{NOW}-dddddddddddd");
        let (_d, store) = store_with(&[&old, &mid, &new, &newest, "notes"]);
        let cutoff = OffsetDateTime::from_unix_timestamp_nanos(NOW - 30 * DAY).unwrap();
        let dry = store.prune(Some(cutoff), 100, true).unwrap();
        assert_eq!(dry, vec![old.clone()]);
        assert_eq!(store.ids().unwrap().len(), 5, "a dry run removes nothing");
        assert_eq!(store.prune(Some(cutoff), 2, false).unwrap(), vec![mid, old]);
        assert_eq!(store.ids().unwrap(), vec!["notes".to_string(), newest, new]);
    }
}
