//! The argv the `nixos` profile runs, built without a shell. Each is what nixpkgs' own tools run
//! for the same job (cited per function), with two deliberate differences: the target is always
//! explicit (a generation number and store path, never "previous"), and the flake's lock file is
//! never rewritten (`--no-update-lock-file`: what is validated is what was committed).

use std::path::Path;

/// The system profile whose generations `nixos-rebuild switch` adds and `--rollback` walks.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";

fn words(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|w| w.to_string()).collect()
}

/// `DIR#HOST`, the flake reference of the host's configuration in the change's tree.
pub fn flake_ref(dir: &Path, host: &str) -> String {
    format!("{}#{host}", dir.display())
}

/// `nix flake check` in the tree (cwd), building the checks.
pub fn flake_check(nix: &[String]) -> Vec<String> {
    let mut argv = nix.to_vec();
    argv.extend(words(&["flake", "check", "--no-update-lock-file"]));
    argv
}

/// `nixos-rebuild ACTION --flake DIR#HOST`: `build` (static phase; leaves `./result` in its cwd),
/// `dry-activate` (blast radius), `test` (activate, not the boot default), `switch`.
pub fn rebuild(nixos_rebuild: &[String], action: &str, flake: &str) -> Vec<String> {
    let mut argv = nixos_rebuild.to_vec();
    argv.push(action.to_string());
    argv.extend(words(&["--flake", flake, "--no-update-lock-file"]));
    argv
}

/// The transient timer that switches back to `target` unless `systemctl stop` confirms first.
/// `RemainAfterElapse=no` unloads the timer once it fired, so a late confirmation fails instead
/// of stopping an elapsed timer and reporting success.
pub fn deadman_start(unit: &str, secs: u64, target: &str) -> Vec<String> {
    vec![
        "systemd-run".to_string(),
        format!("--unit={unit}"),
        format!("--description=steward dead-man: switch back to {target}"),
        format!("--on-active={secs}s"),
        "--timer-property=AccuracySec=1s".to_string(),
        "--timer-property=RemainAfterElapse=no".to_string(),
        switch_to_configuration(target),
        "switch".to_string(),
    ]
}

/// Confirms the activation: the dead-man timer never fires.
pub fn deadman_stop(unit: &str) -> Vec<String> {
    vec![
        "systemctl".to_string(),
        "stop".to_string(),
        format!("{unit}.timer"),
    ]
}

/// `steward-deadman-<change id>` (change ids are `c-` and hex: a valid unit name).
pub fn deadman_unit(change_id: &str) -> String {
    format!("steward-deadman-{change_id}")
}

/// `<system>/bin/switch-to-configuration`, what nixos-rebuild runs to activate a built system.
pub fn switch_to_configuration(system: &str) -> String {
    format!("{system}/bin/switch-to-configuration")
}

/// Rolling back, step 1: the boot default becomes generation `number`. nixos-rebuild
/// `--rollback` runs `nix-env --rollback -p PROFILE` (one generation back); steward names the
/// generation it recorded instead.
pub fn set_generation(profile: &str, number: u64) -> Vec<String> {
    vec![
        "nix-env".to_string(),
        "-p".to_string(),
        profile.to_string(),
        "--switch-generation".to_string(),
        number.to_string(),
    ]
}

/// Rolling back, step 2: activate that generation's system, as nixos-rebuild does after
/// setting the profile.
pub fn activate(system: &str) -> Vec<String> {
    vec![switch_to_configuration(system), "switch".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        super::words(words)
    }

    const NIX: &[&str] = &["nix", "--extra-experimental-features", "nix-command flakes"];

    #[test]
    fn flake_check_builds_and_never_rewrites_the_lock_file() {
        assert_eq!(
            flake_check(&v(NIX)),
            v(&[
                "nix",
                "--extra-experimental-features",
                "nix-command flakes",
                "flake",
                "check",
                "--no-update-lock-file"
            ])
        );
    }

    #[test]
    fn rebuild_names_the_tree_and_the_host() {
        let flake = flake_ref(Path::new("/state/worktrees/r-1"), "web1");
        assert_eq!(flake, "/state/worktrees/r-1#web1");
        for action in ["build", "dry-activate", "test", "switch"] {
            assert_eq!(
                rebuild(&v(&["sudo", "nixos-rebuild"]), action, &flake),
                v(&[
                    "sudo",
                    "nixos-rebuild",
                    action,
                    "--flake",
                    "/state/worktrees/r-1#web1",
                    "--no-update-lock-file"
                ])
            );
        }
    }

    #[test]
    fn the_deadman_timer_switches_to_the_recorded_system() {
        let unit = deadman_unit("c-0123456789ab");
        let target = "/nix/store/dkzpjsnpa1ds69iapj2h5a8mny4l7l3d-nixos-system-a1131-25.05";
        assert_eq!(
            deadman_start(&unit, 300, target),
            vec![
                "systemd-run".to_string(),
                "--unit=steward-deadman-c-0123456789ab".to_string(),
                format!("--description=steward dead-man: switch back to {target}"),
                "--on-active=300s".to_string(),
                "--timer-property=AccuracySec=1s".to_string(),
                "--timer-property=RemainAfterElapse=no".to_string(),
                format!("{target}/bin/switch-to-configuration"),
                "switch".to_string(),
            ]
        );
        assert_eq!(
            deadman_stop(&unit),
            v(&["systemctl", "stop", "steward-deadman-c-0123456789ab.timer"])
        );
    }

    #[test]
    fn rollback_names_the_generation_never_previous() {
        assert_eq!(
            set_generation(SYSTEM_PROFILE, 13),
            v(&[
                "nix-env",
                "-p",
                "/nix/var/nix/profiles/system",
                "--switch-generation",
                "13"
            ])
        );
        assert_eq!(
            activate("/nix/store/abc-nixos-system-web1"),
            v(&[
                "/nix/store/abc-nixos-system-web1/bin/switch-to-configuration",
                "switch"
            ])
        );
    }
}
