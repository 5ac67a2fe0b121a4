//! Baselines: snapshots kept in `STATE/baseline/`, one file each, named by the time taken so
//! that the newest sorts last. A baseline that cannot be read is named and skipped (never
//! deleted for it: `--keep` removes the oldest files only), and the report compares with the
//! newest readable one.

use std::path::{Path, PathBuf};

use super::ReportError;
use super::snapshot::{SNAPSHOT_FORMAT, Snapshot};
use crate::base::ledger;

pub struct Baselines {
    dir: PathBuf,
}

/// The newest readable baseline, and the files that could not be read on the way to it.
pub struct Latest {
    pub snapshot: Option<(String, Snapshot)>,
    pub unreadable: Vec<String>,
}

impl Baselines {
    pub fn new(state_dir: &Path) -> Baselines {
        Baselines {
            dir: state_dir.join("baseline"),
        }
    }

    /// Baseline file names, oldest first.
    fn names(&self) -> Result<Vec<String>, ReportError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ReportError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn latest(&self) -> Result<Latest, ReportError> {
        let mut unreadable = Vec::new();
        for name in self.names()?.into_iter().rev() {
            let path = self.dir.join(&name);
            match ledger::read_json::<Snapshot>(&path) {
                Ok(s) if s.format == SNAPSHOT_FORMAT => {
                    return Ok(Latest {
                        snapshot: Some((name, s)),
                        unreadable,
                    });
                }
                Ok(s) => unreadable.push(format!(
                    "{}: format {} (this steward reads {SNAPSHOT_FORMAT})",
                    path.display(),
                    s.format
                )),
                Err(e) => unreadable.push(e.to_string()),
            }
        }
        Ok(Latest {
            snapshot: None,
            unreadable,
        })
    }

    /// Writes `snapshot` as the newest baseline and removes the oldest beyond `keep`.
    pub fn save(&self, snapshot: &Snapshot, keep: usize) -> Result<String, ReportError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ReportError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let stamp = snapshot
            .taken
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
            ))
            .unwrap_or_default();
        let name = format!("{stamp}.json");
        ledger::write_json(&self.dir.join(&name), snapshot)?;
        let names = self.names()?;
        let excess = names.len().saturating_sub(keep.max(1));
        for old in &names[..excess] {
            let path = self.dir.join(old);
            std::fs::remove_file(&path).map_err(|source| ReportError::Io { path, source })?;
        }
        Ok(name)
    }
}
