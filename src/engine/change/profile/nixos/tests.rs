//! The `nixos` profile end to end on this machine, which has no NixOS: the real `nix flake
//! check` (Debian's nix-bin) and, for `nixos-rebuild`, `systemd-run`, `systemctl`, `nix-env`
//! and `switch-to-configuration`, LABELLED STAND-INS: shell scripts that record the argv steward
//! passes and move the symlinks NixOS would move (`/run/current-system`, the system profile)
//! in a temporary root, printing the lines nixos-rebuild-ng prints (services.py, see
//! `tests/data/nixos/SOURCES.md`). They show the argv and that what the tools leave behind
//! feeds the record; they do not show that NixOS activates anything.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::*;
use crate::base::redact::Redactor;
use crate::config::ChangeConfig;
use crate::engine::change::record::{Artefacts, BlastRadius, CHANGE_FORMAT, ChangeState};

const OLD: &str = "dkzpjsnpa1ds69iapj2h5a8mny4l7l3d-nixos-system-web1-25.05.20260102.ac62194";
const NEW: &str = "ph526hx15q2v8v99ki94y451a8vcmdqq-nixos-system-web1-25.05.20260102.ac62194";

/// A temporary NixOS-shaped root: a store with two systems, generation 14 current and booted.
struct Host {
    _dir: tempfile::TempDir,
    root: PathBuf,
    paths: SystemPaths,
    bin: PathBuf,
    log: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let paths = SystemPaths {
            profile: root.join("profiles/system"),
            current: root.join("run/current-system"),
            booted: root.join("run/booted-system"),
            store: root.join("store"),
        };
        for d in ["profiles", "run", "store", "bin"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        let log = root.join("argv.log");
        let host = Host {
            bin: root.join("bin"),
            _dir: dir,
            root,
            paths,
            log,
        };
        for (name, kernel) in [(OLD, "linux-6.12.63"), (NEW, "linux-6.12.64")] {
            host.system(name, kernel);
        }
        symlink(host.store(OLD), host.root.join("profiles/system-14-link")).unwrap();
        symlink("system-14-link", &host.paths.profile).unwrap();
        symlink(host.store(OLD), &host.paths.current).unwrap();
        symlink(host.store(OLD), &host.paths.booted).unwrap();
        host.tools();
        host
    }

    fn store(&self, name: &str) -> String {
        self.paths.store.join(name).display().to_string()
    }

    /// A system directory with the boot links auto-upgrade.nix compares and a stand-in
    /// `bin/switch-to-configuration` that makes it the running system.
    fn system(&self, name: &str, kernel: &str) {
        let sys = self.paths.store.join(name);
        std::fs::create_dir_all(sys.join("bin")).unwrap();
        symlink(format!("/nix/store/x-{kernel}/bzImage"), sys.join("kernel")).unwrap();
        symlink("/nix/store/y-initrd/initrd", sys.join("initrd")).unwrap();
        symlink(
            format!("/nix/store/z-{kernel}-modules"),
            sys.join("kernel-modules"),
        )
        .unwrap();
        self.script(
            &sys.join("bin/switch-to-configuration"),
            &format!("ln -sfn {} {}", sys.display(), self.paths.current.display()),
        );
    }

    fn script(&self, path: &Path, body: &str) {
        let text = format!(
            "#!/bin/sh\n# STAND-IN for tests: records its argv.\necho \"$(basename \"$0\") $*\" >> {}\n{body}\n",
            self.log.display()
        );
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn tools(&self) {
        let new = self.store(NEW);
        let current = self.paths.current.display();
        let profiles = self.root.join("profiles");
        let rebuild = format!(
            r#"echo "building the system configuration..." >&2
mode=$(cat {root}/mode 2>/dev/null)
case "$1" in
  build) [ "$mode" = no-result ] || ln -s {new} result ;;
  test) if [ "$mode" = wrong-system ]; then ln -sfn {old} {current}; else ln -sfn {new} {current}; fi ;;
  switch) ln -s {new} {profiles}/system-15-link && ln -sfn system-15-link {profiles}/system && ln -sfn {new} {current} ;;
esac
printf "Done. The new configuration is " >&2
echo {new}"#,
            root = self.root.display(),
            old = self.store(OLD),
            profiles = profiles.display(),
        );
        self.script(&self.bin.join("nixos-rebuild"), &rebuild);
        self.script(
            &self.bin.join("systemd-run"),
            "echo \"Running timer as unit: ${1#--unit=}.timer\" >&2",
        );
        let systemctl = format!(
            r#"if [ "$(cat {}/mode 2>/dev/null)" = fired ]; then echo "Failed to stop $2: Unit $2 not loaded." >&2; exit 5; fi"#,
            self.root.display()
        );
        self.script(&self.bin.join("systemctl"), &systemctl);
        let nix_env = format!(
            r#"[ "$3" = --switch-generation ] && ln -sfn "system-$4-link" {}/system"#,
            profiles.display()
        );
        self.script(&self.bin.join("nix-env"), &nix_env);
    }

    fn mode(&self, mode: &str) {
        std::fs::write(self.root.join("mode"), mode).unwrap();
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn path_env(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display())
    }
}

