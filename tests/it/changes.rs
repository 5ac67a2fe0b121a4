//! `steward changes list|show|approve|reject` with the real binary on change records made as a
//! run makes them (a real worktree and steward's commit through the library, the record in the
//! store): the listing and the record with its diff, an approval refused as stale after a commit
//! lands on the workspace or after the branch was tampered with, a rebase into a new pending
//! change, rejection, expiry, an unknown id, and `--yes` off a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use steward::defs::change::Profile;
use steward::engine::change::diff::DiffLimits;
use steward::engine::change::diff_files::record_files;
use steward::engine::change::git::ChangeGit;
use steward::engine::change::record::{
    Artefacts, BlastRadius, CHANGE_FORMAT, ChangeRecord, ChangeState, RollbackTarget, Transition,
};
use steward::engine::change::store::ChangeStore;
use steward::engine::change::worktree::Worktree;
use time::{Duration, OffsetDateTime};

use crate::common::{self, require};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn git(dir: &Path, args: &[&str]) -> String {
    common::git::stdout(dir, args).trim_end().to_string()
}

const GOAL: &str = "+++\ndescription = \"change the port\"\ntools = [\"Read\", \"Edit\"]\n\
    [change]\nedit = [\"hosts/**\"]\nprofile = \"command\"\napply = [\"true\"]\n\
    rollback = [\"true\"]\n+++\nMove the port.\n";

const POST_CHECK: &str = "[[check]]\nname = \"web-answers\"\n\
    description = \"stand-in: always passes\"\nkind = \"file\"\npath = \"/\"\n";

struct Fixture {
    tmp: tempfile::TempDir,
    ws: PathBuf,
    config: PathBuf,
}

/// A workspace with `hosts/web.nix` and `notes.txt` on `main`, a config naming it.
fn fixture() -> Option<Fixture> {
    require::tool("git")?;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(ws.join("hosts")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("hosts/web.nix"), "{\n  port = 80;\n}\n").unwrap();
    std::fs::write(ws.join("notes.txt"), "one\n").unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "first"]);
    let ws = ws.canonicalize().unwrap();
    // The change's goal and its post-check, which observes nothing of this host.
    let goals = tmp.path().join("goals");
    let context = tmp.path().join("context");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(goals.join("port.md"), GOAL).unwrap();
    std::fs::write(context.join("checks.toml"), POST_CHECK).unwrap();
    let config = tmp.path().join("steward.toml");
    std::fs::write(
        &config,
        format!(
            "workspace = \"{}\"\nstate_dir = \"{}\"\ngoals_dir = \"{}\"\n\
             context_dir = \"{}\"\n[change]\npath = \"{PATH}\"\n",
            ws.display(),
            tmp.path().join("state").display(),
            goals.display(),
            context.display()
        ),
    )
    .unwrap();
    Some(Fixture { tmp, ws, config })
}

impl Fixture {
    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    fn store(&self) -> ChangeStore {
        ChangeStore::open(&self.state()).unwrap()
    }

    /// A pending change of run `run` as a run files it: a worktree, an edit of `hosts/web.nix`,
    /// steward's commit, the diff and its digest.
    fn propose(&self, run: &str) -> ChangeRecord {
        self.propose_port(run, 8080)
    }

