//! A change's files in the two shapes steward keeps them: the record's [`ChangeFile`] (status
//! and counts, for the operator) and the diff check's [`ChangedFile`] (with each file's mode,
//! size and symlink target, read from the head commit's tree, for steward's judgement).

use std::path::Path;

use super::diff::{Diff, DiffFile, DiffStatus};
use super::diff_check::{ChangedFile, FileStatus, SYMLINK_MODE};
use super::git::{self, ChangeGit};
use super::record::ChangeFile;
use super::worktree::WorktreeError;

/// A symlink's target is a path: more than this is not one steward reads.
const LINK_TARGET_CAP: usize = 4096;

/// The record's view of the diff's files.
pub fn record_files(diff: &Diff) -> Vec<ChangeFile> {
    diff.files
        .iter()
        .map(|f| ChangeFile {
            path: f.path.to_string_lossy().into_owned(),
            status: status_name(&f.status).to_string(),
            old_path: f
                .old_path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            added: f.added,
            removed: f.removed,
            binary: f.binary,
        })
        .collect()
}

/// The names the record uses for a status.
pub fn status_name(status: &DiffStatus) -> &'static str {
    match status {
        DiffStatus::Added => "added",
        DiffStatus::Modified => "modified",
        DiffStatus::Deleted => "deleted",
        DiffStatus::Renamed { .. } => "renamed",
        DiffStatus::TypeChanged => "type_changed",
    }
}

/// The diff's files as the diff check needs them: mode, size and a symlink's target are read
/// from `diff.head`'s tree in the repository at `dir`. A path that is not UTF-8 is an error:
/// the check's rules are text, and a path they cannot read is never passed.
pub async fn changed_files(
    git: &ChangeGit,
    dir: &Path,
    diff: &Diff,
) -> Result<Vec<ChangedFile>, WorktreeError> {
    let mut out = Vec::with_capacity(diff.files.len());
    for f in &diff.files {
        out.push(changed_file(git, dir, &diff.head, f).await?);
    }
    Ok(out)
}

async fn changed_file(
    git: &ChangeGit,
    dir: &Path,
    head: &str,
    f: &DiffFile,
) -> Result<ChangedFile, WorktreeError> {
    let path = text(&f.path)?.to_string();
    let status = match &f.status {
        DiffStatus::Added => FileStatus::Added,
        DiffStatus::Modified => FileStatus::Modified,
        DiffStatus::Deleted => FileStatus::Deleted,
        DiffStatus::TypeChanged => FileStatus::TypeChanged,
        DiffStatus::Renamed { .. } => FileStatus::Renamed {
            from: f
                .old_path
                .as_deref()
                .map(text)
                .transpose()?
                .unwrap_or("")
                .to_string(),
        },
    };
    let mut file = ChangedFile {
        path,
        status,
        added: f.added,
        removed: f.removed,
        binary: f.binary,
        mode: None,
        symlink_target: None,
        size: None,
    };
    if file.status == FileStatus::Deleted {
        return Ok(file);
    }
    let entry = tree_entry(git, dir, head, &file.path).await?;
    file.mode = Some(entry.mode);
    file.size = entry.size;
    if entry.mode == SYMLINK_MODE {
        let target = git
            .ok_env(
                dir,
                &["cat-file", "blob", &entry.object],
                &[],
                LINK_TARGET_CAP,
            )
            .await?;
        file.symlink_target = String::from_utf8(target).ok();
    }
    Ok(file)
}

/// One `ls-tree -l` entry.
struct TreeEntry {
    mode: u32,
    object: String,
    size: Option<u64>,
}

/// `git ls-tree -l -z HEAD -- PATH` (the path literal, never a pattern): `mode type object
/// size TAB path`.
async fn tree_entry(
    git: &ChangeGit,
    dir: &Path,
    head: &str,
    path: &str,
) -> Result<TreeEntry, WorktreeError> {
    let args = ["ls-tree", "-l", "-z", "--full-tree", head, "--", path];
    let out = git
        .ok_env(dir, &args, &[("GIT_LITERAL_PATHSPECS", "1")], git::LIST_CAP)
        .await?;
    let bad = |detail: String| WorktreeError::Parse {
        command: "ls-tree".into(),
        detail,
    };
    let entry = out.split(|b| *b == 0).next().unwrap_or_default();
    let text = String::from_utf8_lossy(entry);
    let (meta, _) = text
        .split_once('\t')
        .ok_or_else(|| bad(format!("no entry for `{path}` in {head}")))?;
    let words: Vec<&str> = meta.split_whitespace().collect();
    let [mode, _kind, object, size] = words[..] else {
        return Err(bad(format!("unexpected entry `{meta}`")));
    };
    let mode = u32::from_str_radix(mode, 8).map_err(|_| bad(format!("bad mode `{mode}`")))?;
    Ok(TreeEntry {
        mode,
        object: object.to_string(),
        // `-` for a submodule: no size.
        size: size.parse().ok(),
    })
}

fn text(path: &Path) -> Result<&str, WorktreeError> {
    path.to_str().ok_or_else(|| WorktreeError::NonUtf8Path {
        path: path.to_path_buf(),
    })
}
