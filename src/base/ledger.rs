//! The record on disk: `runs/<id>/` per run, `events/` as append-only JSON lines, and the lock that
//! keeps two runs from acting at once. Every file write is atomic (write, fsync, rename), and an
//! unreadable file is an error that names it, never an empty default.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
    #[error("another steward run is acting on this host ({holder}); lock file {path}")]
    Busy { path: PathBuf, holder: String },
    #[error("no run `{0}` in the ledger")]
    UnknownRun(String),
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LedgerError> {
    let err = |source| LedgerError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), LedgerError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| LedgerError::Encode {
        what: path.display().to_string(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, LedgerError> {
    let text = std::fs::read_to_string(path).map_err(|source| LedgerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| LedgerError::Corrupt {
        path: path.to_path_buf(),
        message: format!("line {} column {}: {e}", e.line(), e.column()),
    })
}

/// Appends one JSON line with a single `write` on an `O_APPEND` file, then fsyncs.
pub fn append_json_line<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), LedgerError> {
    let line = serde_json::to_string(value).map_err(|source| LedgerError::Encode {
        what: path.display().to_string(),
        source,
    })?;
    append_line(path, &line)
}

/// Appends `text` and a newline as a whole line (see [`crate::base::append`]: a failed write leaves
/// the file as it was), then fsyncs.
pub fn append_line(path: &Path, text: &str) -> Result<(), LedgerError> {
    let err = |source| LedgerError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    let f = open_append(path)?;
    crate::base::append::whole(&f, &line).map_err(err)?;
    f.sync_data().map_err(err)
}

/// Opens (creating) a line log: every `write` lands at its end (`O_APPEND`), and it is readable
/// so that an append can look at its last line.
fn open_append(path: &Path) -> Result<File, LedgerError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|source| LedgerError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Ledger {
    root: PathBuf,
}

/// One event in `events/YYYY-MM-DD.jsonl`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Event {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Events written by [`Ledger::write_events`], durable once [`Unsynced::sync`] returns.
#[derive(Debug, Default)]
pub struct Unsynced {
    files: Vec<(PathBuf, File)>,
}

impl Unsynced {
    /// Both sets, one handle per file: an fsync through any handle flushes the whole file.
    pub fn merge(mut self, other: Unsynced) -> Unsynced {
        for (path, file) in other.files {
            if !self.files.iter().any(|(p, _)| *p == path) {
                self.files.push((path, file));
            }
        }
        self
    }

    pub fn sync(self) -> Result<(), LedgerError> {
        for (path, f) in self.files {
            f.sync_data()
                .map_err(|source| LedgerError::Write { path, source })?;
        }
        Ok(())
    }
}

/// Events serialized and waiting for [`Ledger::append`], by day file.
#[derive(Debug, Default)]
pub struct EventBatch {
    by_day: std::collections::BTreeMap<String, String>,
}

impl EventBatch {
    /// Adds an event stamped now (UTC); `data`, a struct or map, is flattened into it.
    pub fn add<D: Serialize + ?Sized>(
        &mut self,
        kind: &str,
        run: Option<&str>,
        data: &D,
    ) -> Result<(), LedgerError> {
        // [`Event`]'s shape, borrowed: no map is built per event.
        #[derive(Serialize)]
        struct Line<'a, D: ?Sized> {
            #[serde(with = "time::serde::rfc3339")]
            time: OffsetDateTime,
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            run: Option<&'a str>,
            #[serde(flatten)]
            data: &'a D,
        }
        let time = OffsetDateTime::now_utc();
        let line = serde_json::to_string(&Line {
            time,
            kind,
            run,
            data,
        })
        .map_err(|source| LedgerError::Encode {
            what: format!("the {kind} event"),
            source,
        })?;
        let name = format!(
            "{:04}-{:02}-{:02}.jsonl",
            time.year(),
            u8::from(time.month()),
            time.day()
        );
        let text = self.by_day.entry(name).or_default();
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
        Ok(())
    }
}

