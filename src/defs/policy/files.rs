//! Paths: resolution (symlinks included), roots, secrets and protected files. Used by the file
//! tools and by the Bash walker (path arguments and redirections) alike, so both see one rule.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::model::{Policy, PolicyDecision};
use super::pattern::{ArgWord, PathCheck, wild_match};

/// Why a path is refused. The messages are the deny reasons the audit records.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("path contains NUL")]
    Nul,
    #[error("a path longer than {} bytes (PATH_MAX) is not checked", MAX_PATH)]
    TooLongToCheck,
    #[error("`{0}`: paths starting with `~` are not accepted")]
    Tilde(String),
    #[error("`{0}`: `..` is not accepted in paths")]
    DotDot(String),
    #[error("`{0}`: cannot make the path absolute")]
    NotAbsolutePath(String),
    #[error("a path longer than {} bytes (PATH_MAX) is not resolved", MAX_PATH)]
    TooLongToResolve,
    #[error("`{}` is not an absolute path", .0.display())]
    NotAbsolute(PathBuf),
    #[error("`{}` exists but cannot be resolved (dangling symlink or no permission)", .0.display())]
    Unresolvable(PathBuf),
    #[error("`{raw}` is a secret path (matches `{secret}`)")]
    Secret { raw: String, secret: String },
    #[error("`{raw}` resolves to `{}`, a secret path (matches `{secret}`)", .real.display())]
    ResolvesToSecret {
        raw: String,
        real: PathBuf,
        secret: String,
    },
    /// `roots` is the list as shown: `a, b`.
    #[error("`{raw}` (resolved `{}`) is outside the {what} roots ({roots})", .real.display())]
    OutsideRoots {
        raw: String,
        real: PathBuf,
        what: &'static str,
        roots: String,
    },
    #[error(
        "`{raw}` (resolved `{}`) is in the change's worktree or the live workspace: a change \
         run edits files with Edit/Write only, never through the shell", .real.display()
    )]
    ChangeTree { raw: String, real: PathBuf },
    #[error("`{raw}` is protected from writes (`{name}`)")]
    Protected { raw: String, name: String },
    #[error("`{0}`: an FSPATH must be an absolute path (like `/var/log`)")]
    FsPathRelative(String),
    #[error("path supplied at run time cannot be checked")]
    RunTime,
    #[error("glob `{0}` where an FSPATH is expected: name one directory (e.g. `du -x -d1 DIR`)")]
    FsPathGlob(String),
    #[error("glob `{0}` needs a directory part (`./{0}`)")]
    GlobNoDir(String),
    #[error("glob `{0}`: only `*` and `?` in the last component, not matching dot-files")]
    GlobShape(String),
    #[error("glob `{text}`: {source}")]
    GlobDir {
        text: String,
        source: std::io::Error,
    },
}

/// Reading or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Lexically absolute and `.`-free; `..` is refused outright rather than reasoned about, because
/// a `..` after a symlink means something else to the kernel than to a string.
pub(super) fn absolute(raw: &str, cwd: &Path) -> Result<PathBuf, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if raw.contains('\0') {
        return Err(PathError::Nul);
    }
    if raw.len() > MAX_PATH {
        return Err(PathError::TooLongToCheck);
    }
    if raw.starts_with('~') {
        return Err(PathError::Tilde(raw.to_string()));
    }
    let p = Path::new(raw);
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                return Err(PathError::DotDot(raw.to_string()));
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if !out.is_absolute() {
        return Err(PathError::NotAbsolutePath(raw.to_string()));
    }
    Ok(out)
}

/// Longest path resolved: the kernel's `PATH_MAX`. No file operation can use a longer one.
pub const MAX_PATH: usize = 4096;

