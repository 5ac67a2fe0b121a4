//! Approving against real git in temporary repositories: every re-check's refusal, the rebase
//! onto a moved workspace (clean, conflicting, failing validation), expiry and rejection.

use std::path::{Path, PathBuf};
use std::process::Command;

use time::{Duration, OffsetDateTime};

use super::*;
use crate::defs::change::Profile;
use crate::engine::change::diff::DiffLimits;
use crate::engine::change::diff_files::record_files;
use crate::engine::change::record::{
    Artefacts, BlastRadius, CHANGE_FORMAT, RollbackTarget, Transition,
};
use crate::engine::change::worktree::Worktree;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "commit.gpgSign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@test.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@test.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    cfg: Config,
    store: ChangeStore,
}

/// A workspace with `hosts/web.nix` and `notes.txt` committed on `main`; state in `<tmp>/state`.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("hosts")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("hosts/web.nix"), "{\n  port = 80;\n}\n").unwrap();
    std::fs::write(ws.join("notes.txt"), "one\n").unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "first"]);
    let ws = ws.canonicalize().unwrap();
    let cfg = Config {
        workspace: ws.clone(),
        state_dir: tmp.path().join("state"),
        ..Config::default()
    };
    let store = ChangeStore::open(&cfg.state_dir).unwrap();
    Fixture {
        _tmp: tmp,
        ws,
        cfg,
        store,
    }
}

impl Fixture {
    fn checker(&self) -> Checker<'_> {
        Checker::new(&self.cfg, &self.store).unwrap()
    }

    /// A pending change of run `run`, made as a run makes it: a worktree, an edit of
    /// `hosts/web.nix`, steward's commit, the diff.
    async fn propose(&self, run: &str, validate: Vec<Vec<String>>) -> ChangeRecord {
        let checker = self.checker();
        let root = self.cfg.state_dir.join("worktrees");
        let wt = Worktree::create(checker.git(), &self.ws, &root, run)
            .await
            .unwrap();
        std::fs::write(wt.path.join("hosts/web.nix"), "{\n  port = 8080;\n}\n").unwrap();
        wt.commit("serve on 8080").await.unwrap().unwrap();
        let diff = wt.diff(DiffLimits::default()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let rec = ChangeRecord {
            format: CHANGE_FORMAT,
            id: ChangeRecord::new_id(),
            state: ChangeState::Pending,
            run: run.into(),
            goal: "health-check".into(),
            subject: "intent".into(),
            intent: "serve on 8080".into(),
            workspace: self.ws.clone(),
            workspace_branch: Some("main".into()),
            base: wt.base.clone(),
            branch: wt.branch.clone(),
            head: diff.head.clone(),
            worktree: wt.path.clone(),
            diff_sha256: diff.diff_sha256.clone(),
            files: record_files(&diff),
            profile: Profile::Command,
            edit: vec!["hosts/**".into()],
            validate,
            apply: Some(vec!["true".into()]),
            rollback: Some(vec!["true".into()]),
            validation: Vec::new(),
            repair_rounds: 0,
            artefacts: Artefacts::default(),
            blast_radius: BlastRadius::default(),
            rollback_target: RollbackTarget::BaseCommit {
                sha: wt.base.clone(),
            },
            post_checks: vec![],
            created: now,
            expires: now + Duration::days(7),
            reason: String::new(),
            steps: Vec::new(),
            reboot_needed: false,
            history: vec![Transition {
                at: now,
                to: ChangeState::Pending,
                by: "steward".into(),
                note: String::new(),
            }],
        };
        self.store.create(&rec).unwrap();
        rec
    }

    async fn approve(&self, id: &str) -> Verdict {
        approve(&self.checker(), id, "cli:tester").await.unwrap()
    }

    /// A commit on the workspace's `main` after the proposal.
    fn commit_on_workspace(&self, file: &str, text: &str) -> String {
        std::fs::write(self.ws.join(file), text).unwrap();
        git(&self.ws, &["add", "-A"]);
        git(&self.ws, &["commit", "-q", "-m", "later"]);
        git(&self.ws, &["rev-parse", "HEAD"])
    }

    fn refused(&self, v: Verdict) -> ChangeRecord {
        match v {
            Verdict::Refused(r) => {
                assert_eq!(self.store.get(&r.id).unwrap().state, r.state);
                r
            }
            other => panic!("not refused: {other:?}"),
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_unchanged_change_is_approved_by_whoever_approved_it() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![]).await;
        let Verdict::Approved(r) = f.approve(&rec.id).await else {
            panic!("not approved")
        };
        assert_eq!(r.state, ChangeState::Approved);
        assert_eq!(r.approved_by(), Some("cli:tester"));
        // A second approval finds it approved, not pending.
        let again = approve(&f.checker(), &rec.id, "x").await.unwrap_err();
        assert!(again.is_usage(), "{again}");
        assert!(
            again.to_string().contains("is approved, not pending"),
            "{again}"
        );
    });
}

