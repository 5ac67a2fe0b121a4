//! The knowledge loop end to end: a run's verdict proposes notes, `steward knowledge` reviews
//! them (duplicates side by side, accept, reject with a reason), and an accepted note is selected
//! into a later run's prompt. Real steward, real claude, the scripted model.

use std::process::Output;

use crate::common::claude_bin;
use crate::common::cli::{Env, ScriptedModel};

const PROPOSING: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [
  { title = "Stale NFS handles after a reboot", tags = ["health-check", "nfs"], body = "Remount KNOWLEDGE-MARKER-7731 before judging the export; token sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
  { title = "A deploy command that succeeds without effect: check the running state", tags = ["deploy"], body = "the same as the bundled note" },
] }
"#;

const QUIET: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn steward(env: &Env, args: &[&str]) -> Output {
    env.steward().args(args).output().unwrap()
}

/// Points the config at another scripted model (one scenario per run).
fn use_model(env: &Env, old: &str, new: &str) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace(old, new)).unwrap();
}

#[test]
fn a_proposed_note_is_reviewed_accepted_and_selected_into_a_later_prompt() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let first = ScriptedModel::start(tmp.path(), PROPOSING);
    let env = Env::new(&claude, &first.url, "");
    let out = steward(&env, &["--json", "run", "health-check", "--force-model"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let run_id = report["id"].as_str().unwrap().to_string();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(&run_id).join("knowledge.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["proposed"].as_array().unwrap().len(), 2, "{record}");

    // Listed, with provenance; redacted before it was stored.
    let list = json(&steward(&env, &["--json", "knowledge", "list"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let nfs = list.iter().find(|p| p["tags"][1] == "nfs").unwrap();
    let dup = list.iter().find(|p| p["tags"][0] == "deploy").unwrap();
    assert_eq!(nfs["run"], run_id.as_str());
    assert_eq!(nfs["goal"], "health-check");
    assert_eq!(nfs["state"], "pending");
    let body = nfs["body"].as_str().unwrap();
    assert!(body.contains("KNOWLEDGE-MARKER-7731"), "{body}");
    assert!(!body.contains("AAAAAAAAAAAAAAAA"), "not redacted: {body}");
    let (nfs_id, dup_id) = (nfs["id"].as_str().unwrap(), dup["id"].as_str().unwrap());

    // `show` puts the duplicate beside the bundled note of the same slug.
    let review = json(&steward(&env, &["--json", "knowledge", "show", dup_id]));
    assert_eq!(
        review["duplicates"][0]["name"], "silent-success",
        "{review:#}"
    );
    assert_eq!(review["duplicates"][0]["why"], "same slug");
    let text = steward(&env, &["knowledge", "show", dup_id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("may duplicate silent-success"), "{text}");
    let review = json(&steward(&env, &["--json", "knowledge", "show", nfs_id]));
    assert_eq!(review["duplicates"], serde_json::json!([]), "{review:#}");

    // Reject needs a reason and records it; a decided proposal cannot be decided again (exit 2).
    let out = steward(
        &env,
        &[
            "--json",
            "knowledge",
            "reject",
            dup_id,
            "--reason",
            "already known",
        ],
    );
    assert_eq!(json(&out)["decision"]["reason"], "already known");
    let out = steward(&env, &["knowledge", "accept", dup_id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected, not pending"));
    assert_eq!(
        steward(&env, &["knowledge", "show", "k-000000000000"])
            .status
            .code(),
        Some(2)
    );

    // Accepted: a Markdown note with front matter and provenance in steward's own directory.
    let out = steward(
        &env,
        &["--json", "knowledge", "accept", nfs_id, "--by", "ops"],
    );
    let accepted = json(&out);
    assert_eq!(accepted["state"], "accepted", "{accepted:#}");
    let note_path = accepted["decision"]["note"].as_str().unwrap();
    assert!(note_path.starts_with(env.state().join("knowledge/notes").to_str().unwrap()));
    let note = std::fs::read_to_string(note_path).unwrap();
    assert!(
        note.starts_with("+++\ntitle = \"Stale NFS handles after a reboot\"\n"),
        "{note}"
    );
    assert!(note.contains(&format!("run = \"{run_id}\"")), "{note}");
    assert!(note.contains("accepted_by = \"ops\""), "{note}");
    assert!(note.contains("accepted_at = "), "{note}");
    let pending = json(&steward(&env, &["--json", "knowledge", "list"]));
    assert_eq!(pending, serde_json::json!([]));

    // A later run of the goal has the note in its prompt.
    let second = ScriptedModel::start(tmp.path(), QUIET);
    use_model(&env, &first.url, &second.url);
    let out = steward(&env, &["--json", "run", "health-check", "--force-model"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let prompt = std::fs::read_to_string(
        env.run_dir(report["id"].as_str().unwrap())
            .join("prompt.md"),
    )
    .unwrap();
    assert!(prompt.contains("KNOWLEDGE-MARKER-7731"), "{prompt}");
    assert!(
        second
            .requests()
            .to_string()
            .contains("KNOWLEDGE-MARKER-7731"),
        "the note never reached the model"
    );
}

/// A `steward serve` with the web page on; killed on drop.
struct Page {
    child: std::process::Child,
    url: String,
    jar: std::path::PathBuf,
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page {
    fn start(env: &Env, token: &str) -> Page {
        let (child, url) = crate::common::serve::listening(env.steward().args([
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]));
        let page = Page {
            child,
            url,
            jar: env.dir.path().join("cookies"),
        };
        let (code, _) = page.request("POST", "/login", &[], &[("token", token)]);
        assert_eq!(code, 303, "login failed");
        page
    }

    /// A request with the session's cookie and this page's Origin (unless `headers` give
    /// another): (status, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-s",
            "--max-time",
            "20",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg("-b")
        .arg(&self.jar)
        .arg("-c")
        .arg(&self.jar);
        if !headers.iter().any(|h| h.starts_with("Origin:")) {
            cmd.args(["-H", &format!("Origin: {}", self.url)]);
        }
        for h in headers {
            cmd.args(["-H", h]);
        }
        for (k, v) in form {
            cmd.args(["--data-urlencode", &format!("{k}={v}")]);
        }
        let out = cmd.arg(format!("{}{path}", self.url)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("no csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

#[test]
fn the_page_shows_a_proposal_beside_its_duplicate_and_decides_through_csrf_checked_posts() {
    let token = "ui-token-0123456789abcdef0123456789abcdef";
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("ui-token");
    std::fs::write(&token_file, token).unwrap();
    let env = Env::new(
        std::path::Path::new("/bin/false"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\nui_token_file = \"{}\"\n",
            token_file.display()
        ),
    );
    let notes = [
        serde_json::json!({"title": "Stale NFS handles after a reboot", "tags": ["nfs"], "body": "Remount <b>first</b>."}),
        serde_json::json!({"title": "A deploy command that succeeds without effect: check the running state", "tags": ["deploy"], "body": "dup"}),
    ];
    let store = steward::engine::knowledge::KnowledgeStore::open(&env.state()).unwrap();
    let (ps, _) = steward::engine::knowledge::from_verdict(
        &notes,
        "run-1",
        "incident",
        &steward::base::redact::Redactor::default(),
        &Default::default(),
    );
    let ids = store.file(ps, &Default::default()).unwrap().ids;
    let page = Page::start(&env, token);

    let (code, html) = page.request("GET", "/knowledge", &[], &[]);
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("Stale NFS handles after a reboot"), "{html}");
    assert!(
        html.contains("Remount &lt;b&gt;first&lt;&#x2F;b&gt;.")
            || html.contains("Remount &lt;b&gt;first&lt;/b&gt;."),
        "not escaped: {html}"
    );
    assert!(
        html.contains(&format!("id=\"duplicate-{}-silent-success\"", ids[1])),
        "the duplicate is not beside its proposal: {html}"
    );
    let csrf = csrf_of(&html);
    let accept = format!("/knowledge/{}/accept", ids[0]);

    // A cross-site POST and one without the session's token are refused; nothing is decided.
    let (code, _) = page.request(
        "POST",
        &accept,
        &["Sec-Fetch-Site: cross-site"],
        &[("csrf", &csrf)],
    );
    assert_eq!(code, 403);
    let (code, _) = page.request("POST", &accept, &[], &[("csrf", "wrong")]);
    assert_eq!(code, 403);
    let (code, _) = page.request(
        "POST",
        &accept,
        &["Origin: http://evil.example"],
        &[("csrf", &csrf)],
    );
    assert_eq!(code, 403);
    assert_eq!(
        store.get(&ids[0]).unwrap().state,
        steward::engine::knowledge::ProposalState::Pending
    );

    // Accepted and rejected through the page: recorded as the session.
    let (code, _) = page.request("POST", &accept, &[], &[("csrf", &csrf)]);
    assert_eq!(code, 303);
    let p = store.get(&ids[0]).unwrap();
    let d = p.decision.unwrap();
    assert!(d.by.starts_with("web:"), "{}", d.by);
    assert!(std::path::Path::new(d.note.as_deref().unwrap()).is_file());
    let reject = format!("/knowledge/{}/reject", ids[1]);
    let (code, _) = page.request("POST", &reject, &[], &[("csrf", &csrf)]);
    assert_eq!(code, 400, "a rejection without a reason");
    let (code, _) = page.request(
        "POST",
        &reject,
        &[],
        &[("csrf", &csrf), ("reason", "known")],
    );
    assert_eq!(code, 303);
    assert_eq!(
        store
            .get(&ids[1])
            .unwrap()
            .decision
            .unwrap()
            .reason
            .as_deref(),
        Some("known")
    );
    let (_, html) = page.request("GET", "/knowledge", &[], &[]);
    assert!(html.contains("No proposal waits for review."), "{html}");
}
