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