    /// [`Fixture::propose`] with another port.
    fn propose_port(&self, run: &str, port: u16) -> ChangeRecord {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (wt, diff) = rt.block_on(async {
            let git = ChangeGit::new(PATH).unwrap();
            let root = self.state().join("worktrees");
            let wt = Worktree::create(&git, &self.ws, &root, run).await.unwrap();
            let text = format!("{{\n  port = {port};\n}}\n");
            std::fs::write(wt.path.join("hosts/web.nix"), text).unwrap();
            wt.commit("serve web on 8080").await.unwrap().unwrap();
            let diff = wt.diff(DiffLimits::default()).await.unwrap();
            (wt, diff)
        });
        let now = OffsetDateTime::now_utc();
        let rec = ChangeRecord {
            format: CHANGE_FORMAT,
            id: ChangeRecord::new_id(),
            state: ChangeState::Pending,
            run: run.into(),
            goal: "port".into(),
            subject: "host:web".into(),
            intent: "serve web on 8080".into(),
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
            validate: vec![vec!["true".into()]],
            apply: Some(vec!["true".into()]),
            rollback: Some(vec!["true".into()]),
            validation: Vec::new(),
            repair_rounds: 0,
            artefacts: Artefacts::default(),
            blast_radius: BlastRadius::default(),
            rollback_target: RollbackTarget::BaseCommit {
                sha: wt.base.clone(),
            },
            post_checks: vec!["web-answers".into()],
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
        self.store().create(&rec).unwrap();
        rec
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(common::cli::steward_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.tmp.path())
            .env("USER", "tester");
        cmd
    }

    /// Turns the web page on (`[serve]` with a UI token, the worker paused, `extra` lines).
    fn page_on(&self, extra: &str) {
        let token = self.tmp.path().join("ui-token");
        std::fs::write(&token, format!("{}\n", crate::web::UI_TOKEN)).unwrap();
        let config = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(
            &self.config,
            format!(
                "{config}\n[serve]\npaused = true\nui_token_file = \"{}\"\n{extra}\n",
                token.display()
            ),
        )
        .unwrap();
    }

    fn steward(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn state_of(&self, id: &str) -> ChangeRecord {
        self.store().get(id).unwrap()
    }

    fn commit_on_workspace(&self, file: &str, text: &str) {
        std::fs::write(self.ws.join(file), text).unwrap();
        git(&self.ws, &["commit", "-qam", "later"]);
    }
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn list_and_show_read_the_record_and_the_diff_from_git() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");

    let (code, out, err) = text(&f.steward(&["changes", "list"]));
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with(&rec.id)).unwrap();
    for want in [
        "pending",
        "port",
        "host:web",
        "1 file(s) +1 -1",
        "serve web on 8080",
    ] {
        assert!(line.contains(want), "{want}: {line}");
    }
    let list = json(&f.steward(&["changes", "list", "--json"]));
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["id"], rec.id.as_str());
    assert_eq!(first["state"], "pending");
    assert_eq!(first["base"], rec.base.as_str());
    assert_eq!(first["head"], rec.head.as_str());
    assert_eq!(first["diff_sha256"], rec.diff_sha256.as_str());
    assert_eq!(first["files"][0]["path"], "hosts/web.nix");
    let (code, out, _) = text(&f.steward(&["changes", "list", "--state", "applied"]));
    assert_eq!((code, out.trim()), (0, "no changes match (1 recorded)"));
    let (code, _, err) = text(&f.steward(&["changes", "list", "--state", "done"]));
    assert_eq!(code, 2);
    assert!(err.contains("not a change state"), "{err}");

    let (code, out, err) = text(&f.steward(&["changes", "show", &rec.id]));
    assert_eq!(code, 0, "{err}");
    for want in [
        "intent:  serve web on 8080",
        "modified     hosts/web.nix  +1 -1",
        "rollback to: the base commit",
        "post-checks: web-answers",
        "the diff that was proposed",
        "-  port = 80;",
        "+  port = 8080;",
        "@@ -1,3 +1,3 @@",
    ] {
        assert!(out.contains(want), "{want}:\n{out}");
    }
    // Not a terminal: no colour.
    assert!(!out.contains('\x1b'), "{out}");
    let shown = json(&f.steward(&["changes", "show", &rec.id, "--json"]));
    assert_eq!(shown["id"], rec.id.as_str());
    assert_eq!(shown["diff_truncated"], false);
    assert_eq!(shown["diff_matches"], true);
    assert!(shown["diff"].as_str().unwrap().contains("+  port = 8080;"));

    // A change that never passed has no digest: nothing to match, and `show` says so.
    let mut invalid = rec.clone();
    invalid.id = ChangeRecord::new_id();
    invalid.state = ChangeState::Invalid;
    invalid.diff_sha256 = String::new();
    f.store().create(&invalid).unwrap();
    let shown = json(&f.steward(&["changes", "show", &invalid.id, "--json"]));
    assert_eq!(shown["diff_matches"], serde_json::Value::Null, "{shown:#}");
    let (_, out, _) = text(&f.steward(&["changes", "show", &invalid.id]));
    assert!(out.contains("the record has no digest"), "{out}");
}

