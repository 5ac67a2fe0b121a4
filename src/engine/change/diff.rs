//! The change a worktree holds, read against its base: the files with their status and line
//! counts (from `git diff -z`, so that any path, even with newlines or non-UTF-8 bytes, parses),
//! the unified diff text for a reviewer (bounded), and `diff_sha256` over the exact diff bytes,
//! which an approval is later bound to.
//!
//! Every option that changes the diff's bytes is pinned on the command line (prefixes, context,
//! algorithm, rename detection, full blob ids), so that a repository setting cannot make the
//! same change hash differently between proposal and approval. External diff drivers and
//! textconv are off: they would run the repository's commands.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::git::{self, ChangeGit};
use super::worktree::{Worktree, WorktreeError};

/// Options pinned for every diff steward reads.
const PINNED: &[&str] = &[
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--no-relative",
    "--ignore-submodules=none",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "-O/dev/null",
];

/// The unified diff's own options (`--unified` would also add a patch to the listings).
const PATCH: &[&str] = &[
    "--patch",
    "--full-index",
    "--unified=3",
    "--inter-hunk-context=0",
];

/// How much of a diff steward reads.
#[derive(Debug, Clone, Copy)]
pub struct DiffLimits {
    /// Bytes of the unified diff kept as text in the result (the rest: `truncated`).
    pub text_cap: usize,
    /// A diff longer than this is refused ([`WorktreeError::TooLarge`]): its digest must cover
    /// all of it, so it is read whole.
    pub max_bytes: usize,
}

