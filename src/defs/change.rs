//! A goal's `[change]` table (issue 12): which files the agent may change, how the change is
//! validated and applied, and the paths no change may touch whatever its globs say.
//!
//! Parsed from the front matter's `toml::Value` so the goal loader can map an error's field to
//! its line (as it does for the other keys). Not wired into goals yet.

use std::path::Path;

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::defs::policy::secret_match;

/// `repair_rounds` when the goal does not say: two chances to fix a failed validation.
pub const DEFAULT_REPAIR_ROUNDS: u8 = 2;
/// More rounds cost budget and rarely help: a change that fails five times is escalated.
pub const MAX_REPAIR_ROUNDS: u8 = 5;

/// Paths no change may touch, matched against every component (a bare name) as the policy's
/// secret patterns are: git internals and hooks, Claude Code's project settings, MCP servers and
/// memory, all of which run code or widen permissions later.
pub const ALWAYS_PROTECTED: [&str; 4] = [".git", ".claude", ".mcp.json", "CLAUDE.md"];

/// Why a `[change]` table is refused. `field` is the key under `[change]`, for the loader to
/// find its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// What serde refused: an unknown key, a wrong type, a missing `edit` or `profile`.
    #[error("change: {message}")]
    Shape { message: String },
    #[error("change.{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

impl ChangeError {
    /// The key the error is about, when there is one (`edit`, `apply`, ...).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ChangeError::Shape { .. } => None,
            ChangeError::Field { field, .. } => Some(field),
        }
    }
}

fn field_err(field: &'static str, message: impl Into<String>) -> ChangeError {
    ChangeError::Field {
        field,
        message: message.into(),
    }
}

pub use crate::config::change::Profile;

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    edit: Vec<String>,
    #[serde(default)]
    validate: Vec<Vec<String>>,
    profile: Profile,
    apply: Option<Vec<String>>,
    rollback: Option<Vec<String>>,
    repair_rounds: Option<i64>,
    #[serde(default)]
    optional: bool,
}

/// A validated `[change]` table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeSpec {
    /// The globs as written, relative to the workspace.
    pub edit: Vec<String>,
    pub validate: Vec<Vec<String>>,
    pub profile: Profile,
    /// `Some` exactly when the profile is `command`.
    pub apply: Option<Vec<String>>,
    pub rollback: Option<Vec<String>>,
    pub repair_rounds: u8,
    /// Without a git repository as the workspace, run without change mode (no file tools, the
    /// run's record says so) instead of refusing: for goals like `proactive` that can report
    /// without proposing a change.
    pub optional: bool,
    #[serde(skip)]
    globs: GlobSet,
}

impl ChangeSpec {
    /// Parses and checks the `[change]` table.
    pub fn from_value(value: &toml::Value) -> Result<ChangeSpec, ChangeError> {
        let raw: Raw =
            value
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ChangeError::Shape {
                    message: e.message().trim().to_string(),
                })?;
        let globs = compile_edit(&raw.edit)?;
        check_argvs("validate", &raw.validate)?;
        check_apply(&raw)?;
        let repair_rounds = repair_rounds(raw.repair_rounds)?;
        Ok(ChangeSpec {
            edit: raw.edit,
            validate: raw.validate,
            profile: raw.profile,
            apply: raw.apply,
            rollback: raw.rollback,
            repair_rounds,
            optional: raw.optional,
            globs,
        })
    }

    /// Does an `edit` glob allow this workspace-relative path? (Protected paths are checked
    /// separately: a glob never makes one editable.)
    pub fn allows(&self, rel_path: &str) -> bool {
        self.globs.is_match(rel_path)
    }
}

/// Each glob: relative, without `..`, compiled so that `*` stays inside one directory and `**`
/// crosses them (`hosts/**/*.nix`). Public so the compiled policy's edit scope matches paths
/// exactly as [`ChangeSpec::allows`] does.
pub fn compile_edit(edit: &[String]) -> Result<GlobSet, ChangeError> {
    if edit.is_empty() {
        return Err(field_err("edit", "must name at least one glob"));
    }
    let mut set = GlobSetBuilder::new();
    for g in edit {
        check_relative(g).map_err(|m| field_err("edit", format!("`{g}`: {m}")))?;
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| field_err("edit", format!("`{g}`: {}", e.kind())))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| field_err("edit", format!("{}", e.kind())))
}

/// A workspace-relative path or glob steward can interpret: not empty, not absolute, no `..`,
/// no `.` component, no NUL, no `~`. The message says which.
pub fn check_relative(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("is empty");
    }
    if p.contains('\0') {
        return Err("contains NUL");
    }
    if p.starts_with('/') {
        return Err("must be relative to the workspace, not absolute");
    }
    if p.starts_with('~') {
        return Err("must be relative to the workspace, not start with `~`");
    }
    if p.split('/').any(|c| c == "..") {
        return Err("must not contain `..`");
    }
    // git prints `hosts/a.nix`, never `./hosts/a.nix`: such a glob would silently match nothing.
    if p.split('/').any(|c| c == ".") {
        return Err("must not contain `.` components (write `hosts/*`, not `./hosts/*`)");
    }
    Ok(())
}

fn check_argvs(field: &'static str, argvs: &[Vec<String>]) -> Result<(), ChangeError> {
    argvs.iter().try_for_each(|a| check_argv(field, a))
}

fn check_argv(field: &'static str, argv: &[String]) -> Result<(), ChangeError> {
    match argv.first() {
        None => Err(field_err(field, "an argv must not be empty")),
        Some(p) if p.trim().is_empty() => Err(field_err(field, "the program must not be empty")),
        Some(_) if argv.iter().any(|a| a.contains('\0')) => {
            Err(field_err(field, "an argument contains NUL"))
        }
        Some(_) => Ok(()),
    }
}

