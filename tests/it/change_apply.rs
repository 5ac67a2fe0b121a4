//! Applying an approved change (`engine::change::apply`), verifying it and rolling it back, with
//! real git and the real steps: the `command` profile with files standing in for the host, and
//! the `compose` profile against a real engine (podman serving the Docker API, Debian's
//! docker-compose, busybox httpd on a loopback port; see `common::podman`).
//!
//! Each change is made the way runs make it: a worktree of the workspace, the edit, steward's
//! commit, the diff, the static phase (the compose profile's own checks included), then filed
//! `approved` in the change store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use steward::base::cancel::Cancel;
use steward::base::outcome::ExitKind;
use steward::config::{ChangeConfig, Config};
use steward::defs::change::Profile;
use steward::engine::change::apply::{self, exit_kind, recover_applying};
use steward::engine::change::diff::{DiffLimits, DiffStatus};
use steward::engine::change::git::ChangeGit;
use steward::engine::change::profile::{ProfileEnv, StaticReport};
use steward::engine::change::record::{
    CHANGE_FORMAT, ChangeFile, ChangeRecord, ChangeState, RollbackTarget, Transition,
};
use steward::engine::change::static_phase;
use steward::engine::change::store::ChangeStore;
use steward::engine::change::worktree::Worktree;

use crate::common::{self, podman::Podman, require};

const PATH: &str = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn git(dir: &Path, args: &[&str]) -> String {
    common::git::stdout(dir, args).trim_end().to_string()
}

/// A workspace repository (`ws/`, branch `main`), definitions (`defs/`), a state directory.
struct Fixture {
    tmp: tempfile::TempDir,
    cfg: Config,
}

/// What a change does: its edits, how it is applied and checked.
struct Proposal<'a> {
    run: &'a str,
    /// Path and new content (`None`: delete).
    edits: &'a [(&'a str, Option<&'a str>)],
    profile: Profile,
    apply: Option<Vec<String>>,
    rollback: Option<Vec<String>>,
    post_checks: &'a [&'a str],
}

impl Fixture {
    fn new(files: &[(&str, &str)], change: ChangeConfig) -> Option<Fixture> {
        require::tool("git")?;
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        git(&ws, &["init", "-q", "-b", "main"]);
        for (path, text) in files {
            write(&ws.join(path), text);
        }
        git(&ws, &["add", "-A"]);
        git(&ws, &["commit", "-q", "-m", "base"]);
        let defs = tmp.path().join("defs");
        write(
            &defs.join("goals/change-test.md"),
            "+++\ndescription = \"a test goal that changes the repository\"\n[checks]\ninvariants = [\"tag:inv\"]\n+++\nChange things.\n",
        );
        write(&defs.join("context/checks.toml"), "");
        let mut cfg = Config {
            workspace: ws.canonicalize().unwrap(),
            state_dir: tmp.path().join("state"),
            goals_dir: Some(defs.join("goals")),
            context_dir: Some(defs.join("context")),
            no_bundled: true,
            change,
            ..Config::default()
        };
        cfg.claude.path = PATH.to_string();
        cfg.change.path = PATH.to_string();
        Some(Fixture { tmp, cfg })
    }

    fn ws(&self) -> &Path {
        &self.cfg.workspace
    }

