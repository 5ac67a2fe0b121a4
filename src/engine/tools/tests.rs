use super::*;
use serde_json::json;

fn context(dir: &Path, tools: &[&str]) {
    ToolsContext {
        tools: tools.iter().map(|t| qualify(t)).collect(),
        nonce: "N0NCE".into(),
        prompt_tool: false,
    }
    .write(dir)
    .unwrap();
    let cfg = Config {
        state_dir: dir.join("state"),
        ..Config::default()
    };
    crate::engine::run_config::write(dir, &cfg).unwrap();
}

fn error_of(reply: &Reply) -> String {
    assert!(reply.is_error, "{reply:?}");
    reply.text.clone()
}

#[test]
fn the_table_lists_only_the_allowed_tools_with_their_class() {
    let listed = specs(&[qualify("report"), qualify("propose_action"), "Bash".into()]);
    let names: Vec<&str> = listed.iter().map(|s| s.name).collect();
    assert_eq!(names, ["report", "propose_action"]);
    assert!(listed[0].description.starts_with("[risk: read]"));
    assert!(listed[1].description.starts_with("[risk: needs_approval]"));
    assert_eq!(listed[0].schema["additionalProperties"], false);
    // Every tool has a class, a description and an object schema.
    for (name, _) in crate::defs::policy::steward_tools::TOOLS {
        let s = table::spec(name).unwrap();
        assert!(s.description.len() > 20, "{name}");
        assert_eq!(s.schema["type"], "object");
    }
    assert!(table::spec("nope").is_none());
}

#[test]
fn arguments_are_bounded_and_a_bad_one_is_named() {
    let err = args::object("probe", json!({"name": "x", "extra": 1})).unwrap_err();
    assert!(err.to_string().contains("argument `extra`"), "{err}");
    let err = args::object("probe", json!(["x"])).unwrap_err();
    assert!(err.to_string().contains("must be an object"), "{err}");
    let ok = args::object("probe", json!({"name": "disk"})).unwrap();
    assert_eq!(args::name(&ok, "name").unwrap(), "disk");

    let long = args::object("probe", json!({"name": "x".repeat(args::MAX_NAME + 1)})).unwrap();
    let err = args::name(&long, "name").unwrap_err();
    assert!(err.to_string().starts_with("argument `name`"), "{err}");
    let wrong = args::object("probe", json!({"name": 7})).unwrap();
    assert!(
        args::name(&wrong, "name")
            .unwrap_err()
            .to_string()
            .contains("string")
    );
    let empty = args::object("probe", json!({})).unwrap();
    assert!(
        args::name(&empty, "name")
            .unwrap_err()
            .to_string()
            .contains("required")
    );

    let lines = args::object("container_logs", json!({"container": "c", "lines": 0})).unwrap();
    let err = args::count(&lines, "lines", (1, 200, 2000)).unwrap_err();
    assert!(err.to_string().contains("argument `lines`"), "{err}");
    let absent = args::object("container_logs", json!({"container": "c"})).unwrap();
    assert_eq!(args::count(&absent, "lines", (1, 200, 2000)).unwrap(), 200);

    let tags = args::object("propose_note", json!({"tags": ["a", ""]})).unwrap();
    assert!(
        args::strings(&tags, "tags", 8, 40)
            .unwrap_err()
            .to_string()
            .contains("`tags`")
    );
    let body = args::object(
        "propose_note",
        json!({"body": "b".repeat(args::MAX_TEXT + 1)}),
    )
    .unwrap();
    assert!(args::text(&body, "body", args::MAX_TEXT).is_err());
}

#[tokio::test]
async fn the_server_refuses_unlisted_and_unknown_tools_itself() {
    let dir = tempfile::tempdir().unwrap();
    context(dir.path(), &["report"]);
    let e = error_of(&call(dir.path(), "probe", json!({"name": "x"})).await);
    assert!(e.contains("not in this run's goal's tools"), "{e}");
    let e = error_of(&call(dir.path(), "mcp__steward__rm_rf", json!({})).await);
    assert!(e.contains("serves no tool"), "{e}");
    // Fenced as data, with the run's nonce, even an error.
    assert!(e.contains("nonce=\"N0NCE\""), "{e}");
    // A listed tool with a bad argument: named, before anything runs.
    let e = error_of(&call(dir.path(), "report", json!({"verbose": true})).await);
    assert!(e.contains("argument `verbose`"), "{e}");
}

#[tokio::test]
async fn a_run_without_a_tool_context_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = error_of(&call(dir.path(), "report", json!({})).await);
    assert!(e.contains("tool context"), "{e}");
}

#[test]
fn answers_are_redacted_bounded_and_fenced() {
    let value =
        json!({"out": "token sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA and N0NCE"});
    let text = shape("probe", "N0NCE", &value, None);
    assert!(!text.contains("AAAAAAAAAAAAAAAA"), "{text}");
    assert!(text.starts_with("<untrusted-data source=\"steward tool probe\" nonce=\"N0NCE\">"));
    // The nonce inside the data cannot close the fence.
    assert_eq!(text.matches("N0NCE").count(), 2, "{text}");
    let big = bound(&"é".repeat(MAX_ANSWER_BYTES), MAX_ANSWER_BYTES);
    assert!(big.len() < MAX_ANSWER_BYTES + 100);
    assert!(big.ends_with("bytes shown]"), "{}", &big[big.len() - 60..]);
}

#[tokio::test]
async fn knowledge_answers_a_note_whole_and_names_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    context(dir.path(), &["knowledge"]);
    let hook = crate::engine::boundary::HookContext {
        state_dir: dir.path().join("state"),
        run_id: "r1".into(),
        goal: "health-check".into(),
        subject: "host".into(),
        signal_fingerprint: None,
        state_fingerprint: "fp".into(),
        checks: Vec::new(),
        known_checks: Vec::new(),
        action_ttl_secs: 60,
        approval: Default::default(),
        approval_timeout_secs: 60,
    };
    ledger::write_json(
        &dir.path().join(crate::engine::boundary::HOOK_CONTEXT_FILE),
        &hook,
    )
    .unwrap();
    let reply = call(
        dir.path(),
        "knowledge",
        json!({"name": "transition-states"}),
    )
    .await;
    assert!(!reply.is_error, "{reply:?}");
    assert!(reply.text.contains("re-check once"), "{}", reply.text);
    assert!(reply.text.contains("nonce=\"N0NCE\""), "{}", reply.text);
    let e = error_of(&call(dir.path(), "knowledge", json!({"name": "nope"})).await);
    assert!(e.contains("no knowledge note `nope`"), "{e}");
}