/// `apply` and `rollback` belong to the `command` profile, which needs both: a change that
/// cannot be rolled back is not applied. The other profiles apply and roll back themselves.
fn check_apply(raw: &Raw) -> Result<(), ChangeError> {
    for (field, argv) in [("apply", &raw.apply), ("rollback", &raw.rollback)] {
        match (raw.profile, argv) {
            (Profile::Command, Some(a)) => check_argv(field, a)?,
            (Profile::Command, None) => {
                return Err(field_err(field, "the `command` profile needs it"));
            }
            (p, Some(_)) => {
                let name = serde_json::to_string(&p).unwrap_or_default();
                return Err(field_err(
                    field,
                    format!("only the `command` profile takes it, not {name}"),
                ));
            }
            (_, None) => {}
        }
    }
    Ok(())
}

fn repair_rounds(n: Option<i64>) -> Result<u8, ChangeError> {
    let Some(n) = n else {
        return Ok(DEFAULT_REPAIR_ROUNDS);
    };
    u8::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_REPAIR_ROUNDS)
        .ok_or_else(|| {
            field_err(
                "repair_rounds",
                format!("must be between 0 and {MAX_REPAIR_ROUNDS}, not {n}"),
            )
        })
}

/// Protected paths beyond [`ALWAYS_PROTECTED`]: the policy's `protected` names and `secrets`
/// patterns (same grammar: bare name = any component, `a/b` = that sequence anywhere, `/x` =
/// absolute prefix), and steward's own files inside the workspace (its config, its module).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedPaths {
    /// The workspace, so that absolute secret patterns (`/run/secrets`) are matched against
    /// where the file really lives.
    pub workspace: std::path::PathBuf,
    /// Patterns in the policy's grammar (`Policy::protected` and `Policy::secrets`).
    pub patterns: Vec<String>,
    /// Workspace-relative files or directories (everything under a directory is protected).
    pub paths: Vec<String>,
}

/// Names protected beyond git's and Claude Code's own files: steward's configuration and its
/// NixOS module, wherever they are in the repository.
pub const STEWARD_FILES: [&str; 2] = ["steward.toml", "steward.nix"];

impl ProtectedPaths {
    /// What no change to `workspace` may touch under this configuration: the bundled policy's
    /// secret and protected patterns, steward's own files, and steward's directories where the
    /// operator keeps them inside the repository.
    pub fn for_workspace(cfg: &crate::config::Config, workspace: &Path) -> ProtectedPaths {
        let mut patterns: Vec<String> = STEWARD_FILES.iter().map(|s| s.to_string()).collect();
        if let Ok(shared) = crate::defs::policy::SharedPolicy::bundled() {
            patterns.extend(shared.secrets);
            patterns.extend(shared.protected);
        }
        let own = [
            &cfg.goals_dir,
            &cfg.context_dir,
            &cfg.knowledge_dir,
            &cfg.routes_file,
        ]
        .into_iter()
        .flatten()
        .chain(std::iter::once(&cfg.state_dir));
        let paths = own
            .filter_map(|p| p.strip_prefix(workspace).ok())
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(|rel| rel.to_string_lossy().into_owned())
            .collect();
        ProtectedPaths {
            workspace: workspace.to_path_buf(),
            patterns,
            paths,
        }
    }

    /// These rules for a change made in `tree` (a worktree of `self.workspace`), extended by
    /// `patterns` (the policy's protected names and secret patterns, those not already here) and
    /// by `absolute` paths (steward's config file, its state dir): one inside the workspace or
    /// the tree protects its relative path, because that is the copy a change would ship.
    pub fn extended(
        mut self,
        tree: &Path,
        patterns: &[String],
        absolute: &[std::path::PathBuf],
    ) -> ProtectedPaths {
        for p in patterns {
            if !self.patterns.contains(p) {
                self.patterns.push(p.clone());
            }
        }
        let live =
            std::fs::canonicalize(&self.workspace).unwrap_or_else(|_| self.workspace.clone());
        for abs in absolute {
            let real = std::fs::canonicalize(abs).unwrap_or_else(|_| abs.clone());
            for form in [abs, &real] {
                for base in [&self.workspace, &live, tree] {
                    let rel = form.strip_prefix(base).ok().and_then(Path::to_str);
                    if let Some(rel) = rel.filter(|r| !r.is_empty())
                        && !self.paths.iter().any(|p| p == rel)
                    {
                        self.paths.push(rel.to_string());
                    }
                }
            }
        }
        self
    }
}

/// Why `rel_path` (workspace-relative) is protected, if it is: the rule that matched.
pub fn protected_by(rel_path: &str, extra: &ProtectedPaths) -> Option<String> {
    let rel = Path::new(rel_path);
    let always: Vec<String> = ALWAYS_PROTECTED.iter().map(|s| s.to_string()).collect();
    if let Some(p) = secret_match(&always, rel) {
        return Some(p.to_string());
    }
    if let Some(p) = secret_match(&extra.patterns, &extra.workspace.join(rel)) {
        return Some(p.to_string());
    }
    extra
        .paths
        .iter()
        .find(|p| {
            let p = p.trim_end_matches('/');
            rel_path == p || rel_path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
        })
        .cloned()
}

/// Is `rel_path` one no change may touch?
pub fn is_protected(rel_path: &str, extra: &ProtectedPaths) -> bool {
    protected_by(rel_path, extra).is_some()
}

#[cfg(test)]
mod tests;