    fn scratch(&self) -> PathBuf {
        let p = self.tmp.path().join("host");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Appends `[[check]]` tables.
    fn checks(&self, toml_text: &str) {
        use std::io::Write;
        let path = self.cfg.context_dir.as_ref().unwrap().join("checks.toml");
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        writeln!(f, "{toml_text}").unwrap();
    }

    fn store(&self) -> ChangeStore {
        ChangeStore::open(&self.cfg.state_dir).unwrap()
    }

    /// Makes the change as a run does and files it `approved`; returns it with its static phase.
    async fn propose(&self, p: Proposal<'_>) -> (ChangeRecord, StaticReport) {
        let git = ChangeGit::new(PATH).unwrap();
        let root = self.cfg.state_dir.join("worktrees");
        let wt = Worktree::create(&git, self.ws(), &root, p.run)
            .await
            .unwrap();
        for (path, text) in p.edits {
            match text {
                Some(t) => write(&wt.path.join(path), t),
                None => std::fs::remove_file(wt.path.join(path)).unwrap(),
            }
        }
        wt.commit("a test change").await.unwrap().expect("a commit");
        let diff = wt.diff(DiffLimits::default()).await.unwrap();
        let files: Vec<ChangeFile> = diff.files.iter().map(change_file).collect();
        let redactor = steward::engine::run::redactor(&self.cfg);
        let env = ProfileEnv {
            cfg: &self.cfg.change,
            path_env: PATH,
            redactor: &redactor,
        };
        let report = static_phase::run(&env, p.profile, &wt.path, &[], &files, 0).await;
        let now = time::OffsetDateTime::now_utc();
        let history = [ChangeState::Pending, ChangeState::Approved].map(|to| Transition {
            at: now,
            to,
            by: "test".into(),
            note: String::new(),
        });
        let rec = ChangeRecord {
            format: CHANGE_FORMAT,
            id: ChangeRecord::new_id(),
            state: ChangeState::Approved,
            run: p.run.into(),
            goal: "change-test".into(),
            subject: "test".into(),
            intent: "a test change".into(),
            workspace: wt.workspace.clone(),
            workspace_branch: wt.workspace_branch().await.unwrap(),
            base: wt.base.clone(),
            branch: wt.branch.clone(),
            head: wt.head().await.unwrap(),
            worktree: wt.path.clone(),
            diff_sha256: diff.diff_sha256.clone(),
            files,
            profile: p.profile,
            edit: vec!["**".into()],
            validate: vec![],
            apply: p.apply,
            rollback: p.rollback,
            validation: report.validations.clone(),
            repair_rounds: 0,
            artefacts: report.artefacts.clone(),
            blast_radius: report.blast_radius.clone(),
            rollback_target: RollbackTarget::BaseCommit {
                sha: wt.base.clone(),
            },
            post_checks: p.post_checks.iter().map(|s| s.to_string()).collect(),
            created: now,
            expires: now + time::Duration::days(7),
            reason: String::new(),
            steps: vec![],
            reboot_needed: false,
            history: history.to_vec(),
        };
        self.store().create(&rec).unwrap();
        (rec, report)
    }

    async fn apply(&self, id: &str) -> ChangeRecord {
        let started = Instant::now();
        let done = apply::apply(&self.cfg, id, &Cancel::never()).await.unwrap();
        eprintln!(
            "apply {id}: {} in {:.1}s: {}",
            done.state,
            started.elapsed().as_secs_f64(),
            done.reason
        );
        for s in &done.steps {
            eprintln!("  {} ok={} {} ms", s.what, s.ok, s.duration_ms);
        }
        // The record on disk is the returned one, in its state's directory.
        assert_eq!(self.store().get(id).unwrap(), done);
        done
    }

    fn head(&self) -> String {
        git(self.ws(), &["rev-parse", "HEAD"])
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn change_file(f: &steward::engine::change::diff::DiffFile) -> ChangeFile {
    let status = match f.status {
        DiffStatus::Added => "added",
        DiffStatus::Modified => "modified",
        DiffStatus::Deleted => "deleted",
        DiffStatus::Renamed { .. } => "renamed",
        DiffStatus::TypeChanged => "type_changed",
    };
    ChangeFile {
        path: f.path.to_string_lossy().into_owned(),
        status: status.into(),
        old_path: f
            .old_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        added: f.added,
        removed: f.removed,
        binary: f.binary,
    }
}

fn steps(rec: &ChangeRecord) -> Vec<(&str, bool)> {
    rec.steps.iter().map(|s| (s.what.as_str(), s.ok)).collect()
}

fn step<'a>(rec: &'a ChangeRecord, what: &str) -> &'a steward::engine::change::record::Step {
    rec.steps
        .iter()
        .rev()
        .find(|s| s.what == what)
        .unwrap_or_else(|| panic!("no step {what}: {:?}", steps(rec)))
}

fn events(state: &Path, kind: &str) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(state.join("events")) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|v| v["kind"] == kind)
        .collect()
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

fn quick() -> ChangeConfig {
    ChangeConfig {
        settle_secs: 2,
        ..ChangeConfig::default()
    }
}

// ---------------------------------------------------------------- command profile

