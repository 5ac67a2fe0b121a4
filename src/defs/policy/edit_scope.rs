//! The edit scope of a change run (issue 12): in a change run the agent works in a git worktree
//! of the workspace, and the file-writing tools (Edit, Write, MultiEdit, NotebookEdit) may touch
//! only files inside that worktree that an `edit` glob of the goal's `[change]` table allows and
//! no protected rule names. The shell stays read-only: writes into the worktree or the live
//! workspace are refused (the agent edits through the file tools, which this hook and steward's
//! diff check both see), the git commands that commit or move the tree are denied (steward
//! commits, not the agent), and the goal's own `validate` argv run exactly as written, in the
//! worktree root.
//!
//! [`Policy::with_edit_scope`] adds it to a compiled policy; the hook then decides with
//! [`EditScope::check_file_tool`] and [`EditScope::validator`].

use std::path::{Path, PathBuf};

use globset::GlobSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PolicyError;
use super::files::{absolute, resolve, secret_match};
use super::model::{Origin, Policy, PolicyDecision, Rule};
use super::pattern::{ArgWord, ArgvPattern};
use crate::defs::change::{ChangeSpec, ProtectedPaths, compile_edit, protected_by};

/// The deny reason of every git command a change run refuses.
pub const STEWARD_COMMITS: &str = "steward commits the change; the agent only edits files";

/// git subcommands that write the repository, its index, refs or config, or move the tree:
/// denied in a change run whatever the goal allows (`git commit`, `git push`, …).
const GIT_WRITERS: &[&str] = &[
    "commit",
    "push",
    "add",
    "reset",
    "checkout",
    "stash",
    "config",
    "worktree",
    "rm",
    "mv",
    "restore",
    "switch",
    "branch",
    "tag",
    "merge",
    "rebase",
    "cherry-pick",
    "revert",
    "apply",
    "am",
    "pull",
    "fetch",
    "clean",
    "update-ref",
    "update-index",
    "notes",
    "submodule",
    "init",
    "clone",
    "gc",
];

