//! Parsers on the formats nixpkgs prints; the fixtures and their sources are in
//! `tests/data/nixos/` (`SOURCES.md`).

use super::*;

const RELOAD_RESTART: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/nixos/dry-activate-reload-restart.txt"
));
const EVERY_VERB: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/nixos/dry-activate-every-verb.txt"
));
const NOTHING: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/nixos/dry-activate-nothing.txt"
));

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|w| w.to_string()).collect()
}

#[test]
fn generation_links_are_read_strictly() {
    assert_eq!(generation_number("system-14-link"), Ok(14));
    assert_eq!(generation_number("system-1-link"), Ok(1));
    for bad in [
        "system--link",
        "system-14",
        "system-+14-link",
        "system-1 4-link",
        "system-14-link\n",
        "/nix/var/nix/profiles/system-14-link",
        "home-manager-3-link",
        "system-99999999999999999999-link",
        "",
    ] {
        assert!(generation_number(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn store_paths_must_be_a_system_directly_in_the_store() {
    let store = Path::new("/nix/store");
    let good =
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq-nixos-system-a1131-25.05.20260102.ac62194";
    assert_eq!(
        system_store_path(Path::new(good), store).as_deref(),
        Ok(good)
    );
    for bad in [
        "/nix/store",
        "/nix/store/",
        "/tmp/ph526hx15q2v8v99ki94y451a8vcmdqq-nixos-system-a1131",
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq-nixos-system/bin",
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq",
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq-",
        "/nix/store/short-nixos-system",
        "/nix/store/PH526HX15Q2V8V99KI94Y451A8VCMDQQ-nixos-system",
        "/nix/store/eh526hx15q2v8v99ki94y451a8vcmdqq-nixos-system",
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq-nixos system",
        "/nix/store/ph526hx15q2v8v99ki94y451a8vcmdqq-nixos;rm -rf",
        "/nix/store/../etc/ph526hx15q2v8v99ki94y451a8vcmdqq-x",
    ] {
        assert!(system_store_path(Path::new(bad), store).is_err(), "{bad}");
    }
}

#[test]
fn the_switch_tests_dry_activate_lines_become_the_blast_radius() {
    let d = dry_activation(RELOAD_RESTART).unwrap();
    assert_eq!(d.reload, s(&["simple-reload-service.service"]));
    assert_eq!(
        d.restart,
        s(&["simple-restart-service.service", "simple-service.service"])
    );
    assert!(d.stop.is_empty() && d.start.is_empty() && d.keep.is_empty());
    assert!(!d.restart_systemd);
    assert_eq!(
        d.units(),
        s(&[
            "reload: simple-reload-service.service",
            "restart: simple-restart-service.service",
            "restart: simple-service.service",
        ])
    );
}

#[test]
fn every_verb_switch_to_configuration_prints_is_read() {
    let d = dry_activation(EVERY_VERB).unwrap();
    assert_eq!(
        d.stop,
        s(&["accounts-daemon.service", "simple-service.service"])
    );
    assert_eq!(d.keep, s(&["dbus.service"]));
    assert_eq!(
        d.reload,
        s(&[
            "reload-triggers.service",
            "simple-reload-service.service",
            "templated-reload-triggers@instance.service"
        ])
    );
    assert_eq!(
        d.restart,
        s(&[
            "polkit.service",
            "templated-simple-service@instance.service"
        ])
    );
    assert_eq!(
        d.start,
        s(&["accounts-daemon.service", "simple-service.service"])
    );
    assert!(d.restart_systemd);
    let units = d.units();
    assert_eq!(units[0], "restart: systemd");
    assert!(units.contains(&"changed, not restarted: dbus.service".to_string()));
    assert_eq!(units.len(), 1 + 2 + 1 + 3 + 2 + 2);
}

#[test]
fn a_configuration_that_changes_no_unit_has_an_empty_radius() {
    assert_eq!(dry_activation(NOTHING).unwrap(), DryActivation::default());
    assert!(dry_activation("").unwrap().units().is_empty());
}

#[test]
fn hostile_unit_lists_fail_closed() {
    for bad in [
        "would restart the following units: nginx.service, $(reboot)",
        "would restart the following units: ",
        "would restart the following units: nginx.service,sshd.service",
        "would stop the following units: a b.service",
        "would start the following units: .service",
        "would reload the following units: nginx",
    ] {
        assert!(dry_activation(bad).is_err(), "{bad}");
    }
    let long = format!(
        "would restart the following units: {}",
        vec!["a.service"; MAX_UNITS + 1].join(", ")
    );
    assert!(dry_activation(&long).is_err());
    assert!(dry_activation(&"x".repeat(MAX_TEXT + 1)).is_err());
    // Lines that only look alike are not unit lines.
    let d =
        dry_activation("  would restart the following units: x.service\nwould restart").unwrap();
    assert_eq!(d, DryActivation::default());
}

#[test]
fn a_reboot_is_needed_when_kernel_initrd_or_modules_differ() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, kernel: &str, initrd: &str, modules: Option<&str>| {
        let sys = dir.path().join(name);
        std::fs::create_dir(&sys).unwrap();
        symlink(kernel, sys.join("kernel")).unwrap();
        symlink(initrd, sys.join("initrd")).unwrap();
        if let Some(m) = modules {
            symlink(m, sys.join("kernel-modules")).unwrap();
        }
        boot_files(&sys)
    };
    let k = "/nix/store/aaa-linux-6.12.63/bzImage";
    let i = "/nix/store/bbb-initrd-linux-6.12.63/initrd";
    let m = "/nix/store/ccc-linux-6.12.63-modules";
    let booted = make("booted", k, i, Some(m));
    assert_eq!(booted.kernel.as_deref(), Some(Path::new(k)));
    assert!(!needs_reboot(&booted, &make("same", k, i, Some(m))));
    assert!(needs_reboot(
        &booted,
        &make("kernel", "/nix/store/ddd-linux-6.12.64/bzImage", i, Some(m))
    ));
    assert!(needs_reboot(
        &booted,
        &make("initrd", k, "/nix/store/eee-initrd/initrd", Some(m))
    ));
    assert!(needs_reboot(&booted, &make("modules", k, i, None)));
    // Neither has kernel files (a container): nothing to reboot for, as in auto-upgrade.nix.
    let none = boot_files(&dir.path().join("missing"));
    assert!(!needs_reboot(
        &none,
        &boot_files(&dir.path().join("missing2"))
    ));
}