/// The host is a file outside the workspace; `apply` and `rollback` copy `state.txt` from the
/// directory they run in onto it (and the rollback writes down where it ran).
fn command_fixture() -> Option<(Fixture, PathBuf)> {
    let f = Fixture::new(&[("state.txt", "healthy v1\n")], quick())?;
    let host = f.scratch();
    std::fs::write(host.join("current"), "healthy v1\n").unwrap();
    let current = host.join("current").display().to_string();
    f.checks(&format!(
        "[[check]]\nname = \"host-healthy\"\ndescription = \"the host is healthy\"\nkind = \"file\"\npath = \"{current}\"\ncontains = \"healthy\"\ntags = [\"inv\"]\n\n[[check]]\nname = \"host-v2\"\ndescription = \"the host runs v2\"\nkind = \"file\"\npath = \"{current}\"\ncontains = \"v2\"\n"
    ));
    Some((f, host))
}

fn copy_to(host: &Path) -> Vec<String> {
    let script = format!(
        "pwd > {h}/ran-in.$$; cp state.txt {h}/current",
        h = host.display()
    );
    words(&["sh", "-c", &script])
}

#[tokio::test]
async fn command_a_verified_change_is_applied_from_its_worktree_and_the_workspace_follows() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let base = f.head();
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-ok",
            edits: &[("state.txt", Some("healthy v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(copy_to(&host)),
            post_checks: &["host-v2"],
        })
        .await;
    let done = f.apply(&rec.id).await;
    assert_eq!(done.state, ChangeState::Applied, "{:#?}", done.steps);
    assert_eq!(exit_kind(&done), ExitKind::Ok);
    assert_eq!(
        steps(&done),
        [
            ("check_before", true),
            ("apply", true),
            ("verify", true),
            ("fast_forward", true)
        ]
    );
    assert_eq!(
        std::fs::read_to_string(host.join("current")).unwrap(),
        "healthy v2\n"
    );
    // The repository says what runs: main is the change's commit, the checkout clean.
    assert_ne!(base, done.head);
    assert_eq!(f.head(), done.head);
    assert_eq!(git(f.ws(), &["branch", "--show-current"]), "main");
    assert_eq!(git(f.ws(), &["status", "--porcelain"]), "");
    // Applied: its worktree and branch are gone, its commit is in main's history.
    assert!(!done.worktree.exists(), "{}", done.worktree.display());
    assert_eq!(git(f.ws(), &["branch", "--list", &done.branch]), "");
    // Before, the post-check failed (v1), the invariant held; after, both pass.
    let before = step(&done, "check_before").checks.clone().unwrap();
    assert_eq!(before["post"][0]["status"], "fail");
    assert_eq!(before["invariants"][0]["status"], "pass");
    // A second apply of the same change is refused: it is no longer approved.
    let again = apply::apply(&f.cfg, &rec.id, &Cancel::never())
        .await
        .unwrap_err();
    assert_eq!(again.exit_kind(), ExitKind::Usage, "{again}");
}

#[tokio::test]
async fn command_a_failing_check_rolls_back_in_a_checkout_of_the_base_and_exits_5() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let base = f.head();
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-bad",
            edits: &[("state.txt", Some("broken v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(copy_to(&host)),
            post_checks: &["host-v2"],
        })
        .await;
    let done = f.apply(&rec.id).await;
    assert_eq!(done.state, ChangeState::RolledBack, "{:#?}", done.steps);
    assert_eq!(exit_kind(&done), ExitKind::ValidationFailed);
    assert_eq!(exit_kind(&done).code(), 5);
    assert_eq!(
        steps(&done),
        [
            ("check_before", true),
            ("apply", true),
            ("verify", false),
            ("checkout_base", true),
            ("rollback", true),
            ("remove_base_checkout", true),
            ("verify_rollback", true),
        ]
    );
    assert!(
        done.reason.contains("invariant `host-healthy` fail"),
        "{}",
        done.reason
    );
    // The host is back, the workspace never moved.
    assert_eq!(
        std::fs::read_to_string(host.join("current")).unwrap(),
        "healthy v1\n"
    );
    assert_eq!(f.head(), base);
    assert_eq!(git(f.ws(), &["status", "--porcelain"]), "");
    // The apply ran in the change's worktree, the rollback in a checkout of the base that is
    // neither the live checkout nor left behind.
    let mut ran: Vec<PathBuf> = std::fs::read_dir(&host)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ran-in."))
        .map(|e| PathBuf::from(std::fs::read_to_string(e.path()).unwrap().trim()))
        .collect();
    ran.sort_by_key(|p| p.starts_with(&rec.worktree));
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert_eq!(ran[1], rec.worktree);
    let rollback_dir = &ran[0];
    assert!(
        rollback_dir.starts_with(f.cfg.state_dir.join("rollback-checkouts")),
        "{rollback_dir:?}"
    );
    assert!(!rollback_dir.exists(), "the base checkout was left behind");
    assert!(
        !git(f.ws(), &["worktree", "list"]).contains("rollback-"),
        "still registered"
    );
    let verified = step(&done, "verify_rollback").checks.clone().unwrap();
    assert_eq!(verified["invariants"][0]["status"], "pass");
    assert_eq!(events(&f.cfg.state_dir, "operator_notice").len(), 0);
}

