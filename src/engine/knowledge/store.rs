//! The proposals on disk: `STATE/knowledge/<state>/<id>.json`, one file per proposal, moved from
//! `pending/` to `accepted/` or `rejected/` when decided (the new file written before the old is
//! removed, under `knowledge/.lock`). Accepting writes the note to
//! `defs::knowledge::accepted_dir` first, so an accepted proposal always has its note.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::note::{render_note, slug};
use super::proposal::{Decision, Limits, Proposal, ProposalState, valid_id};
use crate::base::flock::{FileLock, lock_exclusive};
use crate::base::ledger::{self, LedgerError};
use crate::defs::knowledge::accepted_dir;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("no knowledge proposal `{0}` (see `steward knowledge list`)")]
    Unknown(String),
    #[error("knowledge proposal `{id}` is {state}, not pending")]
    Decided { id: String, state: ProposalState },
    #[error("a rejection needs a reason")]
    NoReason,
    #[error("cannot write the note for `{id}`: {source}")]
    Render {
        id: String,
        source: toml::ser::Error,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl KnowledgeError {
    /// An operator's mistake (an unknown id, a decided proposal, no reason), not steward's.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            KnowledgeError::Unknown(_) | KnowledgeError::Decided { .. } | KnowledgeError::NoReason
        )
    }
}

/// What filing a run's proposals did: the ids filed, and what was not filed and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filed {
    pub ids: Vec<String>,
    pub dropped: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct KnowledgeStore {
    root: PathBuf,
    notes: PathBuf,
}

impl KnowledgeStore {
    /// Opens (creating) `STATE/knowledge/` and its state directories.
    pub fn open(state_dir: &Path) -> Result<KnowledgeStore, KnowledgeError> {
        let root = state_dir.join("knowledge");
        for s in ProposalState::ALL {
            let dir = root.join(s.as_str());
            std::fs::create_dir_all(&dir)
                .map_err(|source| LedgerError::Write { path: dir, source })?;
        }
        Ok(KnowledgeStore {
            root,
            notes: accepted_dir(state_dir),
        })
    }

    /// Where accepted notes are written.
    pub fn notes_dir(&self) -> &Path {
        &self.notes
    }

    fn path(&self, state: ProposalState, id: &str) -> PathBuf {
        self.root.join(state.as_str()).join(format!("{id}.json"))
    }

    fn lock(&self) -> Result<FileLock, KnowledgeError> {
        let path = self.root.join(".lock");
        lock_exclusive(&path).map_err(|source| KnowledgeError::Lock { path, source })
    }

    /// Files proposals as pending, as many as the pending limit leaves room for.
    pub fn file(&self, proposals: Vec<Proposal>, limits: &Limits) -> Result<Filed, KnowledgeError> {
        let _lock = self.lock()?;
        let mut room = limits
            .pending
            .saturating_sub(self.read_state(ProposalState::Pending)?.len());
        let mut filed = Filed::default();
        for p in proposals {
            if room == 0 {
                filed.dropped.push(format!(
                    "`{}`: {} proposals are pending already (review them: steward knowledge list)",
                    p.title, limits.pending
                ));
                continue;
            }
            ledger::write_json(&self.path(ProposalState::Pending, &p.id), &p)?;
            filed.ids.push(p.id);
            room -= 1;
        }
        Ok(filed)
    }