/// On a terminal (`script` gives the command one) the diff is coloured; `NO_COLOR` turns it off.
#[test]
fn the_diff_is_coloured_on_a_terminal_unless_no_color_is_set() {
    let Some(f) = fixture() else { return };
    let Some(script) = require::tool("script") else {
        return;
    };
    let rec = f.propose("r-1");
    let line = format!(
        "{} --config {} changes show {}",
        common::cli::steward_bin().display(),
        f.config.display(),
        rec.id
    );
    let on_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new(&script);
        cmd.args(["-qec", &line, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", f.tmp.path())
            .env("TERM", "xterm");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(None);
    assert!(
        coloured.contains("\x1b[32m+  port = 8080;\x1b[0m"),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[31m-  port = 80;\x1b[0m"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[36m@@ -1,3 +1,3 @@"), "{coloured:?}");
    let plain = on_tty(Some("1"));
    assert!(plain.contains("+  port = 8080;"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn an_unknown_id_and_an_unconfirmed_approval_are_refused() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");
    for cmd in ["show", "approve", "reject"] {
        let (code, _, err) = text(&f.steward(&["changes", cmd, "c-nope"]));
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("no change `c-nope`"), "{cmd}: {err}");
    }
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id]));
    assert_eq!(code, 2);
    assert!(err.contains("stdin is not a terminal"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(f.state_of(&rec.id).state, ChangeState::Pending);
}

#[test]
fn an_unchanged_change_is_approved_then_applied_and_the_workspace_fast_forwarded() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");
    let out = f.steward(&["changes", "approve", &rec.id, "--yes", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(
        (v["exit"].as_str(), v["exit_code"].as_i64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(v["state"], "applied", "{v:#}");
    let applied = f.state_of(&rec.id);
    assert_eq!(applied.state, ChangeState::Applied);
    assert_eq!(applied.approved_by(), Some("cli:tester"));
    assert_eq!(git(&f.ws, &["rev-parse", "HEAD"]), rec.head);

    // A change whose post-check does not exist is approved but never applied: exit 2.
    let rec = f.propose_port("r-2", 9090);
    let path = f.state().join(format!("changes/pending/{}.json", rec.id));
    let on_disk = std::fs::read_to_string(&path).unwrap();
    let on_disk = on_disk.replace("\"web-answers\"", "\"no-such-check\"");
    std::fs::write(&path, on_disk).unwrap();
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id, "--yes"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("approved but was not applied"), "{err}");
    assert!(err.contains("no-such-check"), "{err}");
    assert_eq!(f.state_of(&rec.id).state, ChangeState::Approved);
}

#[test]
fn a_commit_on_the_workspace_makes_the_approval_stale_with_the_reason() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");
    // A conflicting commit: the change cannot be replayed onto it.
    f.commit_on_workspace("hosts/web.nix", "{\n  port = 443;\n}\n");
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id, "--yes", "--by", "ops"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{} is now stale", rec.id)), "{err}");
    assert!(err.contains("workspace HEAD moved from"), "{err}");
    assert!(err.contains("does not apply cleanly"), "{err}");
    let stale = f.state_of(&rec.id);
    assert_eq!(stale.state, ChangeState::Stale);
    assert!(
        stale.reason.contains("workspace HEAD moved"),
        "{}",
        stale.reason
    );

    // A commit elsewhere: replayed, validated, filed as a new pending change (exit 6).
    let rec = f.propose("r-2");
    f.commit_on_workspace("notes.txt", "two\n");
    let out = f.steward(&["changes", "approve", &rec.id, "--yes", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(6), "{v}");
    assert_eq!(v["exit"], "needs_human");
    assert_eq!(v["state"], "stale");
    let new_id = v["rebased_as"]["id"].as_str().unwrap().to_string();
    assert!(v["reason"].as_str().unwrap().contains(&new_id), "{v}");
    let new = f.state_of(&new_id);
    assert_eq!(new.state, ChangeState::Pending);
    assert_eq!(new.base, git(&f.ws, &["rev-parse", "HEAD"]));
    assert!(new.reason.contains(&rec.id), "{}", new.reason);
}

#[test]
fn a_tampered_branch_or_digest_is_refused_as_stale() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");
    std::fs::write(rec.worktree.join("hosts/web.nix"), "{ port = 1; }\n").unwrap();
    git(&rec.worktree, &["commit", "-qam", "after the review"]);
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id, "--yes"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("points at"), "{err}");
    assert_eq!(f.state_of(&rec.id).state, ChangeState::Stale);

    // The record on disk names another digest than the diff the branch holds.
    let rec = f.propose("r-2");
    let path = f.state().join(format!("changes/pending/{}.json", rec.id));
    let text_on_disk = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text_on_disk.replace(&rec.diff_sha256, &"0".repeat(64)),
    )
    .unwrap();
    let shown = json(&f.steward(&["changes", "show", &rec.id, "--json"]));
    assert_eq!(shown["diff_matches"], false);
    let out = f.steward(&["changes", "approve", &rec.id, "--yes", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(2), "{v}");
    assert_eq!(v["state"], "stale");
    assert!(v["reason"].as_str().unwrap().contains("hashes to"), "{v}");
}

#[test]
fn reject_and_expiry_end_a_change() {
    let Some(f) = fixture() else { return };
    let rec = f.propose("r-1");
    let out = f.steward(&[
        "changes",
        "reject",
        &rec.id,
        "--note",
        "not today",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        (v["state"].as_str(), v["exit_code"].as_i64()),
        (Some("rejected"), Some(0))
    );
    assert_eq!(v["reason"], "not today");
    assert_eq!(v["worktree_removed"], true);
    assert_eq!(v["branch_deleted"], true);
    assert!(!rec.worktree.exists());
    assert_eq!(git(&f.ws, &["branch", "--list", "steward/*"]), "");
    assert_eq!(f.state_of(&rec.id).history.last().unwrap().by, "cli:tester");
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id, "--yes"]));
    assert_eq!(code, 2);
    assert!(err.contains("is rejected, not pending"), "{err}");

    let rec = f.propose("r-2");
    let path = f.state().join(format!("changes/pending/{}.json", rec.id));
    let mut on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    on_disk["expires"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, on_disk.to_string()).unwrap();
    let shown = json(&f.steward(&["changes", "show", &rec.id, "--json"]));
    assert_eq!(shown["state"], "expired", "{shown:#}");
    let (code, _, err) = text(&f.steward(&["changes", "approve", &rec.id, "--yes"]));
    assert_eq!(code, 2);
    assert!(err.contains("expired"), "{err}");
    assert_eq!(f.state_of(&rec.id).state, ChangeState::Expired);
}

/// The path a run takes: the real claude against the scripted model edits `service.nix` in its
/// worktree, steward files the pending change; a commit then lands on the workspace, and the
/// approval is refused as stale, naming the move and the new change it was rebased as; after a
/// conflicting commit the new one cannot be rebased again and is stale with the reason.
#[test]
fn a_change_a_run_filed_is_shown_and_goes_stale_when_the_workspace_moves() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let env = common::cli::Env::new(&claude, "http://127.0.0.1:9", "");
    let ws = env.dir.path().join("workspace");
    std::fs::write(ws.join("service.nix"), "{ port = 8080; }\n").unwrap();
    std::fs::write(ws.join("README.md"), "the homelab\n").unwrap();
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "base"]);
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("port.md"),
        "+++\ndescription = \"change the port\"\ntools = [\"Read\", \"Edit\"]\nmax_turns = 8\n\
         [policy]\nread = [\"{workspace}\"]\nwrite = [\"{workspace}\"]\n[change]\n\
         edit = [\"service.nix\"]\nvalidate = [[\"test\", \"-s\", \"service.nix\"]]\n\
         profile = \"command\"\napply = [\"true\"]\nrollback = [\"true\"]\n+++\nMove the port.\n",
    )
    .unwrap();
    env.set_top_level(&format!("goals_dir = \"{}\"", goals.display()));
    let scenario = "[[turn]]\n[[turn.tool_use]]\nname = \"Read\"\nid = \"t_read\"\n\
         input = { file_path = \"${CWD}/service.nix\" }\n[[turn]]\n[[turn.tool_use]]\n\
         name = \"Edit\"\nid = \"t_edit\"\ninput = { file_path = \"${CWD}/service.nix\", \
         old_string = \"port = 8080;\", new_string = \"port = 9090;\" }\n[[turn]]\n\
         verdict = { status = \"needs_attention\", summary = \"port changed\", findings = [], \
         actions_taken = [], proposed_actions = [] }\n";
    let model = common::cli::ScriptedModel::start(env.dir.path(), scenario);
    let out = env
        .steward()
        .args([
            "-c",
            &format!("claude.base_url={}", model.url),
            "--json",
            "run",
            "port",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let list = json(
        &env.steward()
            .args(["changes", "list", "--json"])
            .output()
            .unwrap(),
    );
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["state"], "pending", "{list:#}");

    let shown = env
        .steward()
        .args(["changes", "show", &id])
        .output()
        .unwrap();
    let (code, text_out, err) = text(&shown);
    assert_eq!(code, 0, "{err}");
    assert!(text_out.contains("+{ port = 9090; }"), "{text_out}");
    assert!(
        text_out.contains("the diff that was proposed"),
        "{text_out}"
    );

    // A commit lands on the workspace after the proposal.
    std::fs::write(ws.join("README.md"), "the homelab, documented\n").unwrap();
    git(&ws, &["commit", "-qam", "docs"]);
    let moved_to = git(&ws, &["rev-parse", "HEAD"]);
    let approve = |id: &str| {
        env.steward()
            .args(["changes", "approve", id, "--yes"])
            .output()
            .unwrap()
    };
    let (code, out_text, err) = text(&approve(&id));
    assert_eq!(code, 6, "{out_text}{err}");
    assert!(
        out_text.contains(&format!("{id} is now stale")),
        "{out_text}"
    );
    assert!(out_text.contains("workspace HEAD moved from"), "{out_text}");
    assert!(out_text.contains(&moved_to[..12]), "{out_text}");
    let list = json(
        &env.steward()
            .args(["changes", "list", "--json"])
            .output()
            .unwrap(),
    );
    let new = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "pending")
        .unwrap_or_else(|| panic!("no rebased change: {list:#}"));
    let new_id = new["id"].as_str().unwrap().to_string();
    assert_eq!(new["base"], moved_to.as_str());
    assert_eq!(new["validation"][0]["passed"], true, "{new:#}");

    // Now a conflicting commit: the rebased change cannot move again.
    std::fs::write(ws.join("service.nix"), "{ port = 7070; }\n").unwrap();
    git(&ws, &["commit", "-qam", "by hand"]);
    let (code, _, err) = text(&approve(&new_id));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{new_id} is now stale")), "{err}");
    assert!(err.contains("does not apply cleanly"), "{err}");
    assert_eq!(git(&ws, &["status", "--porcelain"]), "");
}