#[tokio::test]
async fn command_a_rollback_that_fails_is_failed_and_the_operator_is_told() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-worse",
            edits: &[("state.txt", Some("broken v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(words(&["false"])),
            post_checks: &["host-v2"],
        })
        .await;
    let done = f.apply(&rec.id).await;
    assert_eq!(done.state, ChangeState::Failed, "{:#?}", done.steps);
    assert_eq!(exit_kind(&done), ExitKind::NeedsHuman);
    assert!(
        done.reason.starts_with("ROLLBACK FAILED"),
        "{}",
        done.reason
    );
    assert!(done.reason.contains("a human must look"), "{}", done.reason);
    assert_eq!(step(&done, "rollback").exit_code, Some(1));
    let notices = events(&f.cfg.state_dir, "operator_notice");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["change"], rec.id.as_str());
    assert_eq!(notices[0]["cause"], "change_rollback_failed");
}

#[tokio::test]
async fn a_commit_on_the_workspace_after_the_proposal_makes_the_change_stale_and_nothing_runs() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-stale",
            edits: &[("state.txt", Some("healthy v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(copy_to(&host)),
            post_checks: &["host-v2"],
        })
        .await;
    write(&f.ws().join("other.txt"), "x\n");
    git(f.ws(), &["add", "other.txt"]);
    git(f.ws(), &["commit", "-q", "-m", "meanwhile"]);
    let done = f.apply(&rec.id).await;
    assert_eq!(done.state, ChangeState::Stale);
    assert!(done.reason.contains("a commit landed"), "{}", done.reason);
    assert!(done.steps.is_empty());
    assert_eq!(
        std::fs::read_to_string(host.join("current")).unwrap(),
        "healthy v1\n"
    );
    assert_ne!(exit_kind(&done), ExitKind::Ok);
}

/// A push filed by `steward ci --apply`: the workspace is at the change's head already, and
/// applying it is not stale; a failing check still rolls the host back.
#[tokio::test]
async fn a_workspace_already_at_the_change_head_is_applied_and_rolled_back_from_there() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-pushed",
            edits: &[("state.txt", Some("broken v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(copy_to(&host)),
            post_checks: &[],
        })
        .await;
    git(f.ws(), &["merge", "--ff-only", "-q", &rec.head]);
    let done = f.apply(&rec.id).await;
    assert_eq!(done.state, ChangeState::RolledBack, "{:#?}", done.steps);
    assert!(
        done.reason.contains("invariant `host-healthy`"),
        "{}",
        done.reason
    );
    assert_eq!(
        std::fs::read_to_string(host.join("current")).unwrap(),
        "healthy v1\n"
    );
    // The command profile's rollback runs in a checkout of the base: the workspace stays put.
    assert_eq!(f.head(), rec.head);
}

#[tokio::test]
async fn a_change_a_crash_left_applying_is_recovered_as_failed() {
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-crash",
            edits: &[("state.txt", Some("healthy v2\n"))],
            profile: Profile::Command,
            apply: Some(copy_to(&host)),
            rollback: Some(copy_to(&host)),
            post_checks: &[],
        })
        .await;
    let store = f.store();
    store
        .transition::<steward::engine::change::store::StoreError>(
            &rec.id,
            &[ChangeState::Approved],
            ChangeState::Applying,
            "steward",
            "",
            |_| Ok(()),
        )
        .unwrap();
    assert_eq!(recover_applying(&store).unwrap(), vec![rec.id.clone()]);
    let after = store.get(&rec.id).unwrap();
    assert_eq!(after.state, ChangeState::Failed);
    assert!(
        after.reason.contains("stopped while applying"),
        "{}",
        after.reason
    );
    assert_eq!(exit_kind(&after), ExitKind::NeedsHuman);
    assert!(recover_applying(&store).unwrap().is_empty());
}