impl Ledger {
    pub fn open(root: &Path) -> Result<Ledger, LedgerError> {
        for sub in ["runs", "events", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|source| LedgerError::Write {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Ledger {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Scratch space on the same file system (fresh HOMEs for claude live here).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A new, empty run directory with a sortable, unique id.
    pub fn create_run(&self, goal: &str) -> Result<RunDir, LedgerError> {
        let now = OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let slug: String = goal
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        loop {
            let rand = uuid::Uuid::new_v4().simple().to_string();
            let id = format!("{stamp}-{slug}-{}", &rand[..6]);
            let path = self.runs_dir().join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { id, path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(LedgerError::Write { path, source }),
            }
        }
    }

    pub fn run(&self, id: &str) -> Result<RunDir, LedgerError> {
        // Ids are file names; anything with a separator is not one of ours.
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(LedgerError::UnknownRun(id.to_string()));
        }
        let path = self.runs_dir().join(id);
        if !path.is_dir() {
            return Err(LedgerError::UnknownRun(id.to_string()));
        }
        Ok(RunDir {
            id: id.to_string(),
            path,
        })
    }

    /// Run ids, oldest first.
    pub fn run_ids(&self) -> Result<Vec<String>, LedgerError> {
        let dir = self.runs_dir();
        let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| LedgerError::Read {
                path: dir.clone(),
                source,
            })?;
            if entry.path().is_dir()
                && let Some(name) = entry.file_name().to_str()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn event(
        &self,
        kind: &str,
        run: Option<&str>,
        data: serde_json::Value,
    ) -> Result<(), LedgerError> {
        let data = match data {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        let mut batch = EventBatch::default();
        batch.add(kind, run, &data)?;
        self.append(batch)
    }

    /// Appends a batch of events with one `write` and one fsync per day file: a batch costs what
    /// one event costs, so the daemon can record every routing decision before it answers.
    pub fn append(&self, batch: EventBatch) -> Result<(), LedgerError> {
        self.write_events(batch)?.sync()
    }

    /// The first half of [`Ledger::append`]: the events written (one `write` per day file, so
    /// in the kernel and safe from a crash of steward) but not yet fsynced. All or nothing: when
    /// a write fails (a full disk), every day file is cut back to its length before, so no
    /// partial line is left for the next event to be glued to.
    pub fn write_events(&self, batch: EventBatch) -> Result<Unsynced, LedgerError> {
        let mut files = Vec::with_capacity(batch.by_day.len());
        let mut texts = Vec::with_capacity(batch.by_day.len());
        // By name, so every writer locks day files in the same order.
        for (name, mut text) in batch.by_day {
            let path = self.root.join("events").join(name);
            text.push('\n');
            files.push((path.clone(), open_append(&path)?));
            texts.push(text);
        }
        let parts: Vec<(&File, &[u8])> = files
            .iter()
            .zip(&texts)
            .map(|((_, f), t)| (f, t.as_bytes()))
            .collect();
        if let Err((i, source)) = crate::base::append::all(&parts) {
            return Err(LedgerError::Write {
                path: files[i].0.clone(),
                source,
            });
        }
        Ok(Unsynced { files })
    }

    /// Takes the host-wide action lock, waiting up to `wait`. Dropping the guard releases it.
    pub fn lock(&self, purpose: &str, wait: Duration) -> Result<LockGuard, LedgerError> {
        let path = self.root.join("lock");
        let deadline = std::time::Instant::now() + wait;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| LedgerError::Write {
                path: path.clone(),
                source,
            })?;
        let mut file = Some(file);
        loop {
            let f = match file.take() {
                Some(f) => f,
                None => {
                    return Err(LedgerError::Busy {
                        path,
                        holder: "unknown".into(),
                    });
                }
            };
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(mut flock) => {
                    let holder = format!(
                        "pid {} since {} for {purpose}\n",
                        std::process::id(),
                        OffsetDateTime::now_utc()
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    );
                    let _ = flock.set_len(0);
                    let _ = flock.write_all(holder.as_bytes());
                    return Ok(LockGuard { _flock: flock });
                }
                Err((f, _)) => {
                    if std::time::Instant::now() >= deadline {
                        let holder = std::fs::read_to_string(&path)
                            .unwrap_or_default()
                            .trim()
                            .to_string();
                        return Err(LedgerError::Busy { path, holder });
                    }
                    file = Some(f);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Holds the action lock until dropped.
pub struct LockGuard {
    _flock: nix::fcntl::Flock<File>,
}

/// One run's directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_json<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), LedgerError> {
        write_json(&self.file(name), value)
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<(), LedgerError> {
        write_atomic(&self.file(name), text.as_bytes())
    }

    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Result<T, LedgerError> {
        read_json(&self.file(name))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// An append-only line file inside the run (transcript, audit).
    pub fn appender(&self, name: &str) -> Result<LineAppender, LedgerError> {
        let path = self.file(name);
        let file = open_append(&path)?;
        Ok(LineAppender { path, file })
    }
}

pub struct LineAppender {
    path: PathBuf,
    file: File,
}

impl LineAppender {
    pub fn line(&mut self, text: &str) -> Result<(), LedgerError> {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        crate::base::append::whole(&self.file, &buf).map_err(|source| LedgerError::Write {
            path: self.path.clone(),
            source,
        })
    }

    pub fn sync(&mut self) -> Result<(), LedgerError> {
        self.file.sync_data().map_err(|source| LedgerError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_unique_and_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let a = l.create_run("health-check").unwrap();
        let b = l.create_run("health check/../x").unwrap();
        assert_ne!(a.id, b.id);
        assert!(!b.id.contains('/'));
        let ids = l.run_ids().unwrap();
        assert_eq!(ids.len(), 2);
        assert!(l.run("../etc").is_err());
        assert!(l.run(&a.id).is_ok());
    }

    #[test]
    fn unreadable_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let r = l.create_run("g").unwrap();
        std::fs::write(r.file("result.json"), "{not json").unwrap();
        let err = r.read_json::<serde_json::Value>("result.json").unwrap_err();
        assert!(err.to_string().contains("result.json"), "{err}");
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let g = l.lock("test", Duration::ZERO).unwrap();
        let err = l.lock("second", Duration::from_millis(150)).err().unwrap();
        assert!(err.to_string().contains("another steward run"), "{err}");
        drop(g);
        assert!(l.lock("third", Duration::ZERO).is_ok());
    }

    #[test]
    fn events_append_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        l.event("run_started", Some("x"), serde_json::json!({"goal": "g"}))
            .unwrap();
        l.event(
            "run_finished",
            Some("x"),
            serde_json::json!({"outcome": "ok"}),
        )
        .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("events"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            let e: Event = serde_json::from_str(line).unwrap();
            assert_eq!(e.run.as_deref(), Some("x"));
        }
    }
}
