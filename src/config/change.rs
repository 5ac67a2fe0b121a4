//! `[change]` in steward.toml: the tools and limits change sets use on this host — what validates
//! a change, what applies it, and how long each may take. Goals say *what* may change (their own
//! `[change]` table); this says *how* on this machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a change is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    Nixos,
    Nomad,
    Compose,
    /// The goal's own `apply` and `rollback` argv.
    Command,
}

/// `[change]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangeConfig {
    /// How this workspace is applied when `steward ci --apply` deploys a push (goals name their
    /// own profile in their `[change]` table).
    pub profile: Option<Profile>,
    /// The `command` profile's argv for `steward ci --apply`.
    pub apply: Vec<String>,
    pub rollback: Vec<String>,
    /// Checks (by name) run after `steward ci --apply` applies a push, beside the invariants.
    pub post_checks: Vec<String>,
    /// PATH for validators and executors; empty: the same as `claude.path`.
    pub path: String,
    /// Each validator (goal or bundled) is killed, with its process group, after this long.
    pub validate_timeout_secs: u64,
    /// Each apply, rollback or activation step is killed after this long.
    pub apply_timeout_secs: u64,
    /// A pending change nobody decided on expires after this many hours.
    pub ttl_hours: u64,
    /// After applying or rolling back, failing checks are observed again (every second) for up
    /// to this long before they count: a service just (re)started needs a moment. 0: once.
    pub settle_secs: u64,
    /// The compose implementation: `docker compose` (v2), `docker-compose` (v1), `podman-compose`.
    pub compose: Vec<String>,
    /// How to call nix (flakes enabled).
    pub nix: Vec<String>,
    pub nixos_rebuild: Vec<String>,
    /// The flake's `nixosConfigurations` attribute for this host; unset: no `nixos-rebuild
    /// build` in the static phase and the `nixos` profile cannot apply.
    pub nixos_host: Option<String>,
    /// Seconds a NixOS activation has to be confirmed before a transient unit switches back to
    /// the recorded generation (the dead-man timer); 0 turns it off.
    pub deadman_secs: u64,
    pub nomad: Vec<String>,
    /// Environment for executors and the profiles' planning steps (`DOCKER_HOST`,
    /// `NOMAD_ADDR`, ...). Never given to a goal's own validators, which build agent-written
    /// code and get a clean environment.
    pub env: BTreeMap<String, String>,
}

impl Default for ChangeConfig {
    fn default() -> Self {
        let words = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        ChangeConfig {
            profile: None,
            apply: Vec::new(),
            rollback: Vec::new(),
            post_checks: Vec::new(),
            path: String::new(),
            validate_timeout_secs: 600,
            apply_timeout_secs: 1800,
            ttl_hours: 168,
            settle_secs: 30,
            compose: words(&["docker", "compose"]),
            nix: words(&["nix", "--extra-experimental-features", "nix-command flakes"]),
            nixos_rebuild: words(&["nixos-rebuild"]),
            nixos_host: None,
            deadman_secs: 300,
            nomad: words(&["nomad"]),
            env: BTreeMap::new(),
        }
    }
}

impl ChangeConfig {
    /// The key and message of the first problem, for `ConfigError::Invalid`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.validate_timeout_secs == 0 {
            return Err(("change.validate_timeout_secs", "must be at least 1"));
        }
        if self.apply_timeout_secs == 0 {
            return Err(("change.apply_timeout_secs", "must be at least 1"));
        }
        if self.ttl_hours == 0 {
            return Err(("change.ttl_hours", "must be at least 1"));
        }
        for (key, argv) in [
            ("change.compose", &self.compose),
            ("change.nix", &self.nix),
            ("change.nixos_rebuild", &self.nixos_rebuild),
            ("change.nomad", &self.nomad),
        ] {
            // Later words may be empty (`--option substituters ""`); the program may not.
            if argv.first().is_none_or(|w| w.is_empty()) {
                return Err((key, "must be an argv whose first word names a program"));
            }
        }
        if self.nixos_host.as_deref().is_some_and(|h| {
            h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }) {
            return Err((
                "change.nixos_host",
                "must be a flake attribute name (letters, digits, `-`, `_`, `.`)",
            ));
        }
        if self.profile == Some(Profile::Command)
            && (self.apply.is_empty() || self.rollback.is_empty())
        {
            return Err((
                "change.apply",
                "the `command` profile needs `apply` and `rollback` argv",
            ));
        }
        if self.env.keys().any(|k| k.is_empty() || k.contains('=')) {
            return Err((
                "change.env",
                "variable names must be non-empty and without `=`",
            ));
        }
        Ok(())
    }
}