/// Resolves symlinks; for a path that does not exist yet, resolves the deepest existing parent.
/// Something that exists but cannot be resolved (a dangling symlink, no permission) is refused:
/// writing through a dangling link would create its target wherever it points.
///
/// The deepest existing prefix is found by bisection: a prefix exists only if every shorter one
/// does, so a path of n components costs O(log n) lookups, not one per component.
pub fn resolve(abs: &Path) -> Result<PathBuf, PathError> {
    if abs.as_os_str().len() > MAX_PATH {
        return Err(PathError::TooLongToResolve);
    }
    if !abs.is_absolute() {
        return Err(PathError::NotAbsolute(abs.to_path_buf()));
    }
    let comps: Vec<Component> = abs.components().collect();
    let prefix = |k: usize| comps[..k].iter().collect::<PathBuf>();
    let exists = |k: usize| fs::symlink_metadata(prefix(k)).is_ok();
    // Invariant: prefix `lo` exists (the root always does), prefix `hi + 1` does not.
    let (mut lo, mut hi) = (1, comps.len());
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if exists(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let existing = prefix(lo);
    let mut real = fs::canonicalize(&existing).map_err(|_| PathError::Unresolvable(existing))?;
    for c in &comps[lo..] {
        real.push(c.as_os_str());
    }
    Ok(real)
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// Does `path` (absolute) hit a secret pattern? Returns the pattern.
pub fn secret_match<'a>(secrets: &'a [String], path: &Path) -> Option<&'a str> {
    let comps = components(path);
    secrets.iter().map(String::as_str).find(|pat| {
        if let Some(abs) = pat.strip_prefix('/') {
            let pc: Vec<&str> = abs.split('/').filter(|s| !s.is_empty()).collect();
            pc.len() <= comps.len() && pc.iter().zip(&comps).all(|(p, c)| wild_match(p, c))
        } else {
            let seq = pat.strip_prefix("~/").unwrap_or(pat);
            let pc: Vec<&str> = seq.split('/').filter(|s| !s.is_empty()).collect();
            !pc.is_empty()
                && comps
                    .windows(pc.len())
                    .any(|w| pc.iter().zip(w).all(|(p, c)| wild_match(p, c)))
        }
    })
}

fn under_any(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| {
        // A root that does not exist yet cannot contain anything that exists; resolve it like
        // any other path so a symlinked root (e.g. /etc/nixos → /persist/…) still works.
        resolve(r).is_ok_and(|root| path.starts_with(&root))
    })
}

impl Policy {
    /// Checks one path for reading or writing; returns the resolved path.
    pub fn check_path(&self, raw: &str, cwd: &Path, access: Access) -> Result<PathBuf, PathError> {
        let abs = absolute(raw, cwd)?;
        let dev_ok: &[&str] = match access {
            Access::Read => &["/dev/null"],
            Access::Write => &["/dev/null", "/dev/stdout", "/dev/stderr"],
        };
        if dev_ok.iter().any(|d| abs == Path::new(d)) {
            return Ok(abs);
        }
        if let Some(s) = secret_match(&self.secrets, &abs) {
            return Err(PathError::Secret {
                raw: raw.to_string(),
                secret: s.to_string(),
            });
        }
        let real = resolve(&abs)?;
        if let Some(s) = secret_match(&self.secrets, &real) {
            return Err(PathError::ResolvesToSecret {
                raw: raw.to_string(),
                real,
                secret: s.to_string(),
            });
        }
        // A change run's tree is edited through the file tools only (see edit_scope.rs).
        if access == Access::Write
            && let Some(scope) = &self.edit
            && scope.blocks_shell_write(&real)
        {
            return Err(PathError::ChangeTree {
                raw: raw.to_string(),
                real,
            });
        }
        let (roots, what) = match access {
            Access::Read => (&self.read, "read"),
            Access::Write => (&self.write, "write"),
        };
        if !under_any(&real, roots) {
            return Err(PathError::OutsideRoots {
                raw: raw.to_string(),
                real,
                what,
                roots: roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if access == Access::Write {
            let comps = components(&real);
            if let Some(p) = self
                .protected
                .iter()
                .find(|p| comps.iter().any(|c| wild_match(p, c)))
            {
                return Err(PathError::Protected {
                    raw: raw.to_string(),
                    name: p.clone(),
                });
            }
        }
        Ok(real)
    }

    /// Checks an `FSPATH` argument: a location a command measures or lists (`df`, `du -sh`,
    /// `ls -l`), which need not be in the read roots. It must be absolute, without `..`, `~` or
    /// NUL, and neither it nor what its symlinks resolve to may be a secret path.
    pub fn check_fs_path(&self, raw: &str) -> Result<PathBuf, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::FsPathRelative(raw.to_string()));
        }
        let abs = absolute(raw, Path::new("/"))?;
        if let Some(s) = secret_match(&self.secrets, &abs) {
            return Err(PathError::Secret {
                raw: raw.to_string(),
                secret: s.to_string(),
            });
        }
        let real = resolve(&abs)?;
        if let Some(s) = secret_match(&self.secrets, &real) {
            return Err(PathError::ResolvesToSecret {
                raw: raw.to_string(),
                real,
                secret: s.to_string(),
            });
        }
        Ok(real)
    }
}

/// The walker's view of path arguments: a policy plus the directory relative paths start from.
pub(crate) struct PathCtx<'a> {
    pub policy: &'a Policy,
    pub cwd: &'a Path,
}