/// Issue 13 item 2: a change approved from the web page (through the confirmation bound to the
/// diff it showed) is applied and records `web:<session>`; another rejected there records the
/// reason; a confirmation carrying another diff's digest approves nothing.
#[test]
fn changes_are_approved_and_rejected_from_the_page() {
    let Some(f) = fixture() else { return };
    f.page_on("");
    let approve = f.propose("r-1");
    let reject = f.propose_port("r-2", 9090);
    let serve = common::serve::Serve::start_with(f.command());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(decide_on_the_page(&f, &serve.url, &approve, &reject));
}

async fn decide_on_the_page(f: &Fixture, url: &str, approve: &ChangeRecord, reject: &ChangeRecord) {
    let http = crate::web::no_redirects();
    let (cookie, csrf) = crate::web::login(&http, url).await;
    let post = |path: String, body: String| {
        http.post(format!("{url}{path}"))
            .header("Cookie", &cookie)
            .header("Origin", url)
            .header("Sec-Fetch-Site", "same-origin")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };

    // The card shows the diff; the first POST only shows the confirmation, bound to the digest.
    let card = http
        .get(format!("{url}/approvals?change={}", approve.id))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(card.contains("port = 8080"), "{card}");
    let path = format!("/changes/{}/approve", approve.id);
    let page = post(path.clone(), format!("csrf={csrf}")).await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains(&approve.diff_sha256), "{page}");
    assert_eq!(f.state_of(&approve.id).state, ChangeState::Pending);
    let forged = post(path.clone(), format!("csrf={csrf}&confirm=1&binding=0000"))
        .await
        .unwrap();
    assert_ne!(forged.status(), 303, "another digest approved it");
    assert_eq!(f.state_of(&approve.id).state, ChangeState::Pending);
    let body = format!("csrf={csrf}&confirm=1&binding={}", approve.diff_sha256);
    let res = post(path, body).await.unwrap();
    assert!(
        res.status().is_success() || res.status() == 303,
        "{}",
        res.status()
    );
    let mut applied = f.state_of(&approve.id);
    for _ in 0..300 {
        if applied.state == ChangeState::Applied {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        applied = f.state_of(&approve.id);
    }
    assert_eq!(applied.state, ChangeState::Applied, "{applied:#?}");
    let by = applied.approved_by().unwrap_or_default().to_string();
    assert!(by.starts_with("web:"), "{by}");
    assert_eq!(git(&f.ws, &["rev-parse", "HEAD"]), approve.head);

    // Reject with a reason: recorded on the change.
    let res = post(
        format!("/changes/{}/reject", reject.id),
        format!("csrf={csrf}&reason=not+on+a+friday"),
    )
    .await
    .unwrap();
    assert!(
        res.status().is_success() || res.status() == 303,
        "{}",
        res.status()
    );
    let rejected = f.state_of(&reject.id);
    assert_eq!(rejected.state, ChangeState::Rejected, "{rejected:#?}");
    let last = rejected.history.last().unwrap();
    assert!(
        last.by.starts_with("web:") && last.note.contains("not on a friday"),
        "{last:#?}"
    );
}

