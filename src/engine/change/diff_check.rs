//! steward's own judgement of a change's diff, independent of the hook (issue 12, item 3).
//!
//! The hook sees tool calls; this sees what actually changed in the worktree, however it got
//! there (a tool the hook allowed, a validator that wrote files, a path the hook's view missed).
//! A diff is refused when a path (or a rename's old path) is outside the goal's `edit` globs or
//! protected, when it adds a symlink leaving the workspace or pointing at a protected path, when
//! an added line carries a secret (the redactor's token shapes and private keys), when a binary
//! file's content cannot be checked, or when it exceeds the size limits below. Anything it
//! cannot interpret is refused, never passed.

use crate::base::redact;
use crate::defs::change::{ChangeSpec, ProtectedPaths, check_relative, protected_by};

/// git's file mode of a symlink (octal), as `git diff --raw` shows it.
pub const SYMLINK_MODE: u32 = 0o120000;
/// At most 200 files in one change: a change to an infrastructure repo that a person can review.
pub const MAX_FILES: usize = 200;
/// At most 5 000 lines added plus removed over the whole change.
pub const MAX_CHANGED_LINES: u64 = 5_000;
/// At most 1 MiB of unified diff text.
pub const MAX_DIFF_BYTES: usize = 1024 * 1024;
/// At most 512 KiB for any one file after the change.
pub const MAX_FILE_BYTES: u64 = 512 * 1024;

/// How a file changed, as `git diff --name-status` says (`A`, `M`, `D`, `R`, `C`, `T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed { from: String },
    Copied { from: String },
    TypeChanged,
}

/// One changed file. Paths are relative to the workspace, as git prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: String,
    pub status: FileStatus,
    pub added: u64,
    pub removed: u64,
    pub binary: bool,
    /// The new file mode (octal, e.g. `0o100644`, [`SYMLINK_MODE`]); `None` for a deletion.
    pub mode: Option<u32>,
    /// A symlink's target text (the blob's content), needed when `mode` is a symlink.
    pub symlink_target: Option<String>,
    /// The file's size in bytes after the change, where known.
    pub size: Option<u64>,
}

/// A diff that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffVerdict {
    /// Nothing changed: not a refusal, and nothing to validate or apply.
    NoChange,
    Change,
}

/// Why a path (or the whole change) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("not a workspace path steward can interpret: {0}")]
    BadPath(&'static str),
    #[error("outside the change's `edit` globs")]
    OutsideEdit,
    #[error("a rename from `{0}`, which is outside the change's `edit` globs")]
    RenamedFromOutsideEdit(String),
    #[error("protected (`{0}`)")]
    Protected(String),
    #[error("a rename or copy from `{from}`, which is protected (`{rule}`)")]
    FromProtected { from: String, rule: String },
    #[error("a symlink to `{0}`, outside the workspace")]
    SymlinkOutside(String),
    #[error("a symlink to `{target}`, which is protected (`{rule}`)")]
    SymlinkProtected { target: String, rule: String },
    #[error("a symlink whose target is unknown or unreadable")]
    SymlinkUnknown,
    #[error("line {line} adds a secret ({kind})")]
    Secret { line: u64, kind: &'static str },
    #[error("a binary file: its content cannot be checked for secrets")]
    Binary,
    #[error("{size} bytes, over the limit of {max} for one file")]
    FileTooLarge { size: u64, max: u64 },
    #[error("{count} files changed, over the limit of {max}")]
    TooManyFiles { count: usize, max: usize },
    #[error("{count} lines changed, over the limit of {max}")]
    TooManyLines { count: u64, max: u64 },
    #[error("a diff of {bytes} bytes, over the limit of {max}")]
    DiffTooLarge { bytes: usize, max: usize },
    #[error("the diff cannot be read: {0}")]
    UnreadableDiff(String),
}

/// One refusal. `path` is empty when the reason is about the whole change (a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub reason: Reason,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "the change: {}", self.reason)
        } else {
            write!(f, "`{}`: {}", self.path, self.reason)
        }
    }
}

fn refusal(path: &str, reason: Reason) -> Refusal {
    Refusal {
        path: path.to_string(),
        reason,
    }
}

