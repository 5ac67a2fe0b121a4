//! Helpers shared by the integration tests: the real claude binary, a scripted model, a spec.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use steward::adapters::scripted::{self, Scenario, Server};
use steward::engine::agent::{self, AgentFailure, AgentOutcome, AgentSpec, Observer};

pub mod cli;
pub mod git;
pub mod podman;
pub mod require;
pub mod serve;

/// The version looked for in the test cache when `STEWARD_TEST_CLAUDE` is not set.
/// `scripts/test.sh` sets it, once for each end of the tested range.
pub const CLAUDE_VERSION: &str = steward::adapters::doctor::claude_version::OLDEST_TESTED;

/// The pinned claude: `STEWARD_TEST_CLAUDE`, else the test cache; missing: see [`require`].
pub fn claude_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("STEWARD_TEST_CLAUDE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let cache = std::env::var_os("STEWARD_TEST_CACHE")
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/steward-test")
                });
            cache.join(format!("claude-{CLAUDE_VERSION}/node_modules/.bin/claude"))
        }
    };
    require::executable(
        &path,
        &format!("claude {CLAUDE_VERSION}"),
        "set STEWARD_TEST_CLAUDE, or run scripts/test.sh",
    )
}

pub async fn server(scenario: &str) -> Server {
    let scenario = Scenario::parse(scenario).expect("scenario parses");
    scripted::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("scripted server starts")
}

/// A temp dir with `ws/` (claude's cwd) and `home/`, removed on drop.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::Builder::new()
            .prefix("steward-agent-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(root.path().join("ws")).unwrap();
        std::fs::create_dir(root.path().join("home")).unwrap();
        Dirs { root }
    }
    pub fn ws(&self) -> PathBuf {
        self.root.path().join("ws")
    }
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
}

pub fn nonce_settings(nonce: &str) -> serde_json::Value {
    serde_json::json!({
        "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": format!("echo {nonce}"), "timeout": 10}]}]}
    })
}

