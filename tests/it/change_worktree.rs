//! The git side of a change set (`engine::change::{worktree, diff, prune}`) against real git in
//! temporary repositories: a worktree per run, steward's commit, the diff and its digest, the
//! errors, a hostile repository's hooks and fsmonitor, removal and pruning. The live checkout is
//! checked to be untouched after each.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use steward::engine::change::diff::{DiffLimits, DiffStatus};
use steward::engine::change::git::ChangeGit;
use steward::engine::change::prune::prune;
use steward::engine::change::worktree::{Worktree, WorktreeError};

use crate::common::{self, require};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

use common::git::output as git_out;

fn git(dir: &Path, args: &[&str]) -> String {
    common::git::stdout(dir, args).trim_end().to_string()
}

/// The `steward/*` branches, one a line.
fn steward_branches(ws: &Path) -> String {
    git(
        ws,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/steward/",
        ],
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    root: PathBuf,
    git: ChangeGit,
}

/// A repository with a first commit: `a.txt`, `del.txt`, `ren.txt`, in `<tmp>/ws`; worktrees go
/// to `<tmp>/state/worktrees`.
fn fixture() -> Option<Fixture> {
    require::tool("git")?;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(ws.join("del.txt"), "gone\nsoon\n").unwrap();
    let ren: String = (0..20).map(|i| format!("line {i}\n")).collect();
    std::fs::write(ws.join("ren.txt"), ren).unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "first"]);
    let root = tmp.path().join("state/worktrees");
    let git = ChangeGit::new(PATH).unwrap();
    Some(Fixture {
        ws,
        root,
        git,
        _tmp: tmp,
    })
}

impl Fixture {
    async fn create(&self, run_id: &str) -> Result<Worktree, WorktreeError> {
        Worktree::create(&self.git, &self.ws, &self.root, run_id).await
    }

    /// The live checkout is as the fixture left it: clean, at `head`.
    fn assert_live_untouched(&self, head: &str) {
        assert_eq!(git(&self.ws, &["status", "--porcelain"]), "");
        assert_eq!(git(&self.ws, &["rev-parse", "HEAD"]), head);
        assert_eq!(git(&self.ws, &["branch", "--show-current"]), "main");
    }
}

/// The change every cycle test makes: modify, add (odd names included), delete, rename.
fn make_change(wt: &Path) {
    std::fs::write(wt.join("a.txt"), "one\nTWO\nthree\nfour\n").unwrap();
    std::fs::write(wt.join("new file.txt"), "x\ny\nz\n").unwrap();
    std::fs::write(wt.join("line\nbreak"), "n\n").unwrap();
    std::fs::write(wt.join(OsStr::from_bytes(b"bytes-\xff.txt")), "b\n").unwrap();
    std::fs::write(wt.join("blob.bin"), [0u8, 1, 2, 0, 255]).unwrap();
    std::fs::remove_file(wt.join("del.txt")).unwrap();
    std::fs::create_dir(wt.join("moved dir")).unwrap();
    std::fs::rename(wt.join("ren.txt"), wt.join("moved dir/ren.txt")).unwrap();
}