/// A stop asked for while `apply` runs lets the step finish, then rolls back (the change is
/// never left applied and unverified); a second, urgent stop kills the step and stops, `failed`.
#[tokio::test]
async fn a_stop_during_apply_rolls_back_and_an_urgent_one_stops_loudly() {
    use steward::base::cancel::{StopSignal, pair};
    let Some((f, host)) = command_fixture() else {
        return;
    };
    let slow = |secs: &str| {
        let mut argv = copy_to(&host);
        argv[2] = format!("{}; sleep {secs}", argv[2]);
        argv
    };
    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-stop",
            edits: &[("state.txt", Some("healthy v2\n"))],
            profile: Profile::Command,
            apply: Some(slow("1")),
            rollback: Some(copy_to(&host)),
            post_checks: &["host-v2"],
        })
        .await;
    let (canceller, cancel) = pair();
    let stopper = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        canceller.stop(StopSignal::Terminate);
    };
    let (done, ()) = tokio::join!(apply::apply(&f.cfg, &rec.id, &cancel), stopper);
    let done = done.unwrap();
    assert_eq!(done.state, ChangeState::RolledBack, "{:#?}", done.steps);
    assert!(
        done.reason.contains("stopped by SIGTERM while applying"),
        "{}",
        done.reason
    );
    assert!(step(&done, "apply").ok, "the apply step was not let finish");
    assert_eq!(
        std::fs::read_to_string(host.join("current")).unwrap(),
        "healthy v1\n"
    );

    let (rec, _) = f
        .propose(Proposal {
            run: "r-cmd-kill",
            edits: &[("state.txt", Some("healthy v3\n"))],
            profile: Profile::Command,
            apply: Some(slow("30")),
            rollback: Some(copy_to(&host)),
            post_checks: &["host-v2"],
        })
        .await;
    let (canceller, cancel) = pair();
    let stopper = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        canceller.stop(StopSignal::Interrupt);
        canceller.stop(StopSignal::Interrupt);
    };
    let t = Instant::now();
    let (done, ()) = tokio::join!(apply::apply(&f.cfg, &rec.id, &cancel), stopper);
    let done = done.unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "the step was not killed"
    );
    assert_eq!(done.state, ChangeState::Failed, "{:#?}", done.steps);
    assert!(
        done.reason.contains("urgent stop (SIGINT)"),
        "{}",
        done.reason
    );
    assert_eq!(
        steps(&done),
        [("check_before", true), ("apply", false)],
        "nothing runs after an urgent stop"
    );
    assert_eq!(events(&f.cfg.state_dir, "operator_notice").len(), 1);
}

// ---------------------------------------------------------------- compose profile

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `web` serves `www` on the port; `idle` only sleeps (a change to `web` must not recreate it).
fn compose_file(port: u16, www: &str) -> String {
    let image = common::podman::IMAGE;
    format!(
        "services:\n  web:\n    image: {image}\n    network_mode: host\n    command: [\"/bin/httpd\", \"-f\", \"-p\", \"127.0.0.1:{port}\", \"-h\", \"/www\"]\n    stop_signal: SIGKILL\n    volumes:\n      - ./{www}:/www:ro\n  idle:\n    image: {image}\n    network_mode: host\n    command: [\"/bin/sleep\", \"100000\"]\n    stop_signal: SIGKILL\n"
    )
}

