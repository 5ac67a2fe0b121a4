//! `STATE/incidents/<id>.json`, one file per incident, written atomically; ids sort by the
//! time of death.

use std::path::{Path, PathBuf};

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
        Ok(ledger::write_json(
            &self.dir.join(format!("{}.json", incident.id)),
            incident,
        )?)
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
