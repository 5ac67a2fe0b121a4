//! Tests against real local things: a loopback HTTP server, real ports, temp files, the real
//! mount table, real processes.

use std::time::{Duration, Instant, SystemTime};

use super::exec::{lookup, parse_mountinfo, parse_systemctl_show};
use super::*;
use crate::defs::bundled::{self, Kind};

fn src(text: &str) -> SourceFile {
    SourceFile {
        origin: "test.toml".into(),
        stem: "test".into(),
        text: text.into(),
    }
}

fn load(text: &str) -> CheckSet {
    match CheckSet::load(&[src(text)]) {
        Ok(s) => s,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn load_err(text: &str) -> CheckError {
    match CheckSet::load(&[src(text)]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

async fn run1(text: &str) -> CheckResult {
    let set = load(text);
    let mut r = run_checks(&set.checks).await;
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn cmd(argv: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"c\"\ndescription = \"a command\"\nkind = \"command\"\nargv = {argv}\n{extra}\n"
    )
}

// ---------------------------------------------------------------------------------------------
// definitions

#[test]
fn parses_every_kind_and_ignores_probes() {
    let set = load(
        r#"
[[probe]]
name = "p"
whatever = "probes are not ours"

[[check]]
name = "cmd"
description = "d"
kind = "command"
argv = ["true"]
json_field = "a.b"
in = [1, "x"]

[[check]]
name = "web"
description = "d"
kind = "http"
url = "http://127.0.0.1:1/"
status = [200, 204]
timeout_secs = 2.5
tags = ["post"]

[[check]]
name = "port"
description = "d"
kind = "tcp"
host = "127.0.0.1"
port = 22

[[check]]
name = "unit"
description = "d"
kind = "systemd"
unit = "ssh.service"

[[check]]
name = "mnt"
description = "d"
kind = "mount"
path = "/proc"
options = ["rw"]

[[check]]
name = "f"
description = "d"
kind = "file"
path = "/etc/hostname"
max_age_secs = 10
contains = "."
"#,
    );
    let kinds: Vec<&str> = set.checks.iter().map(|c| c.kind.name()).collect();
    assert_eq!(
        kinds,
        ["command", "http", "tcp", "systemd", "mount", "file"]
    );
    let web = &set.checks[1];
    assert_eq!(web.timeout, Duration::from_millis(2500));
    assert!(matches!(&web.kind, CheckKind::Http { status, .. } if status == &[200, 204]));
    assert_eq!(web.origin, "test.toml:14:1");
    assert!(matches!(&set.checks[3].kind, CheckKind::Systemd { state, .. } if state == "active"));
    assert_eq!(set.checks[0].timeout, DEFAULT_TIMEOUT);
    // Definitions serialise (for `--json` listings).
    let v = serde_json::to_value(&set.checks[0]).unwrap_or_default();
    assert_eq!(v["kind"], "command");
    assert_eq!(v["json_field"]["compare"]["in"][1], "x");
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let e = load_err(
        "[[check]]\nname = \"x\"\ndescription = \"d\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\nbogus = 3\n",
    );
    let msg = e.to_string();
    assert!(matches!(&e, CheckError::Parse { line: 7, .. }), "got {msg}");
    assert!(msg.starts_with("test.toml:7:"), "{msg}");
    assert!(msg.contains("bogus"), "{msg}");
}

#[test]
fn key_of_another_kind_is_rejected_with_field_and_line() {
    let e = load_err(&cmd("[\"true\"]", "url = \"http://x/\""));
    match &e {
        CheckError::Definition { line, field, .. } => {
            assert_eq!((*line, field.as_str()), (6, "url"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("not valid for kind `command`"));
}

#[test]
fn missing_required_fields_are_named() {
    let e = load_err("[[check]]\nname = \"w\"\ndescription = \"d\"\nkind = \"http\"\n");
    assert!(
        matches!(&e, CheckError::Definition { field, line: 1, .. } if field == "url"),
        "{e}"
    );
    let e = load_err("[[check]]\nname = \"w\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\n");
    assert!(
        matches!(&e, CheckError::Definition { field, .. } if field == "description"),
        "{e}"
    );
    let e =
        load_err("[[check]]\nname = \"w\"\ndescription = \"d\"\nkind = \"tcp\"\nhost = \"h\"\n");
    assert!(
        matches!(&e, CheckError::Definition { field, .. } if field == "port"),
        "{e}"
    );
    let e = load_err("[[check]]\nname = \"w\"\ndescription = \"d\"\nkind = \"command\"\n");
    assert!(
        matches!(&e, CheckError::Definition { field, .. } if field == "argv"),
        "{e}"
    );
    let e = load_err("[[check]]\ndescription = \"d\"\nkind = \"command\"\nargv = [\"true\"]\n");
    assert!(e.to_string().contains("name"), "{e}");
}

#[test]
fn bad_values_are_rejected() {
    let cases = [
        (cmd("[\"true\"]", "stdout_matches = \"(\""), "stdout_matches"),
        (cmd("[]", ""), "argv"),
        (cmd("[\"true\"]", "equals = 3"), "equals"),
        (cmd("[\"true\"]", "json_field = \"a\""), "json_field"),
        (
            cmd("[\"true\"]", "json_field = \"a\"\nequals = 1\nless_than = 2"),
            "less_than",
        ),
        (cmd("[\"true\"]", "timeout_secs = 0"), "timeout_secs"),
        (
            "[[check]]\nname = \"m\"\ndescription = \"d\"\nkind = \"mount\"\npath = \"proc\"\n"
                .to_string(),
            "path",
        ),
        (
            "[[check]]\nname = \"h\"\ndescription = \"d\"\nkind = \"http\"\nurl = \"ftp://x/\"\n"
                .to_string(),
            "url",
        ),
        (
            "[[check]]\nname = \"h\"\ndescription = \"d\"\nkind = \"http\"\nurl = \"http://x/\"\nstatus = 99\n"
                .to_string(),
            "status",
        ),
        (
            "[[check]]\nname = \"x\"\ndescription = \"d\"\nkind = \"docker\"\n".to_string(),
            "kind",
        ),
        (
            "[[check]]\nname = \"f\"\ndescription = \"d\"\nkind = \"file\"\npath = \"/x\"\nexists = false\ncontains = \"y\"\n"
                .to_string(),
            "exists",
        ),
    ];
    for (text, want) in cases {
        match CheckSet::load(&[src(&text)]) {
            Err(CheckError::Definition { field, .. }) => assert_eq!(field, want, "{text}"),
            other => panic!("{text}: expected a definition error on `{want}`, got {other:?}"),
        }
    }
}

#[test]
fn duplicate_names_across_files_are_rejected() {
    let a = src(&cmd("[\"true\"]", ""));
    let mut b = a.clone();
    b.origin = "other.toml".into();
    let e = match CheckSet::load(&[a, b]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("duplicate accepted"),
    };
    assert!(
        e.starts_with("other.toml:1:1: check `") && e.contains("already defined at test.toml:1:1"),
        "{e}"
    );
}

#[test]
fn select_by_name_tag_and_star() {
    let set = load(
        r#"
[[check]]
name = "a"
description = "d"
kind = "command"
argv = ["true"]
tags = ["x"]
[[check]]
name = "b"
description = "d"
kind = "command"
argv = ["true"]
tags = ["x", "y"]
[[check]]
name = "c"
description = "d"
kind = "command"
argv = ["true"]
"#,
    );
    let names = |sel: &[&str]| -> Vec<String> {
        let sel: Vec<String> = sel.iter().map(|s| s.to_string()).collect();
        match set.select(&sel) {
            Ok(v) => v.into_iter().map(|c| c.name).collect(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(names(&["tag:y", "a", "b"]), ["b", "a"]);
    assert_eq!(names(&["*"]), ["a", "b", "c"]);
    assert_eq!(names(&["tag:x"]), ["a", "b"]);
    assert!(names(&["tag:none"]).is_empty());
    let e = set.select(&["nope".to_string()]);
    assert!(matches!(e, Err(CheckError::Unknown { ref name, .. }) if name == "nope"));
}

#[test]
fn goal_checks_deserialize_and_reject_unknown_keys() {
    let g: GoalChecks = match toml::from_str(
        "static = [\"tag:flake\"]\npreflight = [\"a\"]\npost = [\"b\"]\ninvariants = [\"c\"]\nrollback = [\"git\", \"revert\"]\nmodel = \"on_attention\"\n",
    ) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(g.static_, ["tag:flake"]);
    assert_eq!(g.names(Phase::Invariant), ["c"]);
    assert_eq!(
        g.rollback.as_deref(),
        Some(&["git".to_string(), "revert".to_string()][..])
    );
    assert_eq!(g.model, ModelPolicy::OnAttention);
    assert_eq!(GoalChecks::default().model, ModelPolicy::Always);
    let e = toml::from_str::<GoalChecks>("postt = []\n");
    assert!(e.is_err());
    assert_eq!("invariants".parse::<Phase>(), Ok(Phase::Invariant));
    assert!("later".parse::<Phase>().is_err());
}

#[test]
fn bundled_checks_parse() {
    let files = match bundled::files(Kind::Context, None, false, "toml") {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let set = match CheckSet::load(&files) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    for name in [
        "systemd-no-failed-units",
        "root-disk-space",
        "consul-members-alive",
        "nomad-jobs-healthy",
        "nix-flake-check",
        "proc-mounted",
    ] {
        assert!(set.get(name).is_some(), "missing bundled check {name}");
    }
    let flake = set.select(&["tag:flake".to_string()]).unwrap_or_default();
    assert_eq!(flake.len(), 1);
    assert!(flake[0].tags.iter().any(|t| t == "static"));
}

/// The bundled checks run here without failing: the tools this machine lacks are `unavailable`.
#[tokio::test]
async fn bundled_host_checks_do_not_fail_where_tools_are_absent() {
    let files = bundled::files(Kind::Context, None, false, "toml").unwrap_or_default();
    let set = load_or_panic(&files);
    let picked = set
        .select(&[
            "systemd-no-failed-units".to_string(),
            "consul-members-alive".to_string(),
            "nomad-jobs-healthy".to_string(),
            "proc-mounted".to_string(),
        ])
        .unwrap_or_default();
    let results = run_checks(&picked).await;
    let by = |n: &str| results.iter().find(|r| r.name == n).map(|r| r.status);
    assert_eq!(by("proc-mounted"), Some(CheckStatus::Pass));
    if !std::path::Path::new("/run/systemd/system").exists() {
        assert_eq!(
            by("systemd-no-failed-units"),
            Some(CheckStatus::Unavailable)
        );
    }
    if which("consul").is_none() {
        assert_eq!(by("consul-members-alive"), Some(CheckStatus::Unavailable));
    }
    if which("nomad").is_none() {
        assert_eq!(by("nomad-jobs-healthy"), Some(CheckStatus::Unavailable));
    }
    // The disk check parses real `df` output: it passes or fails, never errors.
    let disk = run_checks(
        &set.select(&["root-disk-space".to_string()])
            .unwrap_or_default(),
    )
    .await;
    assert!(
        matches!(disk[0].status, CheckStatus::Pass | CheckStatus::Fail),
        "{:?}",
        disk[0]
    );
}

fn load_or_panic(files: &[SourceFile]) -> CheckSet {
    match CheckSet::load(files) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

// ---------------------------------------------------------------------------------------------
// command

#[tokio::test]
async fn command_exit_codes() {
    let r = run1(&cmd("[\"true\"]", "")).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert_eq!(r.observed["exit_code"], 0);
    assert_eq!(r.expected, "exit 0");
    let r = run1(&cmd("[\"false\"]", "")).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert_eq!(r.detail.as_deref(), Some("exit 1, expected exit 0"));
    let r = run1(&cmd("[\"false\"]", "exit_code = 1")).await;
    assert_eq!(r.status, CheckStatus::Pass);
}

#[tokio::test]
async fn command_stdout_patterns() {
    let r = run1(&cmd(
        "[\"echo\", \"hello world\"]",
        "stdout_matches = '^hello'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Pass);
    let r = run1(&cmd(
        "[\"echo\", \"hello world\"]",
        "stdout_matches = '^world'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    let r = run1(&cmd(
        "[\"printf\", \"a ok\\nb failed\\n\"]",
        "stdout_not_matches = 'failed'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(
        r.detail
            .as_deref()
            .unwrap_or("")
            .contains("line 2: b failed"),
        "{r:?}"
    );
    // The failed-units idiom: empty output passes.
    let r = run1(&cmd("[\"true\"]", "stdout_not_matches = '\\S'")).await;
    assert_eq!(r.status, CheckStatus::Pass);
}

#[tokio::test]
async fn command_json_field() {
    let json = r#"["echo", "{\"a\":{\"b\":3},\"list\":[{\"s\":\"up\"}],\"n\":\"7\"}"]"#;
    let cases = [
        ("json_field = \"a.b\"\nequals = 3", CheckStatus::Pass),
        ("json_field = \"/a/b\"\nequals = 3.0", CheckStatus::Pass),
        ("json_field = \"a.b\"\nequals = 4", CheckStatus::Fail),
        ("json_field = \"a.b\"\nless_than = 4", CheckStatus::Pass),
        ("json_field = \"a.b\"\nless_than = 3", CheckStatus::Fail),
        ("json_field = \"a.b\"\ngreater_than = 2", CheckStatus::Pass),
        ("json_field = \"n\"\ngreater_than = 6", CheckStatus::Pass),
        (
            "json_field = \"list.0.s\"\nin = [\"up\", \"ok\"]",
            CheckStatus::Pass,
        ),
        (
            "json_field = \"list.0.s\"\nin = [\"down\"]",
            CheckStatus::Fail,
        ),
        ("json_field = \"a.missing\"\nequals = 1", CheckStatus::Fail),
        ("json_field = \"a\"\nless_than = 1", CheckStatus::Fail),
    ];
    for (extra, want) in cases {
        let r = run1(&cmd(json, extra)).await;
        assert_eq!(r.status, want, "{extra}: {r:?}");
    }
    let r = run1(&cmd(json, "json_field = \"a.b\"\nequals = 4")).await;
    assert_eq!(r.observed["json_field"], 3);
    assert_eq!(r.detail.as_deref(), Some("`a.b` is 3, expected equals 4"));
    let r = run1(&cmd(
        "[\"echo\", \"not json\"]",
        "json_field = \"a\"\nequals = 1",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(r.detail.unwrap_or_default().contains("not JSON"));
}

#[test]
fn json_lookup_paths() {
    let v = serde_json::json!({"a": {"b": [10, {"c": true}]}, "x.y": 1});
    assert_eq!(lookup(&v, "a.b.0"), Some(&serde_json::json!(10)));
    assert_eq!(lookup(&v, "/a/b/1/c"), Some(&serde_json::json!(true)));
    assert_eq!(lookup(&v, "/x.y"), Some(&serde_json::json!(1)));
    assert_eq!(lookup(&v, "a.b.9"), None);
    assert_eq!(lookup(&v, "a.b.c"), None);
}

#[tokio::test]
async fn command_environment_is_cleared() {
    // SAFETY-free check: steward's own environment must not leak into a check.
    let r = run1(&cmd("[\"env\"]", "")).await;
    assert_eq!(r.status, CheckStatus::Pass);
    let out = r.observed["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut keys: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
    keys.sort();
    assert_eq!(keys, ["LANG", "LC_ALL", "PATH"], "{out}");
    assert!(out.contains("LANG=C"));
}

#[tokio::test]
async fn missing_program_is_unavailable() {
    let r = run1(&cmd("[\"steward-no-such-tool-xyz\"]", "")).await;
    assert_eq!(r.status, CheckStatus::Unavailable, "{r:?}");
    assert!(!r.status.is_failure());
}

#[tokio::test]
async fn unavailable_when_matches_output() {
    let r = run1(&cmd(
        "[\"sh\", \"-c\", \"echo 'System has not been booted with systemd' >&2; exit 1\"]",
        "unavailable_when = 'not been booted with systemd'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Unavailable, "{r:?}");
    let r = run1(&cmd(
        "[\"sh\", \"-c\", \"echo 'real breakage' >&2; exit 1\"]",
        "unavailable_when = 'not been booted with systemd'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert_eq!(r.observed["stderr"], "real breakage");
}

#[tokio::test]
async fn command_timeout_kills_the_process_group() {
    let dir = tempdir();
    let pidfile = dir.path().join("pid");
    // The shell backgrounds a grandchild: only a group kill reaches it.
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let text = cmd(
        &format!("[\"sh\", \"-c\", \"{script}\"]"),
        "timeout_secs = 0.5",
    );
    let start = Instant::now();
    let r = run1(&text).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(r.detail.unwrap_or_default().contains("timed out"));
    let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
    let pid = pid.trim();
    assert!(!pid.is_empty());
    // Gone, or a zombie waiting for whoever reaps orphans here: either way not running.
    let mut dead = false;
    for _ in 0..50 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => dead = true,
            Ok(stat) => {
                let state = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .next();
                dead = state == Some("Z");
            }
        }
        if dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead, "grandchild {pid} survived the timeout");
}

#[tokio::test]
async fn checks_run_concurrently_in_order() {
    let mut text = String::new();
    for i in 0..4 {
        text.push_str(&format!(
            "[[check]]\nname = \"s{i}\"\ndescription = \"d\"\nkind = \"command\"\nargv = [\"sleep\", \"0.4\"]\n"
        ));
    }
    let set = load(&text);
    let start = Instant::now();
    let results = run_checks(&set.checks).await;
    assert!(
        start.elapsed() < Duration::from_millis(1400),
        "{:?}",
        start.elapsed()
    );
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["s0", "s1", "s2", "s3"]);
    assert!(results.iter().all(|r| r.status == CheckStatus::Pass));
}

// ---------------------------------------------------------------------------------------------
// http

async fn server() -> std::net::SocketAddr {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = Router::new()
        .route("/health", get(|| async { "status: ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "late"
            }),
        )
        .route("/created", get(|| async { (StatusCode::CREATED, "made") }));
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn http(url: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"h\"\ndescription = \"web\"\nkind = \"http\"\nurl = \"{url}\"\n{extra}\n"
    )
}

#[tokio::test]
async fn http_status_body_and_latency() {
    let addr = server().await;
    let base = format!("http://{addr}");
    let cases = [
        ("/health", "", CheckStatus::Pass),
        ("/health", "body_matches = 'status: ok'", CheckStatus::Pass),
        ("/health", "body_matches = 'broken'", CheckStatus::Fail),
        ("/missing", "", CheckStatus::Fail),
        ("/missing", "status = 404", CheckStatus::Pass),
        ("/created", "", CheckStatus::Fail),
        ("/created", "status = [200, 201]", CheckStatus::Pass),
        ("/slow", "max_latency_ms = 150", CheckStatus::Fail),
        ("/slow", "max_latency_ms = 5000", CheckStatus::Pass),
        ("/slow", "timeout_secs = 0.1", CheckStatus::Fail),
    ];
    for (path, extra, want) in cases {
        let r = run1(&http(&format!("{base}{path}"), extra)).await;
        assert_eq!(r.status, want, "{path} {extra}: {r:?}");
    }
    let r = run1(&http(&format!("{base}/missing"), "")).await;
    assert_eq!(r.observed["status"], 404);
    let r = run1(&http(&format!("{base}/slow"), "max_latency_ms = 150")).await;
    assert!(
        r.observed["latency_ms"].as_u64().unwrap_or(0) >= 400,
        "{r:?}"
    );
    assert!(r.detail.unwrap_or_default().contains("more than 150 ms"));
}

#[tokio::test]
async fn http_connection_refused_fails() {
    let port = closed_port().await;
    let r = run1(&http(&format!("http://127.0.0.1:{port}/"), "")).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert!(r.detail.unwrap_or_default().contains("request failed"));
}

// ---------------------------------------------------------------------------------------------
// tcp

/// A port nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    drop(l);
    port
}

fn tcp(port: u16) -> String {
    format!(
        "[[check]]\nname = \"t\"\ndescription = \"port\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ntimeout_secs = 2\n"
    )
}

#[tokio::test]
async fn tcp_listening_and_closed_ports() {
    let l = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let r = run1(&tcp(port)).await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert_eq!(r.observed["connected"], true);
    drop(l);
    let r = run1(&tcp(closed_port().await)).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// file

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn file_check(path: &std::path::Path, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"f\"\ndescription = \"file\"\nkind = \"file\"\npath = \"{}\"\n{extra}\n",
        path.display()
    )
}

#[tokio::test]
async fn file_exists_age_and_contents() {
    let dir = tempdir();
    let path = dir.path().join("backup.log");
    let missing = dir.path().join("missing");
    if let Err(e) = std::fs::write(&path, "backup finished OK\n") {
        panic!("{e}");
    }
    let cases = [
        (path.clone(), "", CheckStatus::Pass),
        (missing.clone(), "", CheckStatus::Fail),
        (missing.clone(), "exists = false", CheckStatus::Pass),
        (path.clone(), "exists = false", CheckStatus::Fail),
        (path.clone(), "contains = 'finished OK'", CheckStatus::Pass),
        (path.clone(), "contains = 'ERROR'", CheckStatus::Fail),
        (path.clone(), "max_age_secs = 60", CheckStatus::Pass),
    ];
    for (p, extra, want) in cases {
        let r = run1(&file_check(&p, extra)).await;
        assert_eq!(r.status, want, "{} {extra}: {r:?}", p.display());
    }
    // Make it two hours old.
    let old = SystemTime::now() - Duration::from_secs(7200);
    let set = std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(old));
    if let Err(e) = set {
        panic!("{e}");
    }
    let r = run1(&file_check(&path, "max_age_secs = 3600")).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    let age = r.observed["age_secs"].as_u64().unwrap_or(0);
    assert!((7199..7300).contains(&age), "{age}");
    let r = run1(&file_check(&path, "max_age_secs = 10000")).await;
    assert_eq!(r.status, CheckStatus::Pass);
}

// ---------------------------------------------------------------------------------------------
// mount

fn mount_check(path: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"m\"\ndescription = \"mount\"\nkind = \"mount\"\npath = \"{path}\"\n{extra}\n"
    )
}

#[tokio::test]
async fn proc_is_a_mount_point_and_proc_self_is_not() {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let entry = parse_mountinfo(&info)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == "/proc");
    let Some(entry) = entry else {
        panic!("/proc is not in mountinfo here:\n{info}");
    };
    // Whatever /proc's real first option is here (rw or ro), it must be found.
    let opt = entry.options[0].clone();
    let r = run1(&mount_check(
        "/proc",
        &format!("fstype = \"proc\"\noptions = [\"{opt}\"]"),
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Pass, "{r:?}");
    assert_eq!(r.observed["fstype"], "proc");
    let r = run1(&mount_check("/proc/", "")).await;
    assert_eq!(r.status, CheckStatus::Pass, "trailing slash: {r:?}");
    let r = run1(&mount_check("/proc/self", "")).await;
    assert_eq!(r.status, CheckStatus::Fail, "{r:?}");
    assert_eq!(r.observed["mounted"], false);
    let r = run1(&mount_check("/proc", "fstype = \"ext4\"")).await;
    assert_eq!(r.status, CheckStatus::Fail);
    let r = run1(&mount_check("/proc", "options = [\"no-such-option\"]")).await;
    assert_eq!(r.status, CheckStatus::Fail);
    assert!(r.detail.unwrap_or_default().contains("no-such-option"));
}

#[test]
fn mountinfo_parsing_handles_optional_fields_and_escapes() {
    let text = "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                garbage line\n";
    let m = parse_mountinfo(text);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].mount_point, "/mnt/my disk");
    assert_eq!(m[0].options, ["rw", "noatime"]);
    assert_eq!(m[0].fstype, "ext3");
    assert_eq!(m[0].source, "/dev/root");
    assert_eq!(m[0].super_options, ["rw", "errors=continue"]);
    assert_eq!(m[1].fstype, "proc");
}

// ---------------------------------------------------------------------------------------------
// systemd

#[tokio::test]
async fn systemd_without_systemd_is_unavailable() {
    let r = run1(
        "[[check]]\nname = \"u\"\ndescription = \"unit\"\nkind = \"systemd\"\nunit = \"ssh.service\"\n",
    )
    .await;
    let booted = std::path::Path::new("/run/systemd/system").exists();
    if !booted {
        assert_eq!(r.status, CheckStatus::Unavailable, "{r:?}");
        assert!(!r.status.is_failure());
    } else {
        assert_ne!(r.status, CheckStatus::Error, "{r:?}");
    }
    assert_eq!(r.expected, "ssh.service is active");
}

#[test]
fn systemctl_show_parsing() {
    let p = parse_systemctl_show(
        "ActiveState=failed\nSubState=failed\nResult=exit-code\nLoadState=loaded\n",
    );
    assert_eq!(p[0], ("ActiveState".to_string(), "failed".to_string()));
    assert_eq!(p.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// validate

#[tokio::test]
async fn validate_reports_and_unavailable_is_not_failure() {
    let set = load(
        r#"
[[check]]
name = "good"
description = "passes"
kind = "command"
argv = ["true"]
tags = ["static"]
[[check]]
name = "absent"
description = "tool missing"
kind = "command"
argv = ["steward-no-such-tool-xyz"]
tags = ["static", "invariant"]
[[check]]
name = "bad"
description = "fails"
kind = "command"
argv = ["false"]
tags = ["post"]
"#,
    );
    let r = validate(&set, Some(Phase::Static), None).await;
    assert!(r.ok, "{:?}", r.lines());
    assert_eq!(r.counts.get("unavailable"), Some(&1));
    let r = validate(&set, None, None).await;
    assert!(!r.ok);
    assert_eq!(
        r.exit_kind(),
        crate::base::outcome::ExitKind::ValidationFailed
    );
    assert_eq!(r.phases.len(), 1);
    assert!(r.lines().last().is_some_and(|l| l.starts_with("FAILED")));

    let goal = GoalChecks {
        static_: vec!["good".into()],
        post: vec!["bad".into()],
        invariants: vec!["tag:invariant".into()],
        ..GoalChecks::default()
    };
    let r = validate(&set, None, Some(&goal)).await;
    assert_eq!(r.phases.len(), 4);
    assert!(!r.ok);
    let ok_by_phase: Vec<(Option<Phase>, bool)> =
        r.phases.iter().map(|p| (p.phase, p.ok)).collect();
    assert_eq!(
        ok_by_phase,
        [
            (Some(Phase::Static), true),
            (Some(Phase::Preflight), true),
            (Some(Phase::Post), false),
            (Some(Phase::Invariant), true),
        ]
    );
    let r = validate(&set, Some(Phase::Static), Some(&goal)).await;
    assert!(r.ok);
    let v = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(v["ok"], true);
    assert_eq!(v["phases"][0]["phase"], "static");
    assert_eq!(v["phases"][0]["results"][0]["status"], "pass");

    let typo = GoalChecks {
        post: vec!["baad".into()],
        ..GoalChecks::default()
    };
    let r = validate(&set, None, Some(&typo)).await;
    assert!(!r.ok);
    assert_eq!(r.exit_kind(), crate::base::outcome::ExitKind::Usage);
    assert!(r.errors[0].contains("baad"), "{:?}", r.errors);
}

#[tokio::test]
async fn results_can_be_redacted() {
    let r = run1(&cmd(
        "[\"echo\", \"token=hunter2\"]",
        "stdout_not_matches = 'hunter2'",
    ))
    .await;
    assert_eq!(r.status, CheckStatus::Fail);
    let red = r.redacted(&crate::base::redact::Redactor::new(vec!["hunter2".into()]));
    let text = serde_json::to_string(&red).unwrap_or_default();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(red.status, CheckStatus::Fail);
}

#[test]
fn container_checks_parse_with_defaults_and_reject_nonsense() {
    let set = load(
        "[[check]]\nname = \"c\"\ndescription = \"web runs\"\nkind = \"container\"\ncontainer = \"web\"\n",
    );
    match &set.checks[0].kind {
        CheckKind::Container {
            container,
            running,
            healthy,
            restarts_below,
            not_oom_killed,
        } => {
            assert_eq!(container, "web");
            assert!(*running && !*healthy && *not_oom_killed);
            assert_eq!(*restarts_below, None);
        }
        other => panic!("{other:?}"),
    }
    let head = "[[check]]\nname = \"c\"\ndescription = \"d\"\nkind = \"container\"\n";
    let e = load_err(head).to_string();
    assert!(e.contains("container") && e.contains("required"), "{e}");
    let e = load_err(&format!("{head}container = \"web\"\nrestarts_below = 0\n")).to_string();
    assert!(
        e.contains("test.toml:6") && e.contains("restarts_below"),
        "{e}"
    );
    let e = load_err(&format!("{head}container = \"web\"\nunit = \"x\"\n")).to_string();
    assert!(e.contains("`unit`") || e.contains("unit"), "{e}");
}
