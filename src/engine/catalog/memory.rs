//! The catalog in memory, as `steward serve` keeps it: the entries by id (ids begin with the
//! run's start stamp, so id order is start order) and the aggregates the pages ask for. Kept
//! current by [`Catalog::refresh`]: a `stat` of the file; when it grew, only the appended bytes
//! are read; when it was replaced (a rebuild) or shrank, it is read again from the start.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

use super::days::Aggregates;
use super::file::{self, Line};
use super::{CatalogError, Entry};
use crate::base::ledger::{Ledger, LedgerError};

/// What the file was when last read: a change of any of these means new lines (or a new file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

/// Why the file must be rebuilt rather than read.
struct Stale(String);

#[derive(Debug)]
pub struct Catalog {
    ledger: Ledger,
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) agg: Aggregates,
    seen: Option<Seen>,
    /// Bytes of the file read so far: up to the end of its last whole line.
    offset: u64,
    /// Lines read so far (to name a bad one by its number).
    lines: usize,
    /// Bumped by every change to the entries: what a cache of derived views is keyed by.
    version: u64,
}

impl Catalog {
    /// The catalog of this state directory: read, or rebuilt when it is missing, of another
    /// version, or does not match `runs/` (a run with a result it lacks, an entry whose run is
    /// gone). The one place a directory listing happens.
    pub fn open(ledger: &Ledger) -> Result<Catalog, CatalogError> {
        let mut c = Catalog {
            ledger: ledger.clone(),
            entries: BTreeMap::new(),
            agg: Aggregates::default(),
            seen: None,
            offset: 0,
            lines: 0,
            version: 0,
        };
        c.load()?;
        if let Some(why) = c.mismatch()? {
            c.rebuild(&why)?;
        }
        Ok(c)
    }

