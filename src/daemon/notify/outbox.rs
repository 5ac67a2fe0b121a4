//! The outbox on disk, `STATE/notify/`:
//!
//! ```text
//! cursor.json                      where the event log was read to
//! outbox/<target>/<key>.json       messages still to deliver (state `pending`)
//! done/<target>/<key>.json         delivered, given up or rate limited, with every attempt
//! ```
//!
//! One file per message per target, written atomically. A key present in either directory is
//! never queued again for that target: the dedup survives restarts. Files in `done/` older than
//! [`KEEP_DONE_DAYS`] are removed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::NotifyError;
use super::message::{Message, Notice};
use crate::base::ledger::{self, LedgerError};
use crate::base::redact::Redactor;
use crate::config::Config;

/// How long delivered and given-up messages are kept (and deduplicated against).
const KEEP_DONE_DAYS: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Out of attempts or too old: recorded, not sent.
    GivenUp,
    /// Over the target's `max_per_hour`: recorded, not sent.
    RateLimited,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub ok: bool,
    /// The HTTP status or SMTP code, when there was an answer.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One message for one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub target: String,
    pub state: DeliveryState,
    pub message: Message,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt: OffsetDateTime,
    pub attempts: Vec<Attempt>,
    /// Why it is given up or rate limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    root: PathBuf,
}

impl Outbox {
    pub fn open(state_dir: &Path) -> Result<Outbox, NotifyError> {
        let root = state_dir.join("notify");
        std::fs::create_dir_all(&root).map_err(|source| LedgerError::Write {
            path: root.clone(),
            source,
        })?;
        Ok(Outbox { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn pending_path(&self, target: &str, key: &str) -> PathBuf {
        self.root
            .join("outbox")
            .join(target)
            .join(format!("{key}.json"))
    }

    fn done_path(&self, target: &str, key: &str) -> PathBuf {
        self.root
            .join("done")
            .join(target)
            .join(format!("{key}.json"))
    }

    /// Queues each notice for each target that wants it and has not had it: returns how many
    /// messages were written.
    pub fn enqueue(&self, cfg: &Config, notices: &[Notice]) -> Result<usize, NotifyError> {
        let host = super::host_name();
        let redactor = Redactor::new(cfg.known_secrets());
        let mut queued = 0;
        for n in notices {
            for t in cfg.notify.iter().filter(|t| t.wants(&n.event, n.severity)) {
                if self.pending_path(&t.name, &n.key).exists()
                    || self.done_path(&t.name, &n.key).exists()
                {
                    continue;
                }
                let message = Message::new(n, &host, cfg.serve.public_url.as_deref(), &redactor);
                self.write(&self.new_outgoing(&t.name, message))?;
                queued += 1;
            }
        }
        Ok(queued)
    }

    pub fn new_outgoing(&self, target: &str, message: Message) -> Outgoing {
        let now = OffsetDateTime::now_utc();
        Outgoing {
            target: target.to_string(),
            state: DeliveryState::Pending,
            message,
            created: now,
            next_attempt: now,
            attempts: Vec::new(),
            reason: None,
        }
    }

    /// Writes `out` where its state says: pending in `outbox/`, anything else in `done/`
    /// (then the pending file is removed).
    pub fn write(&self, out: &Outgoing) -> Result<(), NotifyError> {
        let key = &out.message.id;
        if out.state == DeliveryState::Pending {
            ledger::write_json(&self.pending_path(&out.target, key), out)?;
        } else {
            ledger::write_json(&self.done_path(&out.target, key), out)?;
            let pending = self.pending_path(&out.target, key);
            if let Err(source) = std::fs::remove_file(&pending)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(LedgerError::Write {
                    path: pending,
                    source,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Pending messages of `target`, oldest first.
    pub fn pending(&self, target: &str) -> Result<Vec<Outgoing>, NotifyError> {
        self.read_dir(&self.root.join("outbox").join(target))
    }

    /// Delivered, given-up and rate-limited messages of `target`.
    pub fn done(&self, target: &str) -> Result<Vec<Outgoing>, NotifyError> {
        self.read_dir(&self.root.join("done").join(target))
    }

    fn read_dir(&self, dir: &Path) -> Result<Vec<Outgoing>, NotifyError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(NotifyError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(ledger::read_json::<Outgoing>(&p)?);
            }
        }
        out.sort_by_key(|o| o.created);
        Ok(out)
    }

    /// Removes `done/` files older than [`KEEP_DONE_DAYS`].
    pub fn prune_done(&self) {
        let keep = std::time::Duration::from_secs(KEEP_DONE_DAYS * 86_400);
        let Ok(targets) = std::fs::read_dir(self.root.join("done")) else {
            return;
        };
        for t in targets.flatten() {
            let Ok(files) = std::fs::read_dir(t.path()) else {
                continue;
            };
            for f in files.flatten() {
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > keep);
                if old {
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }
}