impl Default for DiffLimits {
    fn default() -> Self {
        DiffLimits {
            text_cap: 256 * 1024,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffStatus {
    Added,
    Modified,
    Deleted,
    /// With git's similarity score, 0 to 100.
    Renamed {
        similarity: u8,
    },
    /// E.g. a file became a symlink.
    TypeChanged,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffFile {
    /// The path after the change (relative to the repository), exactly as git has it.
    pub path: PathBuf,
    /// The path before, for a rename.
    pub old_path: Option<PathBuf>,
    pub status: DiffStatus,
    /// Lines added and removed; 0 for a binary file.
    pub added: u64,
    pub removed: u64,
    pub binary: bool,
}

/// The change against the base.
#[derive(Debug, Clone)]
pub struct Diff {
    pub base: String,
    pub head: String,
    pub files: Vec<DiffFile>,
    /// The unified diff, up to [`DiffLimits::text_cap`] bytes (invalid UTF-8 shown as U+FFFD).
    pub text: String,
    pub truncated: bool,
    /// Hex SHA-256 of the whole unified diff's bytes.
    pub diff_sha256: String,
}

impl Worktree {
    /// The change from the base to the worktree's HEAD (commit first: uncommitted edits are not
    /// part of it).
    pub async fn diff(&self, limits: DiffLimits) -> Result<Diff, WorktreeError> {
        let head = self.head().await?;
        diff_between(&self.git, &self.path, &self.base, &head, limits).await
    }
}

/// The change from `base` to `head` (commits of the repository at `dir`, any of its worktrees),
/// read with the pinned options: the same bytes, so the same digest, wherever it is read.
pub async fn diff_between(
    git: &ChangeGit,
    dir: &Path,
    base: &str,
    head: &str,
    limits: DiffLimits,
) -> Result<Diff, WorktreeError> {
    for rev in [base, head] {
        if !is_commit_id(rev) {
            return Err(parse_error("", format!("`{rev}` is not a full commit id")));
        }
    }
    let range = [base, head];
    let numstat = diff_output(git, dir, &["--numstat", "-z"], &range, git::LIST_CAP).await?;
    let names = diff_output(git, dir, &["--name-status", "-z"], &range, git::LIST_CAP).await?;
    let files = merge(parse_name_status(&names)?, parse_numstat(&numstat)?)?;
    let patch = diff_output(git, dir, PATCH, &range, limits.max_bytes).await?;
    let truncated = patch.len() > limits.text_cap;
    let text = String::from_utf8_lossy(&patch[..patch.len().min(limits.text_cap)]).into_owned();
    Ok(Diff {
        base: base.to_string(),
        head: head.to_string(),
        files,
        text,
        truncated,
        diff_sha256: hex::encode(Sha256::digest(&patch)),
    })
}

/// The change as a patch `git apply` takes whole (binary files included), for replaying it
/// onto another commit; the same pinned options as the reviewed diff.
pub async fn patch_between(
    git: &ChangeGit,
    dir: &Path,
    base: &str,
    head: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, WorktreeError> {
    for rev in [base, head] {
        if !is_commit_id(rev) {
            return Err(parse_error("", format!("`{rev}` is not a full commit id")));
        }
    }
    let mut mode = PATCH.to_vec();
    mode.push("--binary");
    diff_output(git, dir, &mode, &[base, head], max_bytes).await
}

/// `git diff <pinned> <mode> base head`.
async fn diff_output(
    git: &ChangeGit,
    dir: &Path,
    mode: &[&str],
    range: &[&str],
    cap: usize,
) -> Result<Vec<u8>, WorktreeError> {
    let mut args = vec![
        "-c",
        "core.quotePath=true",
        "-c",
        "diff.suppressBlankEmpty=false",
        "diff",
    ];
    args.extend_from_slice(PINNED);
    args.extend_from_slice(mode);
    args.extend_from_slice(range);
    args.push("--");
    git.ok_env(dir, &args, &[], cap).await
}

/// A full sha-1 or sha-256 object id: what a record keeps, and never an option to git.
pub fn is_commit_id(rev: &str) -> bool {
    matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `--name-status -z`: `STATUS NUL path NUL`, or `Rnnn NUL old NUL new NUL` for a rename.
fn parse_name_status(out: &[u8]) -> Result<Vec<DiffFile>, WorktreeError> {
    let mut fields = split_z(out);
    let mut files = Vec::new();
    while let Some(status) = fields.next() {
        let status = String::from_utf8_lossy(status).into_owned();
        let mut path = || {
            fields
                .next()
                .map(git::path_from_bytes)
                .ok_or_else(|| parse_error("--name-status", format!("`{status}` without a path")))
        };
        let (status, old_path, path) = match status.as_bytes().first() {
            Some(b'A') => (DiffStatus::Added, None, path()?),
            Some(b'M') => (DiffStatus::Modified, None, path()?),
            Some(b'D') => (DiffStatus::Deleted, None, path()?),
            Some(b'T') => (DiffStatus::TypeChanged, None, path()?),
            Some(b'R') => {
                let similarity = status[1..].parse().map_err(|_| {
                    parse_error("--name-status", format!("bad rename score `{status}`"))
                })?;
                let old = path()?;
                (DiffStatus::Renamed { similarity }, Some(old), path()?)
            }
            // Copies are not asked for; unmerged or unknown entries are not a change steward
            // can judge.
            _ => {
                return Err(parse_error(
                    "--name-status",
                    format!("unexpected status `{status}`"),
                ));
            }
        };
        files.push(DiffFile {
            path,
            old_path,
            status,
            added: 0,
            removed: 0,
            binary: false,
        });
    }
    Ok(files)
}

/// One `--numstat -z` entry: the counts (`None` for binary) and the new path.
type Numstat = (Option<(u64, u64)>, PathBuf);

/// `--numstat -z`: `added TAB removed TAB path NUL`, or for a rename
/// `added TAB removed TAB NUL old NUL new NUL`; a binary file has `-` for both counts.
fn parse_numstat(out: &[u8]) -> Result<Vec<Numstat>, WorktreeError> {
    let mut fields = split_z(out);
    let mut stats = Vec::new();
    while let Some(field) = fields.next() {
        let mut parts = field.splitn(3, |b| *b == b'\t');
        let (Some(added), Some(removed), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(parse_error(
                "--numstat",
                format!(
                    "an entry without two counts: `{}`",
                    String::from_utf8_lossy(field)
                ),
            ));
        };
        let path = if rest.is_empty() {
            // A rename: the old path, then the new one.
            fields.next();
            fields.next()
        } else {
            Some(rest)
        }
        .map(git::path_from_bytes)
        .ok_or_else(|| parse_error("--numstat", "a rename without its paths".into()))?;
        let counts = match (added, removed) {
            (b"-", b"-") => None,
            _ => Some((count(added)?, count(removed)?)),
        };
        stats.push((counts, path));
    }
    Ok(stats)
}

/// The two listings describe the same files in the same order; anything else is refused.
fn merge(mut files: Vec<DiffFile>, stats: Vec<Numstat>) -> Result<Vec<DiffFile>, WorktreeError> {
    if files.len() != stats.len() {
        return Err(parse_error(
            "diff",
            format!(
                "--name-status lists {} files, --numstat {}",
                files.len(),
                stats.len()
            ),
        ));
    }
    for (file, (counts, path)) in files.iter_mut().zip(stats) {
        if file.path != path {
            return Err(parse_error(
                "diff",
                format!(
                    "--name-status and --numstat disagree: {} vs {}",
                    file.path.display(),
                    path.display()
                ),
            ));
        }
        match counts {
            Some((added, removed)) => (file.added, file.removed) = (added, removed),
            None => file.binary = true,
        }
    }
    Ok(files)
}

/// The NUL-terminated fields of `-z` output (a trailing NUL ends the last one).
fn split_z(out: &[u8]) -> impl Iterator<Item = &[u8]> {
    out.strip_suffix(b"\0")
        .unwrap_or(out)
        .split(|b| *b == 0)
        .filter(|_| !out.is_empty())
}

fn count(field: &[u8]) -> Result<u64, WorktreeError> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            parse_error(
                "--numstat",
                format!("bad count `{}`", String::from_utf8_lossy(field)),
            )
        })
}

fn parse_error(command: &str, detail: String) -> WorktreeError {
    WorktreeError::Parse {
        command: format!("diff {command}"),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_listings_keep_newlines_tabs_and_non_utf8_in_paths() {
        let names = b"M\0a\nb\0R087\0old name\0new\tname\0A\0\xff\xfe.bin\0";
        let stats = b"1\t2\ta\nb\x003\t0\t\0old name\0new\tname\0-\t-\t\xff\xfe.bin\0";
        let files = merge(
            parse_name_status(names).unwrap(),
            parse_numstat(stats).unwrap(),
        )
        .unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].path, PathBuf::from("a\nb"));
        assert_eq!((files[0].added, files[0].removed), (1, 2));
        assert_eq!(files[1].status, DiffStatus::Renamed { similarity: 87 });
        assert_eq!(files[1].old_path, Some(PathBuf::from("old name")));
        assert_eq!(files[1].path, PathBuf::from("new\tname"));
        assert!(files[2].binary);
        assert_eq!(files[2].path, git::path_from_bytes(b"\xff\xfe.bin"));
    }

    #[test]
    fn empty_and_disagreeing_listings() {
        assert!(parse_name_status(b"").unwrap().is_empty());
        assert!(parse_numstat(b"").unwrap().is_empty());
        let names = parse_name_status(b"M\0a\0").unwrap();
        let stats = parse_numstat(b"1\t1\tb\0").unwrap();
        assert!(merge(names, stats).is_err());
        assert!(parse_name_status(b"U\0a\0").is_err());
        assert!(parse_name_status(b"M\0").is_err());
    }
}