#[test]
fn a_moved_branch_or_a_different_diff_is_stale() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![]).await;
        // Someone moves the branch to another commit after the review.
        let wt = &rec.worktree;
        std::fs::write(wt.join("hosts/web.nix"), "{ port = 1; }\n").unwrap();
        git(wt, &["commit", "-qam", "sneaky"]);
        let r = f.refused(f.approve(&rec.id).await);
        assert_eq!(r.state, ChangeState::Stale);
        assert!(r.reason.contains("points at"), "{}", r.reason);
        assert!(r.reason.contains(&rec.head), "{}", r.reason);

        // The record's digest is not the diff's (a record written for another diff).
        let rec = f.propose("r-2", vec![]).await;
        let mut tampered = rec.clone();
        tampered.id = ChangeRecord::new_id();
        tampered.diff_sha256 = "0".repeat(64);
        f.store.create(&tampered).unwrap();
        let r = f.refused(f.approve(&tampered.id).await);
        assert!(r.reason.contains("hashes to"), "{}", r.reason);
        assert!(r.reason.contains(&rec.diff_sha256), "{}", r.reason);
    });
}

#[test]
fn a_dirty_workspace_or_a_touched_worktree_is_stale() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![]).await;
        std::fs::write(f.ws.join("notes.txt"), "edited by hand\n").unwrap();
        let r = f.refused(f.approve(&rec.id).await);
        assert!(r.reason.contains("uncommitted changes"), "{}", r.reason);
        assert!(r.reason.contains("`notes.txt`"), "{}", r.reason);
        assert!(r.reason.contains("fast-forwards"), "{}", r.reason);
        git(&f.ws, &["checkout", "--", "notes.txt"]);

        let rec = f.propose("r-2", vec![]).await;
        std::fs::write(rec.worktree.join("extra.sh"), "echo\n").unwrap();
        let r = f.refused(f.approve(&rec.id).await);
        assert!(r.reason.contains("`extra.sh`"), "{}", r.reason);
        assert!(r.reason.contains("worktree"), "{}", r.reason);
    });
}

#[test]
fn a_moved_workspace_rebases_into_a_new_pending_change() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![vec!["true".into()]]).await;
        let new_head = f.commit_on_workspace("notes.txt", "two\n");
        let Verdict::Rebased { old, new } = f.approve(&rec.id).await else {
            panic!("not rebased")
        };
        assert_eq!(old.state, ChangeState::Stale);
        assert!(
            old.reason.contains("workspace HEAD moved from"),
            "{}",
            old.reason
        );
        assert!(old.reason.contains(&new.id), "{}", old.reason);
        assert!(
            old.reason.contains("needs its own approval"),
            "{}",
            old.reason
        );
        let filed = f.store.get(&new.id).unwrap();
        assert_eq!(filed.state, ChangeState::Pending);
        assert_eq!(filed.base, new_head);
        assert_eq!(filed.run, "r-1");
        assert_eq!(filed.intent, rec.intent);
        assert!(filed.reason.contains(&rec.id), "{}", filed.reason);
        assert_eq!(filed.branch, format!("steward/r-1-{}", new.id));
        assert_eq!(filed.validation.len(), 1);
        assert!(filed.validation_passed());
        // The new branch holds exactly the change on top of the new HEAD.
        let diff = git(&f.ws, &["diff", &new_head, &filed.head, "--name-only"]);
        assert_eq!(diff, "hosts/web.nix");
        assert_eq!(git(&f.ws, &["rev-parse", "HEAD"]), new_head);
        assert_eq!(git(&f.ws, &["status", "--porcelain"]), "");
        // Kept while open (prune asks by this name), and approvable itself.
        let open = f.store.open_run_ids().unwrap();
        assert!(open.contains(&format!("r-1-{}", new.id)), "{open:?}");
        let Verdict::Approved(_) = f.approve(&new.id).await else {
            panic!("the rebased change is not approvable")
        };
    });
}

