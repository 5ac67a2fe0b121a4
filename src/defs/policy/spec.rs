//! What a goal's front matter says of the policy: the input the policy is compiled from.

use serde::{Deserialize, Serialize};

/// Command rules in argv-pattern form, e.g. `systemctl status UNIT`, `df -h [PATH]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoalPolicy {
    pub allow: Vec<String>,
    pub approve: Vec<String>,
    pub deny: Vec<String>,
    /// File roots; `{workspace}` expands to the workspace.
    pub read: Vec<String>,
    pub write: Vec<String>,
}