fn cfg(host: Option<&str>, deadman_secs: u64) -> ChangeConfig {
    ChangeConfig {
        nix: [
            "nix",
            "--extra-experimental-features",
            "nix-command flakes",
            "--option",
            "substituters",
            "",
            "--option",
            "sandbox",
            "false",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect(),
        nixos_host: host.map(str::to_string),
        deadman_secs,
        validate_timeout_secs: 120,
        apply_timeout_secs: 60,
        ..ChangeConfig::default()
    }
}

fn record(artefacts: Artefacts, target: RollbackTarget) -> ChangeRecord {
    let now = OffsetDateTime::now_utc();
    ChangeRecord {
        format: CHANGE_FORMAT,
        id: "c-0123456789ab".into(),
        state: ChangeState::Applying,
        run: "r-1".into(),
        goal: "change".into(),
        subject: "intent".into(),
        intent: "enable nginx".into(),
        workspace: "/ws".into(),
        workspace_branch: Some("main".into()),
        base: "a".repeat(40),
        branch: "steward/r-1".into(),
        head: "b".repeat(40),
        worktree: "/state/worktrees/r-1".into(),
        diff_sha256: "c".repeat(64),
        files: Vec::new(),
        profile: Profile::Nixos,
        edit: vec!["**".into()],
        validate: vec![],
        apply: None,
        rollback: None,
        validation: Vec::new(),
        repair_rounds: 0,
        artefacts,
        blast_radius: BlastRadius::default(),
        rollback_target: target,
        post_checks: vec![],
        created: now,
        expires: now,
        reason: String::new(),
        steps: Vec::new(),
        reboot_needed: false,
        history: Vec::new(),
    }
}

/// A flake with no inputs whose one check builds with /bin/sh (no substituters, no sandbox).
fn flake(dir: &Path, ok: bool) {
    let body = if ok { "echo ok > $out" } else { "exit 1" };
    std::fs::write(
        dir.join("flake.nix"),
        format!(
            r#"{{ outputs = {{ self }}: {{ checks.x86_64-linux.ok = builtins.derivation {{
  name = "ok"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "{body}" ]; }}; }}; }}"#
        ),
    )
    .unwrap();
}

fn nix_available() -> bool {
    let ok = std::process::Command::new("nix")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and nix is not installed (Debian package nix-bin)");
    }
    ok
}

fn artefacts(host: &Host) -> Artefacts {
    Artefacts {
        store_paths: BTreeMap::from([("web1".to_string(), host.store(NEW))]),
        ..Artefacts::default()
    }
}

fn generation_14(host: &Host) -> RollbackTarget {
    RollbackTarget::Generation {
        number: 14,
        path: host.store(OLD),
    }
}

fn whats(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.what.as_str()).collect()
}

#[tokio::test]
async fn static_checks_run_flake_check_and_build_and_keep_the_built_system() {
    if !nix_available() {
        return;
    }
    let host = Host::new();
    let tree = tempfile::tempdir().unwrap();
    flake(tree.path(), true);
    let (cfg, redactor, path_env) = (
        cfg(Some("web1"), 300),
        Redactor::new(vec![]),
        host.path_env(),
    );
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let report = static_checks_at(&env, tree.path(), &[], 0, &host.paths).await;
    let v = &report.validations;
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v[0].passed, "nix flake check: {:#?}", v[0]);
    assert_eq!(
        &v[0].argv[v[0].argv.len() - 3..],
        ["flake", "check", "--no-update-lock-file"]
    );
    let flake_ref = format!("{}#web1", tree.path().display());
    let build = vec![
        "nixos-rebuild",
        "build",
        "--flake",
        flake_ref.as_str(),
        "--no-update-lock-file",
    ];
    assert_eq!(v[1].argv, build);
    assert!(
        v[1].passed && v[1].source == ValidatorSource::Profile,
        "{:#?}",
        v[1]
    );
    assert_eq!(report.artefacts.store_paths["web1"], host.store(NEW));
    assert_eq!(host.log(), vec![build.join(" ")]);
    // The build ran elsewhere: the change's tree holds no `result` link.
    assert!(!tree.path().join("result").exists());
    assert!(report.blast_radius.units.is_empty());
    assert!(
        report.blast_radius.notes[0].contains("dry-activate"),
        "{report:#?}"
    );
}

