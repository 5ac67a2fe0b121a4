//! The rendered page of a finished run, kept while nothing it was drawn from changes: rendering
//! the incident report (tool calls, outputs, checks) is most of the page's cost, and a finished
//! run's record never changes except for the state of the actions it filed.
//!
//! A page is reused only while its stamp holds: every file of the run directory (name, inode,
//! size, modification time: the ledger replaces files by rename, so a rewrite is a new inode)
//! and the modification time of each directory of the action store (an action changes state by
//! moving between them). A run without `result.json` (still going, or crashed) is never cached.
//! The session's CSRF token is the only per-session text; the page is rendered with a marker in
//! its place, random per daemon so that no run output can forge it, and the token is put back per
//! request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Pages kept at most; the oldest entry goes first.
const MAX_PAGES: usize = 64;
/// A page larger than this is rendered every time rather than held in memory.
const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// What one file or directory looked like when the page was drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::daemon::server) struct Seen {
    name: PathBuf,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

pub(in crate::daemon::server) type Stamp = Vec<Seen>;

struct Entry {
    stamp: Stamp,
    /// The page split at the CSRF marker.
    parts: Arc<Vec<String>>,
    used: u64,
}

pub(in crate::daemon::server) struct RunPageCache {
    marker: String,
    entries: Mutex<(u64, HashMap<String, Entry>)>,
}

impl Default for RunPageCache {
    fn default() -> Self {
        RunPageCache {
            marker: format!("csrf{}", uuid::Uuid::new_v4().simple()),
            entries: Mutex::new((0, HashMap::new())),
        }
    }
}

impl RunPageCache {
    /// The text to render in place of the session's CSRF token.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The stamp of a finished run's page, or `None` when the run may still change (no
    /// `result.json`) or a file cannot be looked at.
    pub fn stamp(run_dir: &Path, action_dirs: &[PathBuf]) -> Option<Stamp> {
        if !run_dir.join("result.json").is_file() {
            return None;
        }
        let mut stamp = Vec::new();
        for entry in std::fs::read_dir(run_dir).ok()? {
            let entry = entry.ok()?;
            stamp.push(seen(entry.file_name().into(), &entry.metadata().ok()?));
        }
        stamp.sort_by(|a, b| a.name.cmp(&b.name));
        for dir in action_dirs {
            // A state directory not made yet is part of the stamp as absent.
            match std::fs::metadata(dir) {
                Ok(m) => stamp.push(seen(dir.clone(), &m)),
                Err(_) => stamp.push(Seen {
                    name: dir.clone(),
                    inode: 0,
                    len: 0,
                    modified: None,
                }),
            }
        }
        Some(stamp)
    }

    /// The page for `csrf` if it was drawn with the same stamp.
    pub fn get(&self, id: &str, stamp: &Stamp, csrf: &str) -> Option<String> {
        let parts = {
            let mut guard = self.entries.lock().ok()?;
            let (clock, entries) = &mut *guard;
            *clock += 1;
            let entry = entries.get_mut(id).filter(|e| &e.stamp == stamp)?;
            entry.used = *clock;
            Arc::clone(&entry.parts)
        };
        Some(parts.join(csrf))
    }

    /// Keeps a page drawn with the marker for the CSRF token.
    pub fn put(&self, id: &str, stamp: Stamp, html: &str) {
        if html.len() > MAX_PAGE_BYTES {
            return;
        }
        let parts: Vec<String> = html.split(&self.marker).map(str::to_string).collect();
        let Ok(mut guard) = self.entries.lock() else {
            return;
        };
        let (clock, entries) = &mut *guard;
        *clock += 1;
        if entries.len() >= MAX_PAGES && !entries.contains_key(id) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(
            id.to_string(),
            Entry {
                stamp,
                parts: Arc::new(parts),
                used: *clock,
            },
        );
    }
}

fn seen(name: PathBuf, m: &std::fs::Metadata) -> Seen {
    use std::os::unix::fs::MetadataExt;
    Seen {
        name,
        inode: m.ino(),
        len: m.len(),
        modified: m.modified().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished_run() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("result.json"), "{}").unwrap();
        std::fs::write(d.path().join("audit.jsonl"), "a\n").unwrap();
        d
    }

    #[test]
    fn a_running_run_has_no_stamp() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("run.json"), "{}").unwrap();
        assert!(RunPageCache::stamp(d.path(), &[]).is_none());
    }

    #[test]
    fn the_page_comes_back_with_each_sessions_token() {
        let cache = RunPageCache::default();
        let run = finished_run();
        let stamp = RunPageCache::stamp(run.path(), &[]).unwrap();
        let page = format!("<form><input value=\"{}\"></form>", cache.marker());
        cache.put("r1", stamp.clone(), &page);
        assert_eq!(
            cache.get("r1", &stamp, "tokA").unwrap(),
            "<form><input value=\"tokA\"></form>"
        );
        assert_eq!(
            cache.get("r1", &stamp, "tokB").unwrap(),
            "<form><input value=\"tokB\"></form>"
        );
        assert!(cache.get("r2", &stamp, "tokA").is_none());
    }

    #[test]
    fn a_changed_file_or_a_moved_action_draws_the_page_anew() {
        let cache = RunPageCache::default();
        let run = finished_run();
        let actions = tempfile::tempdir().unwrap();
        let pending = actions.path().join("pending");
        let approved = actions.path().join("approved");
        std::fs::create_dir(&pending).unwrap();
        let dirs = [pending.clone(), approved.clone()];
        let stamp = RunPageCache::stamp(run.path(), &dirs).unwrap();
        cache.put("r1", stamp, "page");

        std::fs::write(run.path().join("audit.jsonl"), "a\nb\n").unwrap();
        let grown = RunPageCache::stamp(run.path(), &dirs).unwrap();
        assert!(cache.get("r1", &grown, "t").is_none(), "an appended file");
        cache.put("r1", grown.clone(), "page");
        assert!(cache.get("r1", &grown, "t").is_some());

        std::fs::create_dir(&approved).unwrap();
        let moved = RunPageCache::stamp(run.path(), &dirs).unwrap();
        assert!(
            cache.get("r1", &moved, "t").is_none(),
            "a state directory made"
        );
    }

    #[test]
    fn the_cache_holds_a_bounded_number_of_pages() {
        let cache = RunPageCache::default();
        let run = finished_run();
        let stamp = RunPageCache::stamp(run.path(), &[]).unwrap();
        for i in 0..MAX_PAGES + 10 {
            cache.put(&format!("r{i}"), stamp.clone(), "p");
        }
        let held = cache.entries.lock().unwrap().1.len();
        assert_eq!(held, MAX_PAGES);
        assert!(
            cache
                .get(&format!("r{}", MAX_PAGES + 9), &stamp, "t")
                .is_some()
        );
        assert!(
            cache.get("r0", &stamp, "t").is_none(),
            "the oldest went first"
        );
    }
}