/// The tools that write files, and the input field naming the file.
const FILE_TOOLS: &[(&str, &str)] = &[
    ("Edit", "file_path"),
    ("Write", "file_path"),
    ("MultiEdit", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// The rule label of an allowed edit, for the audit trail.
const EDIT_RULE: &str = "change: edit globs";
/// The rule label of an allowed validator.
const VALIDATE_RULE: &str = "change: validate";

/// Where a change run's agent may write, and what it may run to check its work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "EditScopeForm", into = "EditScopeForm")]
pub struct EditScope {
    /// The worktree root, canonical.
    pub root: PathBuf,
    /// The live checkout the worktree was made from, canonical: never written in a change run.
    pub live: PathBuf,
    /// The `edit` globs as written, relative to the root.
    pub edit: Vec<String>,
    /// Protected rules inside the tree (always-protected names, the policy's protected names
    /// and secret patterns, steward's own files by their path relative to the tree).
    pub protected: ProtectedPaths,
    /// Protected absolute paths (steward's config file, its state dir): nothing under one may be
    /// written, unless it also holds the worktree (a state dir the worktrees live in).
    pub protected_abs: Vec<PathBuf>,
    /// The goal's `validate` argv, allowed in Bash exactly as written, in the root.
    pub validate: Vec<Vec<String>>,
    globs: GlobSet,
}

/// The serialised form: the globs as text, compiled again when the hook loads the file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EditScopeForm {
    root: PathBuf,
    live: PathBuf,
    edit: Vec<String>,
    protected: ProtectedPaths,
    protected_abs: Vec<PathBuf>,
    validate: Vec<Vec<String>>,
}

impl TryFrom<EditScopeForm> for EditScope {
    type Error = String;

    fn try_from(f: EditScopeForm) -> Result<EditScope, String> {
        if !f.root.is_absolute() || !f.live.is_absolute() {
            return Err("edit scope: the worktree and the workspace must be absolute".to_string());
        }
        let globs = compile_edit(&f.edit).map_err(|e| e.to_string())?;
        Ok(EditScope {
            root: f.root,
            live: f.live,
            edit: f.edit,
            protected: f.protected,
            protected_abs: f.protected_abs,
            validate: f.validate,
            globs,
        })
    }
}

impl From<EditScope> for EditScopeForm {
    fn from(s: EditScope) -> EditScopeForm {
        EditScopeForm {
            root: s.root,
            live: s.live,
            edit: s.edit,
            protected: s.protected,
            protected_abs: s.protected_abs,
            validate: s.validate,
        }
    }
}

/// The compiled globs follow from `edit`: equal sources are equal scopes.
impl PartialEq for EditScope {
    fn eq(&self, other: &EditScope) -> bool {
        self.root == other.root
            && self.live == other.live
            && self.edit == other.edit
            && self.protected == other.protected
            && self.protected_abs == other.protected_abs
            && self.validate == other.validate
    }
}

impl Eq for EditScope {}

fn scope_err(message: impl Into<String>) -> PolicyError {
    PolicyError::EditScope {
        message: message.into(),
    }
}

impl Policy {
    /// The policy of a change run: the agent edits `spec.edit` files in `worktree` (a git
    /// worktree of `protected.workspace`, the live checkout) and nothing else. `protected` are
    /// the rules steward's diff check applies (the hook applies the same ones, plus this
    /// policy's protected names and secret patterns); `protected_extra` are absolute paths no
    /// edit may touch: steward's config file and state dir. The worktree becomes a read root;
    /// write roots inside the worktree or the live checkout are dropped (and shell writes there
    /// refused whatever the roots say); the git commands that commit are denied.
    pub fn with_edit_scope(
        mut self,
        worktree: &Path,
        spec: &ChangeSpec,
        protected: &ProtectedPaths,
        protected_extra: &[PathBuf],
    ) -> Result<Policy, PolicyError> {
        let root = std::fs::canonicalize(worktree)
            .map_err(|e| scope_err(format!("worktree `{}`: {e}", worktree.display())))?;
        if !root.is_dir() || root.parent().is_none() {
            return Err(scope_err(format!(
                "worktree `{}` must be a directory below `/`",
                root.display()
            )));
        }
        if let Some(p) = protected_extra.iter().find(|p| !p.is_absolute()) {
            return Err(scope_err(format!(
                "protected path `{}` must be absolute",
                p.display()
            )));
        }
        let live = std::fs::canonicalize(&protected.workspace).map_err(|e| {
            scope_err(format!(
                "workspace `{}`: {e}",
                protected.workspace.display()
            ))
        })?;
        let mut patterns = self.protected.clone();
        patterns.extend(self.secrets.iter().cloned());
        let protected = protected
            .clone()
            .extended(&root, &patterns, protected_extra);
        let globs = compile_edit(&spec.edit).map_err(|e| scope_err(e.to_string()))?;
        self.write.retain(|w| {
            let w = resolve(w).unwrap_or_else(|_| w.clone());
            !w.starts_with(&root) && !w.starts_with(&live)
        });
        if !self.read.contains(&root) {
            self.read.push(root.clone());
        }
        // First, so that their reason is steward's even when the goal denies them too.
        self.deny.splice(0..0, git_writer_rules()?);
        self.edit = Some(EditScope {
            root,
            live,
            edit: spec.edit.clone(),
            protected,
            protected_abs: protected_extra.to_vec(),
            validate: spec.validate.clone(),
            globs,
        });
        Ok(self)
    }
}

/// `git commit`, `git push`, …: deny rules of origin `change`, whose reason is
/// [`STEWARD_COMMITS`].
fn git_writer_rules() -> Result<Vec<Rule>, PolicyError> {
    GIT_WRITERS
        .iter()
        .map(|sub| {
            let source = format!("git {sub}");
            ArgvPattern::compile(&source)
                .map(|pattern| Rule {
                    origin: Origin::Change,
                    pattern,
                })
                .map_err(|e| scope_err(format!("`{source}`: {e}")))
        })
        .collect()
}

impl EditScope {
    /// The decision on a file-writing tool call, or `None` for any other tool.
    pub fn check_file_tool(
        &self,
        policy: &Policy,
        tool: &str,
        input: &Value,
        cwd: &Path,
    ) -> Option<PolicyDecision> {
        let (_, field) = FILE_TOOLS.iter().find(|(t, _)| *t == tool)?;
        Some(match input.get(*field).and_then(Value::as_str) {
            Some(raw) => match self.check_edit(policy, raw, cwd) {
                Ok(real) => PolicyDecision::allow(
                    Some(EDIT_RULE.to_string()),
                    format!(
                        "{tool} on `{}` (inside the change's edit globs)",
                        real.display()
                    ),
                ),
                Err(why) => PolicyDecision::deny(format!("{tool}: `{raw}`: {why}")),
            },
            None => PolicyDecision::deny(format!("{tool}: missing `{field}`")),
        })
    }

    /// Checks one path the agent wants to write; returns the resolved path or why not.
    pub fn check_edit(&self, policy: &Policy, raw: &str, cwd: &Path) -> Result<PathBuf, String> {
        let abs = absolute(raw, cwd).map_err(|e| e.to_string())?;
        if let Some(s) = secret_match(&policy.secrets, &abs) {
            return Err(format!("protected: a secret path (matches `{s}`)"));
        }
        // The path as written: a protected component (`.claude/…`) is refused even when a
        // symlink would take the write somewhere else.
        if let Ok(rel) = abs.strip_prefix(&self.root) {
            self.protected_rel(rel)?;
        }
        self.protected_absolute(&abs)?;
        let real = resolve(&abs).map_err(|e| e.to_string())?;
        let rel = real.strip_prefix(&self.root).map_err(|_| {
            format!(
                "resolves to `{}`, outside the change's worktree `{}`",
                real.display(),
                self.root.display()
            )
        })?;
        if rel.as_os_str().is_empty() {
            return Err("is the worktree itself, not a file in it".to_string());
        }
        self.protected_rel(rel)?;
        self.protected_absolute(&real)?;
        let rel_text = rel
            .to_str()
            .ok_or_else(|| "is not valid UTF-8: no edit glob can match it".to_string())?;
        if !self.globs.is_match(rel_text) {
            return Err(format!(
                "`{rel_text}` is outside the change's edit globs ({})",
                self.edit.join(", ")
            ));
        }
        Ok(real)
    }

    fn protected_rel(&self, rel: &Path) -> Result<(), String> {
        let Some(text) = rel.to_str() else {
            return Err("is not valid UTF-8: it cannot be checked".to_string());
        };
        match protected_by(text, &self.protected) {
            Some(rule) => Err(format!("protected: {rule}")),
            None => Ok(()),
        }
    }

    fn protected_absolute(&self, path: &Path) -> Result<(), String> {
        // A protected directory that holds the worktree (steward's state dir) would protect
        // every file of the change: it protects everything but the worktree.
        match self
            .protected_abs
            .iter()
            .find(|p| path.starts_with(p) && !self.root.starts_with(p))
        {
            Some(p) => Err(format!("protected: {}", p.display())),
            None => Ok(()),
        }
    }

    /// Whether a shell write to `real` (resolved) is refused: anything in the worktree or in
    /// the live checkout.
    pub fn blocks_shell_write(&self, real: &Path) -> bool {
        real.starts_with(&self.root) || real.starts_with(&self.live)
    }

    /// A goal's `validate` argv, word for word (no glob, no wrapper), allowed in the worktree
    /// root only; `None` when `argv` is not one of them (the ordinary rules decide).
    pub fn validator(&self, argv: &[ArgWord], cwd: &Path) -> Option<PolicyDecision> {
        if argv.iter().any(|a| a.glob || a.unknown) {
            return None;
        }
        let words: Vec<&str> = argv.iter().map(|a| a.text.as_str()).collect();
        let shown = words.join(" ");
        self.validate
            .iter()
            .find(|v| v.len() == words.len() && v.iter().zip(&words).all(|(a, b)| a == b))?;
        let here = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
        Some(if here == self.root {
            PolicyDecision::allow(
                Some(VALIDATE_RULE.to_string()),
                format!("`{shown}` is one of the change's validate commands"),
            )
        } else {
            PolicyDecision::deny(format!(
                "`{shown}` is one of the change's validate commands, allowed only in its \
                 worktree `{}`, not in `{}`",
                self.root.display(),
                cwd.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests;