impl PathCheck for PathCtx<'_> {
    fn check_path_arg(&self, word: &ArgWord) -> Result<(), PathError> {
        if word.unknown {
            return Err(PathError::RunTime);
        }
        if !word.glob {
            return self
                .policy
                .check_path(&word.text, self.cwd, Access::Read)
                .map(|_| ());
        }
        check_glob(self.policy, &word.text, self.cwd)
    }

    fn check_fs_path_arg(&self, word: &ArgWord) -> Result<(), PathError> {
        if word.unknown {
            return Err(PathError::RunTime);
        }
        // A glob's expansion is only known when the shell runs it; name the directory instead.
        if word.glob {
            return Err(PathError::FsPathGlob(word.text.clone()));
        }
        self.policy.check_fs_path(&word.text).map(|_| ())
    }
}

/// A glob is accepted only as `dir/pattern` with `*`/`?` in the last component (no dot-files):
/// the directory must be readable, and every file it matches now must be readable and no secret.
/// Requiring a directory part keeps expansions from starting with `-` (flag injection).
fn check_glob(policy: &Policy, text: &str, cwd: &Path) -> Result<(), PathError> {
    let Some((dir, last)) = text.rsplit_once('/') else {
        return Err(PathError::GlobNoDir(text.to_string()));
    };
    let globby = |s: &str| s.contains(['*', '?', '[', ']']);
    if globby(dir) || last.contains(['[', ']']) || last.starts_with('.') || last.is_empty() {
        return Err(PathError::GlobShape(text.to_string()));
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    let real = policy.check_path(dir, cwd, Access::Read)?;
    let entries = fs::read_dir(&real).map_err(|source| PathError::GlobDir {
        text: text.to_string(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && wild_match(last, &name) {
            let p = real.join(&name);
            policy.check_path(&p.to_string_lossy(), cwd, Access::Read)?;
        }
    }
    Ok(())
}

fn field<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// Checks a non-Bash tool call. `cwd` is the session's working directory (the workspace).
pub fn check_tool(policy: &Policy, tool: &str, input: &Value, cwd: &Path) -> PolicyDecision {
    let path_decision =
        |raw: &str, access: Access, rule: &str| match policy.check_path(raw, cwd, access) {
            Ok(p) => PolicyDecision::allow(
                Some(rule.to_string()),
                format!("{tool} on `{}`", p.display()),
            ),
            Err(e) => PolicyDecision::deny(format!("{tool}: {e}")),
        };
    if let Some(scope) = &policy.edit
        && let Some(decision) = scope.check_file_tool(policy, tool, input, cwd)
    {
        return decision;
    }
    match tool {
        "StructuredOutput" => PolicyDecision::allow(
            Some("builtin: StructuredOutput".to_string()),
            "the verdict tool",
        ),
        "Read" => match field(input, "file_path") {
            Some(p) => path_decision(p, Access::Read, "read roots"),
            None => PolicyDecision::deny("Read: missing `file_path`"),
        },
        "Edit" | "Write" => match field(input, "file_path") {
            Some(p) => path_decision(p, Access::Write, "write roots"),
            None => PolicyDecision::deny(format!("{tool}: missing `file_path`")),
        },
        "NotebookEdit" => match field(input, "notebook_path") {
            Some(p) => path_decision(p, Access::Write, "write roots"),
            None => PolicyDecision::deny("NotebookEdit: missing `notebook_path`"),
        },
        "Grep" | "Glob" => {
            // No path = the session cwd. A `pattern` (Glob) or `glob` (Grep) filter that is
            // absolute or climbs with `..` could reach outside the searched directory.
            let base = field(input, "path").unwrap_or(".");
            let filter_field = if tool == "Glob" { "pattern" } else { "glob" };
            if let Some(f) = field(input, filter_field)
                && (f.starts_with('/') || f.starts_with('~') || f.split('/').any(|c| c == ".."))
            {
                return PolicyDecision::deny(format!(
                    "{tool}: `{filter_field}` must be relative to `path` without `..` or `~`"
                ));
            }
            path_decision(base, Access::Read, "read roots")
        }
        t if t.starts_with(super::steward_tools::PREFIX) => {
            super::steward_tools::decide(policy, t, input, cwd)
        }
        t if t.starts_with("mcp__") => PolicyDecision::deny(format!(
            "MCP tool `{t}` is not steward's (only mcp__steward__*)"
        )),
        t => PolicyDecision::deny(format!(
            "unknown tool `{t}` is not allowed by steward's policy"
        )),
    }
}