/// A fast spec: no retries, short timeout, tools Bash and Read, nothing pre-approved.
pub fn spec(claude: PathBuf, server: &Server, dirs: &Dirs) -> AgentSpec {
    let nonce = format!("steward-test-nonce-{}", uuid::Uuid::new_v4().simple());
    let auth_env: BTreeMap<String, String> = [
        ("ANTHROPIC_BASE_URL".to_string(), server.base_url()),
        (
            "ANTHROPIC_API_KEY".to_string(),
            "sk-steward-test".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    AgentSpec {
        claude_bin: claude,
        workspace: dirs.ws(),
        home: dirs.home(),
        prompt: "Check the scripted host and report.".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        tools: vec!["Bash".into(), "Read".into()],
        allowed_tools: vec![],
        disallowed_tools: vec![],
        max_turns: 8,
        budget_usd: 1.0,
        session_id: uuid::Uuid::new_v4(),
        settings: nonce_settings(&nonce),
        permission_mode: steward::engine::agent::PermissionMode::DontAsk,
        prompt_tool: None,
        tool_server: None,
        nonce,
        auth_env,
        path_env: "/usr/local/bin:/usr/bin:/bin".into(),
        max_retries: 0,
        timeout: Duration::from_secs(60),
        kill_grace: Duration::from_secs(3),
        pid_namespace: true,
    }
}

/// Keeps every parsed line.
#[derive(Default)]
pub struct Collect(pub Vec<serde_json::Value>);

impl Observer for Collect {
    fn line(&mut self, line: &serde_json::Value) {
        self.0.push(line.clone());
    }
}

pub struct Ran {
    pub outcome: AgentOutcome,
    pub transcript: Vec<String>,
    pub lines: Vec<serde_json::Value>,
}

pub async fn run(spec: &AgentSpec) -> Ran {
    let mut transcript = Vec::new();
    let mut sink = |l: &str| {
        transcript.push(l.to_string());
        Ok(())
    };
    let mut observer = Collect::default();
    let outcome = agent::run(spec, &mut sink, &mut observer)
        .await
        .expect("transcript writes succeed");
    Ran {
        outcome,
        transcript,
        lines: observer.0,
    }
}

/// The failure kind as serialised (`"timeout"`, `"api_error"` …).
pub fn kind(outcome: &AgentOutcome) -> String {
    match &outcome.failure {
        Some(f) => serde_json::to_value(f).unwrap()["kind"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        None => "none".into(),
    }
}

/// Processes whose command line contains `marker`, other than this test process.
pub fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Writes an executable shell script.
pub fn script(path: &std::path::Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

pub const VERDICT_TURN: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "all good", findings = [{ severity = "info", subject = "disk", detail = "12% used" }], proposed_actions = [{ command = ["systemctl", "restart", "x"], rationale = "r", risk = "low" }, { command = "logrotate -f /etc/logrotate.conf", rationale = "r", risk = "medium" }], knowledge = [{ title = "t", tags = ["disk"], body = "b" }] }
"#;

/// A marker unique to this test run, usable as a `sleep` argument (`<whole>.<digits>`).
pub fn sleep_marker(whole: u32) -> String {
    format!("{whole}.{}", uuid::Uuid::new_v4().as_u128() % 100_000_000)
}

/// Polls /proc for `marker` while something runs; true once it was seen.
pub fn watch_for(marker: &str) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(AtomicBool::new(false));
    let (flag, marker) = (seen.clone(), marker.to_string());
    let task = tokio::spawn(async move {
        while !flag.load(Ordering::Relaxed) {
            if !processes_with(&marker).is_empty() {
                flag.store(true, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (seen, task)
}

/// Waits up to 3 s for every process carrying `marker` to be gone, then returns what is left.
pub async fn left_behind(marker: &str) -> Vec<(u32, String)> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(marker);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Bash tool outliving the timeout: `Timeout`, and nothing it started survives.
pub async fn real_claude_timeout_leaves_nothing_behind(claude: PathBuf, pid_namespace: bool) {
    // `sleep 60.…s`, not `sleep 60.…`: claude 2.1.332 refuses a Bash command that starts with
    // `sleep N` for a plain number N >= 25 ("Blocked: standalone sleep …"); 2.1.197 ran it.
    let marker = sleep_marker(60);
    let srv = server(&format!(
        "[[turn]]\n[[turn.tool_use]]\nname = \"Bash\"\ninput = {{ command = \"sleep {marker}s\", description = \"wait\" }}\n{VERDICT_TURN}"
    ))
    .await;
    let dirs = Dirs::new();
    let mut spec = spec(claude, &srv, &dirs);
    spec.allowed_tools = vec!["Bash(sleep:*)".into()];
    spec.pid_namespace = pid_namespace;
    // Long enough for claude to start the tool even on a loaded 2-core machine (6 s was not,
    // with four test threads each starting claude).
    spec.timeout = Duration::from_secs(15);
    spec.kill_grace = Duration::from_secs(2);
    let (seen, watcher) = watch_for(&marker);
    let started = Instant::now();
    let ran = run(&spec).await;
    watcher.abort();
    assert!(
        matches!(
            ran.outcome.failure,
            Some(AgentFailure::Timeout { after_secs: 15 })
        ),
        "{:?}",
        ran.outcome.failure
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        seen.load(Ordering::Relaxed),
        "the sleep never ran, so the test proves nothing; transcript:\n{}",
        ran.transcript.join("\n")
    );
    let left = left_behind(&marker).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    let left = left_behind(&spec.session_id.to_string()).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A fake claude that ignores SIGINT and starts a child in its own session (like a tool shell):
/// only SIGKILL of the group plus the namespace (or the descendant walk) ends both.
pub async fn stubborn_process_is_killed(kill_grace: Duration, pid_namespace: bool) {
    let marker = sleep_marker(70);
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let fake = script(
        &dirs.root.path().join("stubborn-claude"),
        &format!("cat >/dev/null\ntrap '' INT TERM\nsetsid sleep {marker} &\nsleep {marker}"),
    );
    let mut spec = spec(fake, &srv, &dirs);
    spec.timeout = Duration::from_secs(1);
    spec.kill_grace = kill_grace;
    spec.pid_namespace = pid_namespace;
    let (seen, watcher) = watch_for(&marker);
    let started = Instant::now();
    let ran = run(&spec).await;
    watcher.abort();
    assert!(
        matches!(
            ran.outcome.failure,
            Some(AgentFailure::Timeout { after_secs: 1 })
        ),
        "{:?}",
        ran.outcome.failure
    );
    assert!(seen.load(Ordering::Relaxed), "the fake never started");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) + kill_grace,
        "SIGKILL came before the grace: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let left = left_behind(&marker).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The caller drops a running `agent::run` (e.g. its own timeout): nothing may survive.
pub async fn cancelled_run_leaves_nothing_behind(pid_namespace: bool) {
    let marker = sleep_marker(80);
    let srv = server(VERDICT_TURN).await;
    let dirs = Dirs::new();
    let fake = script(
        &dirs.root.path().join("stubborn-claude"),
        &format!("cat >/dev/null\ntrap '' INT TERM\nsetsid sleep {marker} &\nsleep {marker}"),
    );
    let mut spec = spec(fake, &srv, &dirs);
    spec.pid_namespace = pid_namespace;
    let (seen, watcher) = watch_for(&marker);
    let mut sink = |_: &str| Ok(());
    let mut observer = Collect::default();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(1500),
        agent::run(&spec, &mut sink, &mut observer),
    )
    .await;
    watcher.abort();
    assert!(cancelled.is_err(), "the run should still have been going");
    assert!(seen.load(Ordering::Relaxed), "the fake never started");
    let left = left_behind(&marker).await;
    assert!(left.is_empty(), "left behind: {left:?}");
}
