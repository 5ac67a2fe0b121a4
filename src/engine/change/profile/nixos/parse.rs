//! Reading what NixOS says: generation links, store paths, `dry-activate`'s unit lists and the
//! boot files that decide whether a reboot is needed. Strict: anything that is not the format
//! nixpkgs prints (see `tests/data/nixos/SOURCES.md`) is an error, never a guess.

use std::path::{Path, PathBuf};

/// Longest output steward reads from dry-activate (it is tailed before this anyway).
const MAX_TEXT: usize = 1 << 20;
/// More units than any host has: a list longer than this is not a unit list.
const MAX_UNITS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// `system-N-link` (the target of `/nix/var/nix/profiles/system`) → N.
pub fn generation_number(link: &str) -> Result<u64, ParseError> {
    let digits = link
        .strip_prefix("system-")
        .and_then(|s| s.strip_suffix("-link"))
        .ok_or_else(|| err(format!("`{link}` is not a `system-N-link` generation link")))?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!("`{link}`: the generation is not a number")));
    }
    digits
        .parse::<u64>()
        .map_err(|e| err(format!("`{link}`: {e}")))
}

/// A NixOS system's store path: directly under `store`, named `<32-char hash>-<name>`, in
/// nix's base-32 alphabet. Returns it as a string (it goes into argv and the record).
pub fn system_store_path(path: &Path, store: &Path) -> Result<String, ParseError> {
    let shown = path.display().to_string();
    let name = path
        .strip_prefix(store)
        .ok()
        .and_then(|rest| rest.to_str())
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| err(format!("`{shown}` is not a path in {}", store.display())))?;
    let (hash, rest) = name
        .split_at_checked(32)
        .ok_or_else(|| err(format!("`{shown}` has no store hash")))?;
    let nix32 = |c: char| c.is_ascii_digit() || (c.is_ascii_lowercase() && !"eotu".contains(c));
    if !hash.chars().all(nix32) || !rest.starts_with('-') || rest.len() < 2 {
        return Err(err(format!("`{shown}` is not `<hash>-<name>`")));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+-._?=".contains(c))
    {
        return Err(err(format!(
            "`{shown}`: the name has characters nix never uses"
        )));
    }
    Ok(shown)
}

/// What `switch-to-configuration dry-activate` says it would do, per verb.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryActivation {
    pub stop: Vec<String>,
    /// Changed units it would leave running (`would NOT stop the following changed units`).
    pub keep: Vec<String>,
    pub reload: Vec<String>,
    pub restart: Vec<String>,
    pub start: Vec<String>,
    pub restart_systemd: bool,
}

impl DryActivation {
    /// The blast radius' unit list: `verb: unit`, in the order the activation would act.
    pub fn units(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.restart_systemd {
            out.push("restart: systemd".to_string());
        }
        for (verb, units) in [
            ("stop", &self.stop),
            ("changed, not restarted", &self.keep),
            ("reload", &self.reload),
            ("restart", &self.restart),
            ("start", &self.start),
        ] {
            out.extend(units.iter().map(|u| format!("{verb}: {u}")));
        }
        out
    }
}

/// Reads dry-activate's unit lines; every other line (nixos-rebuild's, the activation
/// script's dry output) is ignored. A unit list that is not a list of unit names is an error.
pub fn dry_activation(text: &str) -> Result<DryActivation, ParseError> {
    if text.len() > MAX_TEXT {
        return Err(err("the dry-activate output is too long to be read"));
    }
    let mut out = DryActivation::default();
    for line in text.lines() {
        let line = line.trim_end();
        if line == "would restart systemd" {
            out.restart_systemd = true;
            continue;
        }
        let Some((list, rest)) = verb_list(&mut out, line) else {
            continue;
        };
        let units = unit_list(rest)?;
        if list.len() + units.len() > MAX_UNITS {
            return Err(err("more units than a host has: not a unit list"));
        }
        list.extend(units);
    }
    Ok(out)
}

/// Which list of a [`DryActivation`] a verb's line fills.
type ListOf = fn(&mut DryActivation) -> &mut Vec<String>;

fn verb_list<'a, 'l>(
    out: &'a mut DryActivation,
    line: &'l str,
) -> Option<(&'a mut Vec<String>, &'l str)> {
    // "as well" is the Perl switch-to-configuration's wording of the stop line.
    let prefixes: [(&str, ListOf); 6] = [
        ("would stop the following units:", |d| &mut d.stop),
        ("would stop the following units as well:", |d| &mut d.stop),
        ("would NOT stop the following changed units:", |d| {
            &mut d.keep
        }),
        ("would reload the following units:", |d| &mut d.reload),
        ("would restart the following units:", |d| &mut d.restart),
        ("would start the following units:", |d| &mut d.start),
    ];
    let (field, rest) = prefixes
        .into_iter()
        .find_map(|(p, field)| line.strip_prefix(p).map(|rest| (field, rest)))?;
    Some((field(out), rest))
}

/// `: a.service, b.service` (the part after the verb's colon); main.rs never prints an empty list.
fn unit_list(rest: &str) -> Result<Vec<String>, ParseError> {
    let list = rest
        .strip_prefix(' ')
        .filter(|l| !l.is_empty())
        .ok_or_else(|| err("a unit line without units"))?;
    list.split(", ")
        .map(|unit| {
            if valid_unit_name(unit) {
                Ok(unit.to_string())
            } else {
                Err(err(format!(
                    "`{}` in a unit list is not a systemd unit name",
                    unit.chars().take(80).collect::<String>()
                )))
            }
        })
        .collect()
}

/// systemd's unit name alphabet (`unit_name_is_valid`): `[A-Za-z0-9:_.\\@-]`, with a type
/// suffix, at most 255 bytes.
fn valid_unit_name(unit: &str) -> bool {
    unit.len() <= 255
        && unit.contains('.')
        && !unit.starts_with('.')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.\\@-".contains(c))
}

/// The links that need a reboot to take effect: what `system.autoUpgrade` compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub kernel_modules: Option<PathBuf>,
}

/// `readlink SYSTEM/{kernel,initrd,kernel-modules}`; a missing link is `None` (a container
/// system has no kernel), as an empty `readlink` is in nixpkgs' shell comparison.
pub fn boot_files(system: &Path) -> BootFiles {
    let link = |name: &str| std::fs::read_link(system.join(name)).ok();
    BootFiles {
        kernel: link("kernel"),
        initrd: link("initrd"),
        kernel_modules: link("kernel-modules"),
    }
}

/// A reboot is needed when the booted system's kernel, initrd or kernel modules differ from
/// the new system's: nixpkgs' `nixos/modules/tasks/auto-upgrade.nix` compares exactly these.
pub fn needs_reboot(booted: &BootFiles, new: &BootFiles) -> bool {
    booted != new
}

#[cfg(test)]
mod tests;