    pub fn get(&self, id: &str) -> Result<Proposal, KnowledgeError> {
        if valid_id(id) {
            for s in ProposalState::ALL.iter().rev() {
                match ledger::read_json::<Proposal>(&self.path(*s, id)) {
                    Ok(p) => return Ok(p),
                    Err(LedgerError::Read { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(KnowledgeError::Unknown(id.to_string()))
    }

    /// Pending proposals, oldest first; with `all`, then the decided ones, newest first.
    pub fn list(&self, all: bool) -> Result<Vec<Proposal>, KnowledgeError> {
        let mut out = self.read_state(ProposalState::Pending)?;
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        if all {
            let mut decided = self.read_state(ProposalState::Accepted)?;
            decided.extend(self.read_state(ProposalState::Rejected)?);
            decided.retain(|d| !out.iter().any(|p| p.id == d.id));
            decided.sort_by_key(|p| std::cmp::Reverse(p.created));
            out.extend(decided);
        }
        Ok(out)
    }

    fn read_state(&self, state: ProposalState) -> Result<Vec<Proposal>, KnowledgeError> {
        let dir = self.root.join(state.as_str());
        let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match ledger::read_json::<Proposal>(&path) {
                Ok(p) => out.push(p),
                // Decided between the listing and the read: it is read in its new state.
                Err(LedgerError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Accepts a pending proposal: its note is written (`<slug>.md`, `<slug>-2.md`, … when the
    /// name is taken), then the proposal moves to `accepted/` naming the note.
    pub fn accept(&self, id: &str, by: &str) -> Result<Proposal, KnowledgeError> {
        let _lock = self.lock()?;
        let mut p = self.pending(id)?;
        let at = OffsetDateTime::now_utc();
        let text = render_note(&p, by, at).map_err(|source| KnowledgeError::Render {
            id: id.to_string(),
            source,
        })?;
        std::fs::create_dir_all(&self.notes).map_err(|source| LedgerError::Write {
            path: self.notes.clone(),
            source,
        })?;
        let path = self.free_note_path(&slug(&p.title));
        ledger::write_atomic(&path, text.as_bytes())?;
        p.decision = Some(Decision {
            by: by.to_string(),
            at,
            reason: None,
            note: Some(path.display().to_string()),
        });
        self.decide(p, ProposalState::Accepted)
    }

    /// Rejects a pending proposal, recording who and why.
    pub fn reject(&self, id: &str, by: &str, reason: &str) -> Result<Proposal, KnowledgeError> {
        if reason.trim().is_empty() {
            return Err(KnowledgeError::NoReason);
        }
        let _lock = self.lock()?;
        let mut p = self.pending(id)?;
        p.decision = Some(Decision {
            by: by.to_string(),
            at: OffsetDateTime::now_utc(),
            reason: Some(reason.trim().to_string()),
            note: None,
        });
        self.decide(p, ProposalState::Rejected)
    }

    fn pending(&self, id: &str) -> Result<Proposal, KnowledgeError> {
        let p = self.get(id)?;
        if p.state != ProposalState::Pending {
            return Err(KnowledgeError::Decided {
                id: id.to_string(),
                state: p.state,
            });
        }
        Ok(p)
    }

    fn decide(&self, mut p: Proposal, to: ProposalState) -> Result<Proposal, KnowledgeError> {
        p.state = to;
        ledger::write_json(&self.path(to, &p.id), &p)?;
        let old = self.path(ProposalState::Pending, &p.id);
        if let Err(source) = std::fs::remove_file(&old)
            && source.kind() != std::io::ErrorKind::NotFound
        {
            return Err(LedgerError::Write { path: old, source }.into());
        }
        Ok(p)
    }

    fn free_note_path(&self, slug: &str) -> PathBuf {
        let mut n = 1;
        loop {
            let name = if n == 1 {
                format!("{slug}.md")
            } else {
                format!("{slug}-{n}.md")
            };
            let path = self.notes.join(name);
            if !path.exists() {
                return path;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::redact::Redactor;
    use crate::engine::knowledge::from_verdict;
    use serde_json::json;

    fn proposals(n: usize) -> Vec<Proposal> {
        let notes: Vec<_> = (0..n)
            .map(|i| json!({"title": format!("Note {i}"), "tags": ["nfs"], "body": "b"}))
            .collect();
        let limits = Limits {
            per_run: 10,
            ..Limits::default()
        };
        from_verdict(&notes, "run-1", "incident", &Redactor::default(), &limits).0
    }

    #[test]
    fn filing_is_bounded_and_decisions_move_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = KnowledgeStore::open(dir.path()).unwrap();
        let limits = Limits {
            pending: 2,
            ..Limits::default()
        };
        let filed = store.file(proposals(3), &limits).unwrap();
        assert_eq!(filed.ids.len(), 2);
        assert_eq!(filed.dropped.len(), 1, "{:?}", filed.dropped);
        assert_eq!(store.list(false).unwrap().len(), 2);

        let a = store.accept(&filed.ids[0], "cli:ops").unwrap();
        assert_eq!(a.state, ProposalState::Accepted);
        let note = a.decision.as_ref().unwrap().note.clone().unwrap();
        assert!(note.ends_with("knowledge/notes/note-0.md"), "{note}");
        assert!(
            std::fs::read_to_string(&note)
                .unwrap()
                .contains("run = \"run-1\"")
        );
        let err = store.accept(&filed.ids[0], "x").unwrap_err();
        assert!(matches!(err, KnowledgeError::Decided { .. }), "{err}");

        assert!(matches!(
            store.reject(&filed.ids[1], "x", " ").unwrap_err(),
            KnowledgeError::NoReason
        ));
        let r = store.reject(&filed.ids[1], "cli:ops", "wrong").unwrap();
        assert_eq!(r.decision.unwrap().reason.as_deref(), Some("wrong"));
        assert!(store.list(false).unwrap().is_empty());
        assert_eq!(store.list(true).unwrap().len(), 2);
        assert!(
            !dir.path()
                .join("knowledge/pending")
                .join(format!("{}.json", r.id))
                .exists()
        );
        assert!(matches!(
            store.get("../x").unwrap_err(),
            KnowledgeError::Unknown(_)
        ));
    }

    #[test]
    fn a_taken_note_name_gets_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let store = KnowledgeStore::open(dir.path()).unwrap();
        let mut ps = proposals(2);
        ps[1].title = ps[0].title.clone();
        let filed = store.file(ps, &Limits::default()).unwrap();
        let a = store.accept(&filed.ids[0], "a").unwrap();
        let b = store.accept(&filed.ids[1], "a").unwrap();
        assert!(a.decision.unwrap().note.unwrap().ends_with("note-0.md"));
        assert!(b.decision.unwrap().note.unwrap().ends_with("note-0-2.md"));
    }
}