#[tokio::test]
async fn a_change_is_committed_by_steward_and_diffed_exactly() {
    let Some(f) = fixture() else { return };
    let head = git(&f.ws, &["rev-parse", "HEAD"]);
    let wt = f.create("run-1").await.unwrap();
    assert_eq!(wt.base, head);
    assert_eq!(wt.base.len(), 40);
    assert_eq!(wt.branch, "steward/run-1");
    assert!(wt.path.starts_with(f.root.canonicalize().unwrap()));
    make_change(&wt.path);

    let commit = wt
        .commit("add authentication\nto every service")
        .await
        .unwrap()
        .expect("a change was made");
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), commit.sha);
    let who = git(&wt.path, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]);
    assert_eq!(
        who,
        "steward <steward@localhost>|steward <steward@localhost>"
    );
    let message = git(&wt.path, &["log", "-1", "--format=%B"]);
    assert!(message.starts_with("steward/run-1: add authentication"));
    assert!(message.contains("to every service") && message.contains("Steward-Run: run-1"));
    assert_eq!(git(&wt.path, &["status", "--porcelain"]), "");

    let diff = wt.diff(DiffLimits::default()).await.unwrap();
    assert_eq!(
        (diff.base.as_str(), diff.head.as_str()),
        (head.as_str(), commit.sha.as_str())
    );
    let mut got: Vec<(Vec<u8>, DiffStatus, u64, u64, bool)> = diff
        .files
        .iter()
        .map(|f| {
            let p = f.path.as_os_str().as_bytes().to_vec();
            (p, f.status.clone(), f.added, f.removed, f.binary)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(&[u8], DiffStatus, u64, u64, bool)> = vec![
        (b"a.txt", DiffStatus::Modified, 2, 1, false),
        (b"blob.bin", DiffStatus::Added, 0, 0, true),
        (b"bytes-\xff.txt", DiffStatus::Added, 1, 0, false),
        (b"del.txt", DiffStatus::Deleted, 0, 2, false),
        (b"line\nbreak", DiffStatus::Added, 1, 0, false),
        (
            b"moved dir/ren.txt",
            DiffStatus::Renamed { similarity: 100 },
            0,
            0,
            false,
        ),
        (b"new file.txt", DiffStatus::Added, 3, 0, false),
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(p, s, a, r, b)| (p.to_vec(), s, a, r, b))
        .collect();
    assert_eq!(got, want);
    let renamed = diff.files.iter().find(|f| f.old_path.is_some()).unwrap();
    assert_eq!(renamed.old_path.as_deref(), Some(Path::new("ren.txt")));
    assert!(diff.text.contains("diff --git a/a.txt b/a.txt"));
    assert!(diff.text.contains("+TWO\n") && !diff.truncated);
    assert_eq!(diff.diff_sha256.len(), 64);

    // A small text cap truncates the text, never the digest.
    let small = wt
        .diff(DiffLimits {
            text_cap: 10,
            max_bytes: 1 << 20,
        })
        .await
        .unwrap();
    assert!(small.truncated && small.text.len() <= 10);
    assert_eq!(small.diff_sha256, diff.diff_sha256);
    // A diff over the limit is refused, not digested in part.
    let refused = wt
        .diff(DiffLimits {
            text_cap: 10,
            max_bytes: 10,
        })
        .await;
    assert!(
        matches!(refused, Err(WorktreeError::TooLarge { .. })),
        "{refused:?}"
    );

    // The same change in another run's worktree has the same digest, even after the
    // repository's config tries to change how diffs look.
    let wt2 = f.create("run-2").await.unwrap();
    make_change(&wt2.path);
    wt2.commit("another intent").await.unwrap().unwrap();
    for (k, v) in [
        ("diff.noprefix", "true"),
        ("diff.context", "9"),
        ("diff.renames", "false"),
        ("diff.algorithm", "histogram"),
        ("core.quotePath", "false"),
        ("color.ui", "always"),
    ] {
        git(&f.ws, &["config", k, v]);
    }
    assert_eq!(
        wt2.diff(DiffLimits::default()).await.unwrap().diff_sha256,
        diff.diff_sha256
    );
    // A different change has a different digest.
    std::fs::write(wt2.path.join("a.txt"), "other\n").unwrap();
    wt2.commit("more").await.unwrap().unwrap();
    assert_ne!(
        wt2.diff(DiffLimits::default()).await.unwrap().diff_sha256,
        diff.diff_sha256
    );

    f.assert_live_untouched(&head);
    let (p1, p2) = (wt.path.clone(), wt2.path.clone());
    wt.remove(true).await.unwrap();
    wt2.remove(true).await.unwrap();
    assert!(!p1.exists() && !p2.exists());
    let list = git(&f.ws, &["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
    assert_eq!(steward_branches(&f.ws), "");
    f.assert_live_untouched(&head);
}

#[tokio::test]
async fn an_empty_change_is_none_and_removal_can_keep_the_branch() {
    let Some(f) = fixture() else { return };
    let head = git(&f.ws, &["rev-parse", "HEAD"]);
    let wt = f.create("empty").await.unwrap();
    assert_eq!(wt.commit("nothing to do").await.unwrap(), None);
    // Touching a file without changing it is still no change.
    std::fs::write(wt.path.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    assert_eq!(wt.commit("nothing to do").await.unwrap(), None);
    let diff = wt.diff(DiffLimits::default()).await.unwrap();
    assert!(diff.files.is_empty() && diff.text.is_empty());
    assert_eq!(git(&wt.path, &["rev-parse", "HEAD"]), head);
    wt.remove(false).await.unwrap();
    assert_eq!(steward_branches(&f.ws), "steward/empty");
    f.assert_live_untouched(&head);
}

#[tokio::test]
async fn what_cannot_hold_a_change_is_refused_by_name() {
    let Some(f) = fixture() else { return };
    let head = git(&f.ws, &["rev-parse", "HEAD"]);
    let plain = f._tmp.path().join("plain dir");
    std::fs::create_dir(&plain).unwrap();
    let err = Worktree::create(&f.git, &plain, &f.root, "r")
        .await
        .unwrap_err();
    assert!(matches!(err, WorktreeError::NotARepo { .. }), "{err}");
    assert!(err.to_string().contains("plain dir"), "{err}");

    let fresh = f._tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    git(&fresh, &["init", "-q"]);
    let err = Worktree::create(&f.git, &fresh, &f.root, "r")
        .await
        .unwrap_err();
    assert!(matches!(err, WorktreeError::NoCommits { .. }), "{err}");
    assert!(err.to_string().contains("fresh"), "{err}");

    git(&f.ws, &["branch", "steward/taken"]);
    let err = f.create("taken").await.unwrap_err();
    assert!(matches!(err, WorktreeError::BranchExists { .. }), "{err}");
    assert!(err.to_string().contains("steward/taken"), "{err}");

    let err = f.create("../escape").await.unwrap_err();
    assert!(matches!(err, WorktreeError::BadRunId { .. }), "{err}");

    let inside = Worktree::create(&f.git, &f.ws, &f.ws.join("wts"), "r")
        .await
        .unwrap_err();
    assert!(
        matches!(inside, WorktreeError::RootInsideWorkspace { .. }),
        "{inside}"
    );

    let sub = f.ws.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let err = Worktree::create(&f.git, &sub, &f.root, "r")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not its top level"), "{err}");
    std::fs::remove_dir(&sub).unwrap();
    std::fs::remove_dir_all(f.ws.join("wts")).ok();

    let list = git(&f.ws, &["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 1, "{list}");
    f.assert_live_untouched(&head);
}

#[tokio::test]
async fn a_hostile_repository_runs_no_hook_and_no_fsmonitor() {
    let Some(f) = fixture() else { return };
    let markers = f._tmp.path().join("markers");
    let hooks = f._tmp.path().join("hooks");
    std::fs::create_dir_all(&markers).unwrap();
    std::fs::create_dir_all(&hooks).unwrap();
    let script = |path: &Path, name: &str| {
        use std::os::unix::fs::PermissionsExt;
        let body = format!(
            "#!/bin/sh\ntouch '{}'\ncat >/dev/null 2>&1\nexit 0\n",
            markers.join(name).display()
        );
        std::fs::write(path, body).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "post-checkout",
        "reference-transaction",
        "post-index-change",
    ] {
        script(&hooks.join(hook), hook);
    }
    let fsmonitor = f._tmp.path().join("fsmonitor.sh");
    script(&fsmonitor, "fsmonitor");
    git(
        &f.ws,
        &["config", "core.hooksPath", hooks.to_str().unwrap()],
    );
    git(
        &f.ws,
        &["config", "core.fsmonitor", fsmonitor.to_str().unwrap()],
    );

    // The plants work: git itself runs them.
    git(&f.ws, &["status", "--short"]);
    git(
        &f.ws,
        &["commit", "-q", "--allow-empty", "-m", "plant check"],
    );
    for name in ["fsmonitor", "post-commit"] {
        assert!(
            markers.join(name).exists(),
            "{name} did not fire: the test proves nothing"
        );
    }
    std::fs::remove_dir_all(&markers).unwrap();
    std::fs::create_dir(&markers).unwrap();

    let head = git_out(&f.ws, &["-c", "core.fsmonitor=false", "rev-parse", "HEAD"]);
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let wt = f.create("hostile").await.unwrap();
    make_change(&wt.path);
    wt.commit("intent").await.unwrap().unwrap();
    wt.diff(DiffLimits::default()).await.unwrap();
    wt.remove(true).await.unwrap();
    prune(&f.git, &f.ws, &f.root, |_| true, true).await.unwrap();
    let fired: Vec<_> = std::fs::read_dir(&markers)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(fired.is_empty(), "hostile repository code ran: {fired:?}");
    // The checking itself must not fire the fsmonitor either.
    let status = git_out(
        &f.ws,
        &["-c", "core.fsmonitor=false", "status", "--porcelain"],
    );
    assert_eq!(String::from_utf8_lossy(&status.stdout), "");
    let now = git_out(&f.ws, &["-c", "core.fsmonitor=false", "rev-parse", "HEAD"]);
    assert_eq!(String::from_utf8_lossy(&now.stdout).trim(), head);
}

#[tokio::test]
async fn a_repository_with_a_filter_driver_is_refused() {
    let Some(f) = fixture() else { return };
    let head = git(&f.ws, &["rev-parse", "HEAD"]);
    let marker = f._tmp.path().join("filter-ran");
    let cmd = format!("touch '{}'; cat", marker.display());
    // Set after the worktree exists: steward's commit (`git add`) would run the clean filter.
    let wt = f.create("filtered").await.unwrap();
    std::fs::write(wt.path.join(".gitattributes"), "* filter=evil\n").unwrap();
    std::fs::write(wt.path.join("a.txt"), "changed\n").unwrap();
    git(&f.ws, &["config", "Filter.evil.Clean", &cmd]);
    let err = wt.commit("intent").await.unwrap_err();
    assert!(matches!(err, WorktreeError::RunsCode { .. }), "{err}");
    assert!(err.to_string().contains("filter.evil.clean"), "{err}");
    assert!(!marker.exists(), "the clean filter ran");
    // And a new worktree of such a workspace (its checkout would run `smudge`) is refused.
    git(&f.ws, &["config", "--unset", "filter.evil.clean"]);
    git(&f.ws, &["config", "filter.evil.smudge", &cmd]);
    let err = f.create("filtered-2").await.unwrap_err();
    assert!(err.to_string().contains("filter.evil.smudge"), "{err}");
    assert!(!marker.exists(), "the smudge filter ran");
    wt.remove(true).await.unwrap();
    f.assert_live_untouched(&head);
}

#[tokio::test]
async fn prune_removes_finished_runs_only_and_tolerates_gone_ones() {
    let Some(f) = fixture() else { return };
    let head = git(&f.ws, &["rev-parse", "HEAD"]);
    let done = f.create("done").await.unwrap();
    let running = f.create("running").await.unwrap();
    let gone = f.create("gone").await.unwrap();
    std::fs::remove_dir_all(&gone.path).unwrap();
    // A worktree of the workspace that is not steward's is never touched.
    let other = f.root.join("other");
    git(
        &f.ws,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "mine",
            other.to_str().unwrap(),
        ],
    );

    let finished = |id: &str| id != "running";
    let pruned = prune(&f.git, &f.ws, &f.root, finished, true).await.unwrap();
    assert_eq!(pruned.worktrees, vec!["done".to_string()]);
    let mut branches = pruned.branches.clone();
    branches.sort();
    assert_eq!(branches, vec!["done".to_string(), "gone".to_string()]);
    assert!(!done.path.exists() && running.path.exists() && other.exists());
    let list = git(&f.ws, &["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 3, "{list}");
    assert_eq!(steward_branches(&f.ws), "steward/running");

    // Again: nothing left to do, and no error for what is gone already.
    let again = prune(&f.git, &f.ws, &f.root, finished, true).await.unwrap();
    assert!(again.worktrees.is_empty() && again.branches.is_empty());
    running.remove(true).await.unwrap();
    git(&f.ws, &["worktree", "remove", other.to_str().unwrap()]);
    f.assert_live_untouched(&head);
}