/// A daemon told to stop while the page's approved change is being applied waits its grace,
/// then asks the apply to stop: the change is rolled back and recorded so, never left
/// `applying`, and the daemon's stop record names the page's work.
#[test]
fn a_daemon_stop_rolls_back_a_change_the_page_is_applying() {
    let Some(f) = fixture() else { return };
    f.page_on("grace_secs = 1");
    let rec = f.propose("r-1");
    let path = f.state().join(format!("changes/pending/{}.json", rec.id));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Longer than the grace: the stop comes while it runs; it is let end, then rolled back.
    v["apply"] = serde_json::json!(["sleep", "4"]);
    std::fs::write(&path, v.to_string()).unwrap();
    let mut serve = common::serve::Serve::start_with(f.command());
    let url = serve.url.clone();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let http = crate::web::no_redirects();
            let (cookie, csrf) = crate::web::login(&http, &url).await;
            let res = http
                .post(format!("{url}/changes/{}/approve", rec.id))
                .header("Cookie", &cookie)
                .header("Origin", &url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!("csrf={csrf}&confirm=1&binding={}", rec.diff_sha256))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
        });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while f.state_of(&rec.id).state != ChangeState::Applying {
        assert!(
            std::time::Instant::now() < deadline,
            "{:#?}",
            f.state_of(&rec.id)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = serve.stop_within(40);
    assert!(status.success(), "{status:?}");
    let after = f.state_of(&rec.id);
    assert_eq!(after.state, ChangeState::RolledBack, "{after:#?}");
    let events = std::fs::read_dir(f.state().join("events"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    let stopped = events
        .lines()
        .find(|l| l.contains("daemon_stopped"))
        .unwrap_or_else(|| panic!("no daemon_stopped event:\n{events}"));
    assert!(stopped.contains("work the page started"), "{stopped}");
}