/// The page on the port, or `None` when nothing answers.
fn page(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// Waits up to 10 s for the page to say `text`.
fn serves(port: u16, text: &str) -> bool {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while Instant::now() < deadline {
        if page(port).is_some_and(|p| p.contains(text)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_a_change_is_recreated_and_verified_and_a_failing_one_rolls_back() {
    let started = Instant::now();
    let Some(compose) = require::tool("docker-compose") else {
        return;
    };
    let Some(engine) = Podman::start() else {
        return;
    };
    eprintln!("podman ready in {:.1}s", started.elapsed().as_secs_f64());
    let port = free_port();
    let mut env = BTreeMap::new();
    env.insert("DOCKER_HOST".to_string(), engine.docker_host());
    let cfg = ChangeConfig {
        compose: vec![compose.display().to_string()],
        env,
        ..quick()
    };
    let Some(f) = Fixture::new(
        &[
            ("app/compose.yaml", &compose_file(port, "www")),
            ("app/www/index.html", "hello v1\n"),
            ("app/www2/index.html", "hello v2\n"),
            ("README.md", "the homelab\n"),
        ],
        cfg,
    ) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/");
    f.checks(&format!(
        "[[check]]\nname = \"web-v2\"\ndescription = \"the web page is v2\"\nkind = \"http\"\nurl = \"{url}\"\nbody_matches = \"v2\"\ntimeout_secs = 3\n"
    ));
    // The operator's deployment of the base, as compose would name it from the directory.
    let app = f.ws().join("app");
    let up = std::process::Command::new(&compose)
        .args(["up", "-d"])
        .current_dir(&app)
        .env("DOCKER_HOST", engine.docker_host())
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(serves(port, "hello v1"), "the base does not serve");
    let first = engine.running("app");
    assert_eq!(first.len(), 2, "{first:?}");

    // 1. The page moves to www2: the container is recreated, the post-check passes.
    let (rec, report) = f
        .propose(Proposal {
            run: "r-compose-ok",
            edits: &[("app/compose.yaml", Some(&compose_file(port, "www2")))],
            profile: Profile::Compose,
            apply: None,
            rollback: None,
            post_checks: &["web-v2"],
        })
        .await;
    assert!(
        report.validations.iter().all(|v| v.passed),
        "{:#?}",
        report.validations
    );
    let sha = &report.artefacts.compose_config_sha256["app/compose.yaml"];
    assert_eq!(sha.len(), 64);
    assert_eq!(
        report.blast_radius.compose_services["app/compose.yaml"],
        vec!["web".to_string()]
    );
    assert!(
        report.validations[0]
            .argv
            .windows(2)
            .any(|w| w == ["-p", "app"]),
        "{:?}",
        report.validations[0].argv
    );
    let t = Instant::now();
    let done = f.apply(&rec.id).await;
    eprintln!("good compose change: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(done.state, ChangeState::Applied, "{:#?}", done.steps);
    assert_eq!(exit_kind(&done), ExitKind::Ok);
    assert_eq!(
        steps(&done),
        [
            ("check_before", true),
            ("fast_forward", true),
            ("apply", true),
            ("verify", true)
        ]
    );
    assert!(page(port).unwrap().contains("hello v2"));
    // web was recreated, idle (its configuration unchanged) was not; one project, not two.
    let second = engine.running("app");
    assert_eq!(second.len(), 2, "one project, not two: {second:?}");
    let kept: Vec<&String> = second.iter().filter(|c| first.contains(c)).collect();
    assert_eq!(
        kept.len(),
        1,
        "web was not recreated, or idle was: {first:?} {second:?}"
    );
    assert_eq!(f.head(), done.head);
    assert_eq!(git(f.ws(), &["status", "--porcelain"]), "");

    // 2. A change that moves the server to another port: the post-check fails, the workspace
    // goes back to the base, the base's files come up again and the page is served again.
    let other = free_port();
    let base = f.head();
    let (rec, _) = f
        .propose(Proposal {
            run: "r-compose-bad",
            edits: &[("app/compose.yaml", Some(&compose_file(other, "www2")))],
            profile: Profile::Compose,
            apply: None,
            rollback: None,
            post_checks: &["web-v2"],
        })
        .await;
    let t = Instant::now();
    let done = f.apply(&rec.id).await;
    eprintln!("failing compose change: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(done.state, ChangeState::RolledBack, "{:#?}", done.steps);
    assert_eq!(exit_kind(&done).code(), 5);
    assert_eq!(
        steps(&done),
        [
            ("check_before", true),
            ("fast_forward", true),
            ("apply", true),
            ("verify", false),
            ("reset_workspace", true),
            ("rollback", true),
            ("verify_rollback", true),
        ]
    );
    assert!(
        done.reason.contains("post-check `web-v2` fail"),
        "{}",
        done.reason
    );
    let verify = step(&done, "verify").checks.clone().unwrap();
    assert!(verify["attempts"].as_u64().unwrap() >= 2, "{verify}");
    assert!(
        serves(port, "hello v2"),
        "the old configuration does not serve again"
    );
    assert!(page(other).is_none(), "the failed change still serves");
    assert_eq!(engine.running("app").len(), 2);
    assert_eq!(f.head(), base);
    assert_eq!(git(f.ws(), &["status", "--porcelain"]), "");
    eprintln!(
        "compose test: {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
}
