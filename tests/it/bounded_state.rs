//! `steward serve` sent alerts as large as a request allows: what it keeps (router state, job
//! files, events, memory) is bounded by the signal's caps, not by what it was sent, and every
//! cut is on the record.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

const VERDICT_OK: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "looked, all fine", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

/// A running `steward serve`; SIGKILLed on drop if a test did not stop it.
struct Daemon {
    child: Child,
    url: String,
}

impl Daemon {
    fn start(env: &Env, token: &Path) -> Daemon {
        let (child, url) = crate::common::serve::listening(
            env.steward()
                .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token-file"])
                .arg(token),
        );
        Daemon { child, url }
    }

    /// VmRSS in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// SIGTERM and wait: the daemon must exit 0.
    fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a JSON body with curl: (status, answer).
fn post(url: &str, body: &[u8]) -> (u16, Value) {
    let mut child = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", url])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

fn am_payload(alerts: Vec<Value>) -> Value {
    json!({"version": "4", "status": "firing", "receiver": "steward", "groupKey": "{}:{}",
           "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://am", "alerts": alerts})
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
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

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The issue's storm: 100 alerts whose `alertname`s are 500 KiB each and differ only in their
/// last bytes. Before, `router.json` grew to 56 MB and the daemon's RSS to 100 MB.
#[test]
fn alerts_with_huge_labels_are_cut_on_the_record_and_state_stays_small() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), VERDICT_OK);
    let env = Env::new(
        &claude,
        &model.url,
        "#--tables--\n[serve]\npaused = true\npoll_secs = 1\n[router]\nmax_runs_per_hour_per_source = 2\n",
    );
    let token = env.dir.path().join("webhook-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let d = Daemon::start(&env, &token);
    let am = format!("{}/hooks/alertmanager", d.url);

    let mut decisions = Vec::new();
    for i in 0..100 {
        let name = format!("{}{i:06}", "A".repeat(500 * 1024 - 6));
        let alert = json!({"status": "firing",
            "labels": {"alertname": name, "severity": "warning"},
            "annotations": {"summary": "huge"}, "startsAt": "2026-11-22T06:00:00Z",
            "fingerprint": format!("huge-{i}")});
        let (code, body) = post(&am, am_payload(vec![alert]).to_string().as_bytes());
        assert_eq!(code, 200, "{body}");
        decisions.extend(body["decisions"].as_array().unwrap().iter().cloned());
    }
    let count = |name: &str| decisions.iter().filter(|d| d["decision"] == name).count();
    // The names are cut to the same prefix; the hash of the whole name keeps the subjects
    // apart, so these are rate limits, not one subject's cooldown.
    assert_eq!(
        (count("enqueue"), count("rate_limited")),
        (2, 98),
        "{decisions:?}"
    );
    let subjects: std::collections::BTreeSet<&str> = decisions
        .iter()
        .map(|d| d["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 100);
    let longest = subjects.iter().map(|s| s.len()).max().unwrap();
    assert!(longest <= 256, "a subject of {longest} bytes");
    let rss_kib = d.rss_kib();
    d.stop();

    let state = env.state();
    let router_json = std::fs::metadata(state.join("router.json")).unwrap().len();
    eprintln!("router.json: {router_json} bytes; RSS after the storm: {rss_kib} KiB");
    assert!(
        router_json < 64 * 1024,
        "router.json is {router_json} bytes"
    );
    // Before: 100 MB. The bodies still pass through memory; nothing of them is kept.
    assert!(rss_kib < 64 * 1024, "RSS after the storm: {rss_kib} KiB");

    let routing = events(&state, "routing");
    assert_eq!(routing.len(), 100);
    for e in &routing {
        assert!(e["subject"].as_str().unwrap().len() <= 256, "{e}");
        let cut: Vec<&str> = e["truncated"]
            .as_array()
            .unwrap_or_else(|| panic!("no `truncated` in {e}"))
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(cut, ["subject", "labels.alertname", "payload"], "{e}");
    }
    let jobs = json_files(&state.join("queue"));
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        let size = std::fs::metadata(job).unwrap().len();
        assert!(size < 256 * 1024, "{} is {size} bytes", job.display());
        let job: Value = serde_json::from_str(&std::fs::read_to_string(job).unwrap()).unwrap();
        let signal = &job["signal"];
        assert!(signal["labels"]["alertname"].as_str().unwrap().len() <= 1024);
        assert_eq!(signal["payload"]["status"], "firing", "{signal}");
        assert!(signal["payload"]["_truncated"]["bytes"].as_u64().unwrap() > 500 * 1024);
    }

    // Restarted with the worker on: the runs' signal.json says what was cut.
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace("paused = true", "paused = false")).unwrap();
    let d = Daemon::start(&env, &token);
    let restarted_rss_kib = d.rss_kib();
    eprintln!("RSS after restart: {restarted_rss_kib} KiB");
    assert!(
        restarted_rss_kib < 48 * 1024,
        "RSS after restart: {restarted_rss_kib} KiB"
    );
    wait_for("two finished jobs", 120, || {
        json_files(&state.join("queue/archive")).len() == 2
    });
    d.stop();
    let runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let signal: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("signal.json")).unwrap())
                .unwrap();
        assert_eq!(
            signal["truncated"],
            json!(["subject", "labels.alertname", "payload"]),
            "{}",
            run.display()
        );
        assert!(signal["subject"].as_str().unwrap().contains("sha256:"));
    }
}
