//! The paths no change may touch in a workspace, beyond the ones always protected: steward's own
//! configuration files, the shared policy's secret and protected patterns, and steward's own
//! directories where the operator keeps them inside the repository. The same rules when a run
//! judges its change and when an approval judges the change rebased onto a moved workspace.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::defs::change::ProtectedPaths;
use crate::defs::policy::SharedPolicy;

/// steward's own configuration, wherever it lies in the repository.
pub const STEWARD_FILES: [&str; 2] = ["steward.toml", "steward.nix"];

/// The paths no change may touch in `workspace` under `cfg`.
pub fn protected_paths(cfg: &Config, workspace: &Path) -> ProtectedPaths {
    let mut patterns: Vec<String> = STEWARD_FILES.iter().map(|s| s.to_string()).collect();
    if let Ok(shared) = SharedPolicy::bundled() {
        patterns.extend(shared.secrets);
        patterns.extend(shared.protected);
    }
    let own: Vec<&PathBuf> = [&cfg.goals_dir, &cfg.context_dir, &cfg.knowledge_dir]
        .into_iter()
        .flatten()
        .chain(cfg.routes_file.as_ref())
        .chain(std::iter::once(&cfg.state_dir))
        .collect();
    let paths = own
        .into_iter()
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
