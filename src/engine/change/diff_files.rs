//! A change's files as the record keeps them ([`ChangeFile`]: status and line counts, for the
//! operator). What the diff check needs (modes, sizes, symlink targets) is `tree_info.rs`.

use super::diff::{Diff, DiffStatus};
use super::record::ChangeFile;

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