#[tokio::test]
async fn a_failing_flake_check_fails_validation_and_no_host_means_no_build() {
    if !nix_available() {
        return;
    }
    let host = Host::new();
    let tree = tempfile::tempdir().unwrap();
    flake(tree.path(), false);
    let (cfg, redactor, path_env) = (cfg(None, 300), Redactor::new(vec![]), host.path_env());
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let report = super::super::static_checks(&env, Profile::Nixos, tree.path(), &[], 1).await;
    assert_eq!(report.validations.len(), 1);
    assert!(!report.validations[0].passed);
    assert_eq!(report.validations[0].round, 1);
    assert!(report.artefacts.is_empty());
    assert!(host.log().is_empty());
}

#[tokio::test]
async fn a_build_that_names_no_system_is_not_a_pass() {
    let host = Host::new();
    host.mode("no-result");
    let tree = tempfile::tempdir().unwrap();
    let (cfg, redactor, path_env) = (cfg(Some("web1"), 0), Redactor::new(vec![]), host.path_env());
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let b = build::run(&env, tree.path(), "web1", 0, &host.paths).await;
    assert!(!b.validation.passed);
    assert_eq!(b.validation.exit_code, Some(0));
    assert!(
        b.validation
            .error
            .as_deref()
            .unwrap()
            .contains("no `result` link")
    );
    assert!(b.store_path.is_none());
}

#[test]
fn the_rollback_target_is_the_current_generation_by_number_and_path() {
    let host = Host::new();
    assert_eq!(
        rollback_target_at(&host.paths).unwrap(),
        generation_14(&host)
    );
    // A profile that is not a generation link is refused, never guessed.
    std::fs::remove_file(&host.paths.profile).unwrap();
    symlink(host.store(OLD), &host.paths.profile).unwrap();
    assert!(matches!(
        rollback_target_at(&host.paths),
        Err(ProfileError::Parse { .. })
    ));
    std::fs::remove_file(&host.paths.profile).unwrap();
    assert!(matches!(
        rollback_target_at(&host.paths),
        Err(ProfileError::Parse { .. })
    ));
}

#[tokio::test]
async fn apply_tests_under_the_deadman_timer_then_finish_confirms_and_switches() {
    let host = Host::new();
    let tree = tempfile::tempdir().unwrap();
    let (cfg, redactor, path_env) = (
        cfg(Some("web1"), 300),
        Redactor::new(vec![]),
        host.path_env(),
    );
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let rec = record(artefacts(&host), generation_14(&host));
    let mut steps = Vec::new();
    apply_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap();
    assert_eq!(
        whats(&steps),
        ["deadman_start", "test", "verify_generation"]
    );
    let flake = format!("{}#web1", tree.path().display());
    let old = host.store(OLD);
    assert_eq!(
        host.log(),
        vec![
            format!(
                "systemd-run --unit=steward-deadman-c-0123456789ab --description=steward dead-man: switch back to {old} --on-active=300s --timer-property=AccuracySec=1s --timer-property=RemainAfterElapse=no {old}/bin/switch-to-configuration switch"
            ),
            format!("nixos-rebuild test --flake {flake} --no-update-lock-file"),
        ]
    );
    assert_eq!(
        std::fs::canonicalize(&host.paths.current).unwrap(),
        Path::new(&host.store(NEW))
    );
    finish_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap();
    assert_eq!(
        whats(&steps[3..]),
        [
            "deadman_confirm",
            "verify_generation",
            "switch",
            "verify_generation"
        ]
    );
    assert_eq!(
        host.log()[2..],
        [
            "systemctl stop steward-deadman-c-0123456789ab.timer".to_string(),
            format!("nixos-rebuild switch --flake {flake} --no-update-lock-file"),
        ]
    );
    assert!(steps.iter().all(|s| s.ok));
    assert!(
        reboot_needed_at(&host.paths),
        "the new system has another kernel"
    );
}