#[test]
fn a_rebase_that_conflicts_or_fails_validation_is_stale_and_leaves_nothing() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![]).await;
        f.commit_on_workspace("hosts/web.nix", "{\n  port = 443;\n}\n");
        let r = f.refused(f.approve(&rec.id).await);
        assert_eq!(r.state, ChangeState::Stale);
        assert!(r.reason.contains("does not apply cleanly"), "{}", r.reason);
        let branches = git(&f.ws, &["branch", "--list", "steward/*"]);
        assert_eq!(branches.trim(), "+ steward/r-1", "{branches}");

        // Applies cleanly, but its validator fails on the new tree.
        let f = fixture();
        let rec = f
            .propose(
                "r-1",
                vec![vec!["test".into(), "-e".into(), "notes.txt".into()]],
            )
            .await;
        git(&f.ws, &["rm", "-q", "notes.txt"]);
        git(&f.ws, &["commit", "-q", "-m", "drop notes"]);
        let r = f.refused(f.approve(&rec.id).await);
        assert!(r.reason.contains("fails validation"), "{}", r.reason);
        assert!(r.reason.contains("test -e notes.txt"), "{}", r.reason);
        let branches = git(&f.ws, &["branch", "--list", "steward/*"]);
        assert_eq!(branches.trim(), "+ steward/r-1", "{branches}");
    });
}

#[test]
fn an_expired_change_is_expired_not_approved() {
    rt().block_on(async {
        let f = fixture();
        let mut rec = f.propose("r-1", vec![]).await;
        rec.id = ChangeRecord::new_id();
        rec.expires = OffsetDateTime::now_utc() - Duration::minutes(1);
        f.store.create(&rec).unwrap();
        let e = approve(&f.checker(), &rec.id, "x").await.unwrap_err();
        assert!(matches!(e, ApproveError::Expired { .. }), "{e}");
        assert!(e.is_usage());
        assert_eq!(f.store.get(&rec.id).unwrap().state, ChangeState::Expired);
    });
}

#[test]
fn a_rejection_removes_the_worktree_and_the_steward_branch() {
    rt().block_on(async {
        let f = fixture();
        let rec = f.propose("r-1", vec![]).await;
        let r = reject(&f.checker(), &rec.id, "cli:tester", "not now")
            .await
            .unwrap();
        assert_eq!(r.change.state, ChangeState::Rejected);
        assert_eq!(r.change.reason, "not now");
        assert!(r.worktree_removed && r.branch_deleted);
        assert!(!rec.worktree.exists());
        assert_eq!(git(&f.ws, &["branch", "--list", "steward/*"]), "");
        let again = reject(&f.checker(), &rec.id, "x", "").await.unwrap_err();
        assert!(again.is_usage(), "{again}");
    });
}

#[test]
fn artefacts_are_compared_key_by_key() {
    let mut a = Artefacts::default();
    a.nomad_modify_index.insert("web.nomad".into(), 7);
    let mut b = a.clone();
    assert!(findings::artefact_differences(&a, &b).is_empty());
    b.nomad_modify_index.insert("web.nomad".into(), 8);
    b.compose_config_sha256.insert("c.yml".into(), "ab".into());
    let d = findings::artefact_differences(&a, &b);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].contains("proposed 7, now 8"), "{d:?}");
    assert!(d[1].contains("proposed none, now ab"), "{d:?}");
}
