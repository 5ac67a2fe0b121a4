//! What steward's diff check needs beyond the diff listing: each changed file's mode and size
//! after the change and, for a symlink, its target, read from the committed tree with
//! `git ls-tree -z -l` and `git cat-file` (never from the worktree's files, which the agent
//! could change after the commit).

use std::collections::HashMap;

use super::diff::{Diff, DiffFile, DiffStatus};
use super::diff_check::{ChangedFile, FileStatus, Reason, Refusal, SYMLINK_MODE};
use super::worktree::{Worktree, WorktreeError};

/// Longest symlink target read (PATH_MAX).
const TARGET_CAP: usize = 4096;

/// One entry of `ls-tree -l`: mode, object id, size (`None` for a submodule).
struct Entry {
    mode: u32,
    object: String,
    size: Option<u64>,
}

impl Worktree {
    /// The diff's files as the diff check takes them. A path that is not UTF-8 cannot be judged
    /// against globs: it is returned as a refusal.
    pub async fn changed_files(
        &self,
        diff: &Diff,
    ) -> Result<(Vec<ChangedFile>, Vec<Refusal>), WorktreeError> {
        let listing = self
            .git
            .ok(
                &self.path,
                &["ls-tree", "-r", "-z", "-l", "--full-tree", &diff.head],
            )
            .await?;
        let entries = parse_ls_tree(&listing)?;
        let (mut files, mut refusals) = (Vec::new(), Vec::new());
        for f in &diff.files {
            let Some(path) = f.path.to_str() else {
                let shown = f.path.to_string_lossy().into_owned();
                refusals.push(Refusal {
                    path: shown,
                    reason: Reason::BadPath("the path is not UTF-8"),
                });
                continue;
            };
            let entry = entries.get(path.as_bytes());
            let mut file = changed_file(f, path, entry);
            if let Some(e) = entry.filter(|e| e.mode == SYMLINK_MODE) {
                file.symlink_target = self.symlink_target(&e.object).await?;
            }
            files.push(file);
        }
        Ok((files, refusals))
    }

    /// The blob's content as a symlink target; `None` when it is not text or too long.
    async fn symlink_target(&self, object: &str) -> Result<Option<String>, WorktreeError> {
        let out = self
            .git
            .ok_env(
                &self.path,
                &["cat-file", "blob", object],
                &[],
                TARGET_CAP + 1,
            )
            .await;
        match out {
            Ok(bytes) => Ok(String::from_utf8(bytes).ok()),
            Err(WorktreeError::TooLarge { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn changed_file(f: &DiffFile, path: &str, entry: Option<&Entry>) -> ChangedFile {
    let old = || {
        f.old_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let status = match f.status {
        DiffStatus::Added => FileStatus::Added,
        DiffStatus::Modified => FileStatus::Modified,
        DiffStatus::Deleted => FileStatus::Deleted,
        DiffStatus::TypeChanged => FileStatus::TypeChanged,
        DiffStatus::Renamed { .. } => FileStatus::Renamed { from: old() },
    };
    let live = f.status != DiffStatus::Deleted;
    ChangedFile {
        path: path.to_string(),
        status,
        added: f.added,
        removed: f.removed,
        binary: f.binary,
        mode: entry.filter(|_| live).map(|e| e.mode),
        symlink_target: None,
        size: entry.filter(|_| live).and_then(|e| e.size),
    }
}

/// `ls-tree -z -l`: `MODE SP TYPE SP OBJECT SP+ SIZE TAB PATH NUL`.
fn parse_ls_tree(out: &[u8]) -> Result<HashMap<Vec<u8>, Entry>, WorktreeError> {
    let mut map = HashMap::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let bad = || WorktreeError::Parse {
            command: "ls-tree -l".into(),
            detail: format!("unexpected entry `{}`", String::from_utf8_lossy(record)),
        };
        let tab = record.iter().position(|b| *b == b'\t').ok_or_else(bad)?;
        let (meta, path) = (&record[..tab], &record[tab + 1..]);
        let meta = std::str::from_utf8(meta).map_err(|_| bad())?;
        let mut words = meta.split_whitespace();
        let (Some(mode), Some(_kind), Some(object), Some(size)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| bad())?;
        let size = if size == "-" {
            None
        } else {
            Some(size.parse().map_err(|_| bad())?)
        };
        let entry = Entry {
            mode,
            object: object.to_string(),
            size,
        };
        map.insert(path.to_vec(), entry);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_entries_parse_modes_sizes_and_odd_paths() {
        let out = b"100644 blob 1111111111111111111111111111111111111111      12\ta b\n\x00120000 blob 2222222222222222222222222222222222222222       9\tlink\x00160000 commit 3333333333333333333333333333333333333333       -\tsub\0";
        let map = parse_ls_tree(out).unwrap();
        assert_eq!(map[b"a b\n".as_slice()].size, Some(12));
        assert_eq!(map[b"link".as_slice()].mode, SYMLINK_MODE);
        assert_eq!(map[b"sub".as_slice()].size, None);
        assert!(parse_ls_tree(b"100644 blob x\tno-size\0").is_err());
        assert!(parse_ls_tree(b"garbage\0").is_err());
    }
}
