//! Where the watch is in the engine's event stream: the time (ns) of the last event handled,
//! in `STATE/docker-watch.json`. A reconnect asks for events since that second and skips what
//! is not newer, so an engine restart neither loses nor repeats a death.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::ledger;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Saved {
    last_nanos: i64,
}

pub struct Cursor {
    path: PathBuf,
    last_nanos: i64,
}

impl Cursor {
    /// The saved cursor; without one (or unreadable: logged), from `now_nanos` on.
    pub fn load(state_dir: &Path, now_nanos: i64) -> Cursor {
        let path = state_dir.join("docker-watch.json");
        let last_nanos = match ledger::read_json::<Saved>(&path) {
            Ok(s) => s.last_nanos,
            Err(e) => {
                if path.exists() {
                    tracing::warn!("{e}: watching Docker events from now on");
                }
                now_nanos
            }
        };
        Cursor { path, last_nanos }
    }

    /// The `since` the events API takes: whole seconds, so the second of the last event is
    /// asked again and its events skipped by [`Cursor::is_new`].
    pub fn since(&self) -> String {
        (self.last_nanos / 1_000_000_000).to_string()
    }

    pub fn is_new(&self, nanos: i64) -> bool {
        nanos > self.last_nanos
    }

    /// Moves past an event handled and saves; a failed save is logged (the next start may then
    /// see this event again, which the incident id makes idempotent).
    pub fn advance(&mut self, nanos: i64) {
        if nanos <= self.last_nanos {
            return;
        }
        self.last_nanos = nanos;
        let saved = Saved {
            last_nanos: self.last_nanos,
        };
        if let Err(e) = ledger::write_json(&self.path, &saved) {
            tracing::warn!("cannot save the Docker watch's cursor: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cursor_resumes_and_skips_what_it_has_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cursor::load(dir.path(), 5_000_000_000);
        assert_eq!(c.since(), "5");
        c.advance(7_500_000_000);
        let c = Cursor::load(dir.path(), 99_000_000_000);
        assert_eq!(c.since(), "7");
        assert!(!c.is_new(7_500_000_000));
        assert!(c.is_new(7_500_000_001));
    }
}