/// Judges a change: `files` as git lists them against the base, `diff` the unified diff
/// (`git diff BASE HEAD`, default `a/` `b/` prefixes). Every refusal is returned, not only the
/// first, so the record and the agent's repair round see all of them.
pub fn check(
    spec: &ChangeSpec,
    protected: &ProtectedPaths,
    files: &[ChangedFile],
    diff: &str,
) -> Result<DiffVerdict, Vec<Refusal>> {
    if files.is_empty() {
        if diff.trim().is_empty() {
            return Ok(DiffVerdict::NoChange);
        }
        let why = "a diff with no changed files listed".to_string();
        return Err(vec![refusal("", Reason::UnreadableDiff(why))]);
    }
    let mut out = check_limits(files, diff);
    for f in files {
        out.extend(check_file(spec, protected, f));
    }
    out.extend(check_secrets(diff));
    if out.is_empty() {
        Ok(DiffVerdict::Change)
    } else {
        Err(out)
    }
}

/// The limits of the whole change.
fn check_limits(files: &[ChangedFile], diff: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    if files.len() > MAX_FILES {
        let (count, max) = (files.len(), MAX_FILES);
        out.push(refusal("", Reason::TooManyFiles { count, max }));
    }
    let lines: u64 = files
        .iter()
        .map(|f| f.added.saturating_add(f.removed))
        .fold(0, u64::saturating_add);
    if lines > MAX_CHANGED_LINES {
        let (count, max) = (lines, MAX_CHANGED_LINES);
        out.push(refusal("", Reason::TooManyLines { count, max }));
    }
    if diff.len() > MAX_DIFF_BYTES {
        let (bytes, max) = (diff.len(), MAX_DIFF_BYTES);
        out.push(refusal("", Reason::DiffTooLarge { bytes, max }));
    }
    out
}

/// One file: its path (and a rename's or copy's source), its kind and its size.
fn check_file(spec: &ChangeSpec, protected: &ProtectedPaths, f: &ChangedFile) -> Vec<Refusal> {
    let mut out = Vec::new();
    if let Err(why) = check_relative(&f.path) {
        return vec![refusal(&f.path, Reason::BadPath(why))];
    }
    if let Some(rule) = protected_by(&f.path, protected) {
        out.push(refusal(&f.path, Reason::Protected(rule)));
    } else if !spec.allows(&f.path) {
        out.push(refusal(&f.path, Reason::OutsideEdit));
    }
    out.extend(check_source(spec, protected, f));
    if f.status == FileStatus::Deleted {
        return out;
    }
    if f.mode == Some(SYMLINK_MODE) {
        out.extend(check_symlink(protected, f));
    } else if f.binary {
        out.push(refusal(&f.path, Reason::Binary));
    }
    if let Some(size) = f.size.filter(|s| *s > MAX_FILE_BYTES) {
        let max = MAX_FILE_BYTES;
        out.push(refusal(&f.path, Reason::FileTooLarge { size, max }));
    }
    out
}

/// A rename removes its source, so the source must be editable too; a copy only reads it, but
/// copying a protected file (git config, Claude settings) into the repo is refused as well.
fn check_source(spec: &ChangeSpec, protected: &ProtectedPaths, f: &ChangedFile) -> Vec<Refusal> {
    let (from, renamed) = match &f.status {
        FileStatus::Renamed { from } => (from, true),
        FileStatus::Copied { from } => (from, false),
        _ => return Vec::new(),
    };
    if let Err(why) = check_relative(from) {
        return vec![refusal(from, Reason::BadPath(why))];
    }
    if let Some(rule) = protected_by(from, protected) {
        let from = from.clone();
        return vec![refusal(&f.path, Reason::FromProtected { from, rule })];
    }
    if renamed && !spec.allows(from) {
        return vec![refusal(
            &f.path,
            Reason::RenamedFromOutsideEdit(from.clone()),
        )];
    }
    Vec::new()
}

/// A symlink must stay inside the workspace and not point at a protected path: otherwise a later
/// read or write through it (by a validator, by the apply) reaches what the change may not touch.
fn check_symlink(protected: &ProtectedPaths, f: &ChangedFile) -> Option<Refusal> {
    let Some(target) = f.symlink_target.as_deref() else {
        return Some(refusal(&f.path, Reason::SymlinkUnknown));
    };
    if target.is_empty() || target.contains('\0') {
        return Some(refusal(&f.path, Reason::SymlinkUnknown));
    }
    let Some(resolved) = resolve_link(&f.path, target) else {
        return Some(refusal(&f.path, Reason::SymlinkOutside(target.to_string())));
    };
    let rule = protected_by(&resolved, protected)?;
    let target = target.to_string();
    Some(refusal(&f.path, Reason::SymlinkProtected { target, rule }))
}