#[tokio::test]
async fn an_activated_system_other_than_the_built_one_fails_apply() {
    let host = Host::new();
    host.mode("wrong-system");
    let tree = tempfile::tempdir().unwrap();
    let (cfg, redactor, path_env) = (cfg(Some("web1"), 0), Redactor::new(vec![]), host.path_env());
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let rec = record(artefacts(&host), generation_14(&host));
    let mut steps = Vec::new();
    let err = apply_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::StepFailed { .. }), "{err}");
    assert_eq!(whats(&steps), ["test", "verify_generation"]);
    assert!(
        !steps[1].ok && steps[1].output.contains("not"),
        "{:?}",
        steps[1]
    );
    // Without a built artefact there is nothing approved to activate.
    let bare = record(Artefacts::default(), generation_14(&host));
    let err = apply_at(&env, &bare, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::Unsupported { .. }), "{err}");
}

#[tokio::test]
async fn a_timer_that_already_fired_fails_finish_before_switch() {
    let host = Host::new();
    let tree = tempfile::tempdir().unwrap();
    let (cfg, redactor, path_env) = (
        cfg(Some("web1"), 300),
        Redactor::new(vec![]),
        host.path_env(),
    );
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let rec = record(artefacts(&host), generation_14(&host));
    let mut steps = Vec::new();
    host.mode("fired");
    let err = finish_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap_err();
    assert!(matches!(err, ProfileError::StepFailed { .. }), "{err}");
    assert_eq!(whats(&steps), ["deadman_confirm"]);
    assert_eq!(steps[0].exit_code, Some(5));
    assert!(!host.log().iter().any(|l| l.contains("switch --flake")));
}

#[tokio::test]
async fn rollback_switches_to_the_recorded_generation_and_verifies_it() {
    let host = Host::new();
    let tree = tempfile::tempdir().unwrap();
    let (cfg, redactor, path_env) = (
        cfg(Some("web1"), 300),
        Redactor::new(vec![]),
        host.path_env(),
    );
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let rec = record(artefacts(&host), generation_14(&host));
    let mut steps = Vec::new();
    apply_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap();
    finish_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap();
    assert_eq!(
        std::fs::canonicalize(&host.paths.profile).unwrap(),
        Path::new(&host.store(NEW))
    );
    host.mode("fired");
    let before = host.log().len();
    let mut steps = Vec::new();
    rollback_at(&env, &rec, tree.path(), &mut steps, &host.paths)
        .await
        .unwrap();
    assert_eq!(
        whats(&steps),
        [
            "deadman_stop",
            "rollback_profile",
            "rollback",
            "verify_generation"
        ]
    );
    assert!(!steps[0].ok, "the failed stop is recorded, not hidden");
    let old = host.store(OLD);
    assert_eq!(
        host.log()[before..],
        [
            "systemctl stop steward-deadman-c-0123456789ab.timer".to_string(),
            format!(
                "nix-env -p {} --switch-generation 14",
                host.paths.profile.display()
            ),
            "switch-to-configuration switch".to_string(),
        ]
    );
    assert_eq!(
        std::fs::canonicalize(&host.paths.current).unwrap(),
        Path::new(&old)
    );
    assert_eq!(
        std::fs::canonicalize(&host.paths.profile).unwrap(),
        Path::new(&old)
    );
    assert!(steps[3].ok && steps[3].output.contains(&old));
    assert!(!reboot_needed_at(&host.paths));
}

#[tokio::test]
async fn rollback_without_a_generation_target_refuses() {
    let host = Host::new();
    let (cfg, redactor, path_env) = (cfg(Some("web1"), 0), Redactor::new(vec![]), host.path_env());
    let env = ProfileEnv {
        cfg: &cfg,
        path_env: &path_env,
        redactor: &redactor,
    };
    let rec = record(
        artefacts(&host),
        RollbackTarget::BaseCommit {
            sha: "a".repeat(40),
        },
    );
    let mut steps = Vec::new();
    let err = super::super::rollback(&env, &rec, host.root.as_path(), &mut steps)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a system generation"), "{err}");
    assert!(steps.is_empty() && host.log().is_empty());
}