    /// Reads what was appended since the last call (see the module doc).
    pub fn refresh(&mut self) -> Result<(), CatalogError> {
        let path = file::path(self.ledger.root());
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.rebuild("is missing");
            }
            Err(source) => return Err(LedgerError::Read { path, source }.into()),
        };
        let seen = seen_of(&f).map_err(|source| LedgerError::Read {
            path: path.clone(),
            source,
        })?;
        match self.seen {
            Some(s) if s == seen => Ok(()),
            Some(s) if s.ino == seen.ino && seen.len >= self.offset => {
                self.read_lines(&mut f, seen)
            }
            _ => self.load(),
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Changes whenever an entry is added or removed (never goes back).
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads the file from its start, or rebuilds it when it is stale.
    fn load(&mut self) -> Result<(), CatalogError> {
        match self.read_all()? {
            None => Ok(()),
            Some(Stale(why)) => self.rebuild(&why),
        }
    }

    fn rebuild(&mut self, why: &str) -> Result<(), CatalogError> {
        let path = file::path(self.ledger.root());
        let rebuilt = file::rebuild(&self.ledger)?;
        let (entries, skipped) = (rebuilt.entries.len(), rebuilt.skipped.len());
        let what = format!(
            "the run catalog {} {why}: rebuilt from the runs' result.json",
            path.display()
        );
        // A state directory without one yet (a first start) is no news; anything else is.
        if why == "is missing" && self.seen.is_none() {
            tracing::info!(entries, skipped, "{what}");
        } else {
            tracing::warn!(entries, skipped, "{what}");
        }
        for s in &rebuilt.skipped {
            tracing::warn!("left out of the run catalog: {s}");
        }
        match self.read_all()? {
            None => Ok(()),
            Some(Stale(again)) => Err(LedgerError::Corrupt {
                path,
                message: format!("just rebuilt, it {again}"),
            }
            .into()),
        }
    }

    /// `Some(why)` when the file is stale (missing, no version line, another version).
    fn read_all(&mut self) -> Result<Option<Stale>, CatalogError> {
        self.entries.clear();
        self.agg = Aggregates::default();
        self.version += 1;
        self.seen = None;
        self.offset = 0;
        self.lines = 0;
        let path = file::path(self.ledger.root());
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Some(Stale("is missing".into())));
            }
            Err(source) => return Err(LedgerError::Read { path, source }.into()),
        };
        let seen = seen_of(&f).map_err(|source| LedgerError::Read {
            path: path.clone(),
            source,
        })?;
        let mut first = String::new();
        let header = read_first_line(&mut f, &mut first).map_err(|source| LedgerError::Read {
            path: path.clone(),
            source,
        })?;
        match file::parse(first.trim_end()) {
            Ok(Line::Header(file::VERSION)) => {}
            Ok(Line::Header(v)) => {
                return Ok(Some(Stale(format!(
                    "is of version {v}, this steward reads version {}",
                    file::VERSION
                ))));
            }
            _ => return Ok(Some(Stale("has no version line".into()))),
        }
        self.offset = header;
        self.lines = 1;
        self.read_lines(&mut f, seen)?;
        Ok(None)
    }

    /// Applies the whole lines from `offset` on; a partial last line (being written) waits.
    fn read_lines(&mut self, f: &mut File, seen: Seen) -> Result<(), CatalogError> {
        use std::io::{Seek, SeekFrom};
        let path = file::path(self.ledger.root());
        let err = |source| LedgerError::Read {
            path: path.clone(),
            source,
        };
        f.seek(SeekFrom::Start(self.offset)).map_err(err)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(err)?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..whole].split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.lines += 1;
            self.apply(line, &path);
        }
        self.offset += whole as u64;
        self.seen = Some(seen);
        Ok(())
    }

    fn apply(&mut self, line: &[u8], path: &std::path::Path) {
        let parsed = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(file::parse);
        match parsed {
            Ok(Line::Entry(e)) => self.insert(*e),
            Ok(Line::Removed(id)) => {
                if let Some(old) = self.entries.remove(&id) {
                    self.agg.sub(&old);
                    self.version += 1;
                }
            }
            Ok(Line::Header(_)) => tracing::warn!(
                "{} line {}: a version line after the first, skipped",
                path.display(),
                self.lines
            ),
            Err(why) => tracing::warn!(
                "{} line {}: not a catalog line, skipped: {why}",
                path.display(),
                self.lines
            ),
        }
    }

    pub(super) fn insert(&mut self, e: Entry) {
        self.version += 1;
        self.agg.add(&e);
        if let Some(old) = self.entries.insert(e.id.clone(), e) {
            self.agg.sub(&old);
        }
    }

    /// `Some(why)` when the catalog and `runs/` disagree: an entry whose run directory is gone,
    /// or a run with a result the catalog lacks. Runs without a result are still going.
    fn mismatch(&self) -> Result<Option<String>, CatalogError> {
        let ids = self.ledger.run_ids()?;
        let listed: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let gone = self
            .entries
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .count();
        let runs = self.ledger.runs_dir();
        let missing = ids
            .iter()
            .filter(|id| !self.entries.contains_key(*id))
            .filter(|id| runs.join(id).join("result.json").exists())
            .count();
        Ok((gone > 0 || missing > 0).then(|| {
            format!(
                "does not match runs/ ({missing} finished run(s) missing from it, {gone} entry(ies) \
                 for removed runs)"
            )
        }))
    }
}

fn seen_of(f: &File) -> std::io::Result<Seen> {
    let m = f.metadata()?;
    Ok(Seen {
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

/// Reads the first line into `into`; returns its length with the newline (0: no whole line).
fn read_first_line(f: &mut File, into: &mut String) -> std::io::Result<u64> {
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf)?;
    let Some(end) = buf[..n].iter().position(|&b| b == b'\n') else {
        return Ok(0);
    };
    into.push_str(&String::from_utf8_lossy(&buf[..end]));
    Ok(end as u64 + 1)
}