/// The workspace-relative path a link at `link` with `target` names, lexically (the worktree
/// may not exist any more when the record is judged again); `None` when it leaves the workspace.
fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').filter(|c| !c.is_empty()).collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// Every added line that carries a secret, named by its file and its line in the new file.
fn check_secrets(diff: &str) -> Vec<Refusal> {
    match added_lines(diff) {
        Ok(lines) => lines
            .into_iter()
            .filter_map(|a| {
                let kind = redact::find_secret(a.text)?;
                Some(refusal(&a.path, Reason::Secret { line: a.line, kind }))
            })
            .collect(),
        Err(why) => vec![refusal("", Reason::UnreadableDiff(why))],
    }
}

/// One `+` line of a hunk.
#[derive(Debug, PartialEq, Eq)]
struct Added<'a> {
    path: String,
    line: u64,
    text: &'a str,
}

/// The hunk being read: lines still expected on each side, and the next new-file line number.
#[derive(Default)]
struct Hunk {
    old_left: u64,
    new_left: u64,
    next: u64,
}

/// The added lines of a unified diff. Hunk lines are counted from their headers, so an added
/// line that itself starts with `++` is never mistaken for a file header.
fn added_lines(diff: &str) -> Result<Vec<Added<'_>>, String> {
    let mut out = Vec::new();
    let mut path: Option<String> = None;
    let mut h = Hunk::default();
    for line in diff.lines() {
        if h.old_left > 0 || h.new_left > 0 {
            hunk_line(&mut h, line, path.as_deref(), &mut out)?;
        } else if let Some(p) = line.strip_prefix("+++ ") {
            path = Some(new_path(p));
        } else if line.starts_with("@@") {
            if path.is_none() {
                return Err("a hunk before its `+++` header".into());
            }
            h = hunk_header(line).ok_or_else(|| format!("bad hunk header `{line}`"))?;
        } else if line.starts_with("diff ") {
            path = None;
        }
    }
    if h.old_left > 0 || h.new_left > 0 {
        return Err("the diff ends inside a hunk".into());
    }
    Ok(out)
}

fn hunk_line<'a>(
    h: &mut Hunk,
    line: &'a str,
    path: Option<&str>,
    out: &mut Vec<Added<'a>>,
) -> Result<(), String> {
    match line.as_bytes().first() {
        Some(b'+') => {
            let path = path.unwrap_or_default().to_string();
            out.push(Added {
                path,
                line: h.next,
                text: &line[1..],
            });
            h.new_left = h.new_left.saturating_sub(1);
            h.next += 1;
        }
        Some(b'-') => h.old_left = h.old_left.saturating_sub(1),
        // Context; some tools strip the space of an empty context line.
        Some(b' ') | None => {
            h.old_left = h.old_left.saturating_sub(1);
            h.new_left = h.new_left.saturating_sub(1);
            h.next += 1;
        }
        Some(b'\\') => {}
        Some(_) => return Err(format!("unexpected line in a hunk: `{line}`")),
    }
    Ok(())
}

/// `+++ b/path` → `path`; `/dev/null` for a deletion stays as it is (no lines are added).
fn new_path(p: &str) -> String {
    let p = p.trim_end_matches('\t');
    let p = p
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(p);
    p.strip_prefix("b/").unwrap_or(p).to_string()
}

/// `@@ -a,b +c,d @@ ...` (a count of 1 may be left out).
fn hunk_header(line: &str) -> Option<Hunk> {
    let mut words = line.split_whitespace().skip(1);
    let (_, old_left) = range(words.next()?.strip_prefix('-')?)?;
    let (start, new_left) = range(words.next()?.strip_prefix('+')?)?;
    Some(Hunk {
        old_left,
        new_left,
        next: start.max(1),
    })
}

fn range(s: &str) -> Option<(u64, u64)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

#[cfg(test)]
mod tests;
