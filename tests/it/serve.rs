//! `steward serve` as a process: the webhooks' answers, health and metrics, a real Prometheus
//! Alertmanager delivering alerts, storms, restarts with queued work, and SIGHUP.
//!
//! Queued work is kept queued with `[serve] paused = true` (the worker claims nothing while it is
//! set); a test lifts it by rewriting the config and sending SIGHUP, or by restarting.

use crate::common;

use std::io::{Read, Write};
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
    fn start(env: &Env, token: Option<&Path>) -> Daemon {
        Daemon::start_with(env, token, &[])
    }

    fn start_with(env: &Env, token: Option<&Path>, vars: &[(&str, &str)]) -> Daemon {
        Daemon::start_cmd(env, token, |cmd| {
            cmd.envs(vars.iter().copied());
        })
    }

    /// With the daemon's open-file limit (soft and hard) lowered to `nofile`.
    fn start_with_nofile(env: &Env, token: Option<&Path>, nofile: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        Daemon::start_cmd(env, token, |cmd| {
            // SAFETY: setrlimit is async-signal-safe, and nothing else runs in the child.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_NOFILE,
                        nofile,
                        nofile,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        })
    }

    fn start_cmd(env: &Env, token: Option<&Path>, prepare: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = env.steward();
        prepare(&mut cmd);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(t) = token {
            cmd.arg("--webhook-token-file").arg(t);
        }
        let (child, url) = crate::common::serve::listening(&mut cmd);
        Daemon { child, url }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM and wait: the daemon must exit 0.
    fn stop(mut self) {
        self.signal("TERM");
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

/// An HTTP request with curl: (status, body).
fn http(method: &str, url: &str, headers: &[&str], body: Option<&[u8]>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    // Bounded: a daemon that cannot answer fails the test instead of hanging it.
    cmd.args([
        "-s",
        "-m",
        "60",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        url,
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(b) = body {
        // The server may answer (413) before reading everything; a broken pipe is fine then.
        let _ = stdin.write_all(b);
    }
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_string())
}

const BEARER: &str = "Authorization: Bearer test-token-0123456789abcdef";
const JSON: &str = "Content-Type: application/json";

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let (code, text) = http(
        "POST",
        url,
        &[BEARER, JSON],
        Some(body.to_string().as_bytes()),
    );
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn alert(name: &str, instance: &str, fp: &str, status: &str) -> Value {
    json!({"status": status, "labels": {"alertname": name, "instance": instance, "severity": "warning"},
           "annotations": {"summary": format!("{name} on {instance}")},
           "startsAt": "2026-11-22T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
           "fingerprint": fp})
}

fn am_payload(alerts: Vec<Value>) -> Value {
    json!({"version": "4", "status": "firing", "receiver": "steward", "groupKey": "{}:{}",
           "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://am", "alerts": alerts})
}

fn jobs(state: &Path, archived: bool) -> Vec<Value> {
    let dir = if archived {
        state.join("queue/archive")
    } else {
        state.join("queue")
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
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

fn write_token(dir: &Path) -> PathBuf {
    let p = dir.join("webhook-token");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    p
}

fn set_paused(env: &Env, paused: bool) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text.replace(
        &format!("paused = {}", !paused),
        &format!("paused = {paused}"),
    );
    std::fs::write(&env.config, text).unwrap();
}

const PAUSED: &str = "#--tables--\n[serve]\npaused = true\npoll_secs = 1\n";

#[test]
fn webhooks_refuse_bad_requests_with_reasons() {
    // No run starts here (the worker is paused), so no claude is needed.
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        PAUSED,
    );
    let token = write_token(env.dir.path());
    let d = Daemon::start(&env, Some(&token));
    let am = format!("{}/hooks/alertmanager", d.url);
    let good = am_payload(vec![alert("DiskFull", "h1", "fp-1", "firing")]).to_string();

    let (code, body) = http("POST", &am, &[JSON], Some(good.as_bytes()));
    assert_eq!(code, 401, "{body}");
    let (code, _) = http(
        "POST",
        &am,
        &["Authorization: Bearer wrong-token-0123456789", JSON],
        Some(good.as_bytes()),
    );
    assert_eq!(code, 401);
    let (code, body) = http(
        "POST",
        &am,
        &[BEARER, "Content-Type: text/plain"],
        Some(good.as_bytes()),
    );
    assert_eq!(code, 415, "{body}");
    let (code, body) = http("POST", &am, &[BEARER, JSON], Some(b"{not json"));
    assert_eq!(code, 400);
    assert!(body.contains("not an Alertmanager payload"), "{body}");
    let (code, body) = post_json(
        &am,
        &json!({"version": "4", "alerts": [{"status": "firing", "labels": {}}]}),
    );
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("alertname"),
        "{body}"
    );
    let (code, body) = post_json(&am, &json!({"version": "3", "alerts": []}));
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("version"),
        "{body}"
    );
    let big = vec![b' '; 2 * 1024 * 1024];
    let (code, _) = http("POST", &am, &[BEARER, JSON], Some(&big));
    assert_eq!(code, 413);

    // Basic auth with the token as password is accepted; the answer lists the decisions.
    let basic = format!(
        "Authorization: Basic {}",
        "YWxlcnRtYW5hZ2VyOnRlc3QtdG9rZW4tMDEyMzQ1Njc4OWFiY2RlZg=="
    );
    let (code, body) = http("POST", &am, &[&basic, JSON], Some(good.as_bytes()));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["decisions"][0]["decision"], "enqueue");
    assert_eq!(v["decisions"][0]["goal"], "incident");

    let generic = format!("{}/hooks/generic", d.url);
    let (code, body) = post_json(&generic, &json!({"fingerprint": "x"}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("subject"),
        "{body}"
    );
    let (code, body) = post_json(
        &generic,
        &json!({"subject": "backup", "labels": {"goal": "health-check"}}),
    );
    assert_eq!(code, 200, "{body}");
    // A webhook signal has no bundled route: recorded, not run.
    assert_eq!(body["decisions"][0]["decision"], "no_route");

    let (code, body) = http("GET", &format!("{}/healthz", d.url), &[], None);
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, json!({"status": "ok", "queue_depth": 1}));
    let (code, metrics) = http("GET", &format!("{}/metrics", d.url), &[], None);
    assert_eq!(code, 200);
    // Every metric is declared before it has moved (a labelled family only once it has a
    // sample: `steward_runs_total` is checked after runs, below and in the storm test).
    for (name, kind) in [
        ("steward_signals", "counter"),
        ("steward_run_duration_seconds", "histogram"),
        ("steward_run_cost_usd", "counter"),
        ("steward_queue_depth", "gauge"),
        ("steward_policy_denials", "counter"),
    ] {
        let decl = format!("# TYPE {name} {kind}");
        assert!(metrics.contains(&decl), "{decl} missing from:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"steward_signals_total{source="alertmanager",decision="enqueue"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"steward_signals_total{source="webhook",decision="no_route"} 1"#));
    assert!(metrics.contains("steward_queue_depth 1"), "{metrics}");
    // The accepted alert is in the event log.
    assert_eq!(events(&env.state(), "routing").len(), 2);
    d.stop();

    // No token configured: the webhooks refuse everything rather than open up.
    let d = Daemon::start(&env, None);
    let (code, _) = http(
        "POST",
        &format!("{}/hooks/alertmanager", d.url),
        &[BEARER, JSON],
        Some(good.as_bytes()),
    );
    assert_eq!(code, 503);
    d.stop();
}

#[test]
fn a_storm_is_bounded_and_queued_work_survives_reload_and_restart() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), VERDICT_OK);
    let env = Env::new(&claude, &model.url, PAUSED);
    let token = write_token(env.dir.path());
    let d = Daemon::start(&env, Some(&token));
    let am = format!("{}/hooks/alertmanager", d.url);

    // 300 alerts over three fingerprints, 50 per delivery.
    let mut decisions = Vec::new();
    for batch in 0..6 {
        let alerts = (0..50)
            .map(|i| {
                let n = (batch * 50 + i) % 3;
                alert("Storm", &format!("h{n}"), &format!("storm-{n}"), "firing")
            })
            .collect();
        let (code, body) = post_json(&am, &am_payload(alerts));
        assert_eq!(code, 200, "{body}");
        decisions.extend(body["decisions"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(decisions.len(), 300);
    let enqueued = decisions
        .iter()
        .filter(|d| d["decision"] == "enqueue")
        .count();
    assert_eq!(enqueued, 3, "one job per fingerprint");
    assert!(
        decisions
            .iter()
            .all(|d| d["decision"] == "enqueue" || d["decision"] == "merged")
    );
    assert_eq!(jobs(&env.state(), false).len(), 3);

    // Concurrent deliveries are decided in shared batches; each still gets its own answers,
    // in the order of its alerts.
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let am = am.clone();
            std::thread::spawn(move || {
                for round in 0..10 {
                    let fps: Vec<String> = (0..=(round % 3))
                        .map(|i| format!("storm-{}", (t + round + i) % 3))
                        .collect();
                    let alerts = fps
                        .iter()
                        .map(|fp| alert("Storm", "h", fp, "firing"))
                        .collect();
                    let (code, body) = post_json(&am, &am_payload(alerts));
                    assert_eq!(code, 200, "{body}");
                    let got: Vec<&str> = body["decisions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["fingerprint"].as_str().unwrap())
                        .collect();
                    assert_eq!(got, fps, "{body}");
                    assert!(
                        body["decisions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|d| d["decision"] == "merged"),
                        "{body}"
                    );
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    // 8 threads × 10 rounds × (1 + 2 + 3 alerts, cycling): 8 × (4×1 + 3×2 + 3×3) = 152.
    let concurrent = 152;

    // A broken configuration on SIGHUP is refused; the daemon keeps serving with the old one.
    let good = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{good}\nbogus_key = 1\n")).unwrap();
    d.signal("HUP");
    wait_for("the refused reload", 10, || {
        !events(&env.state(), "config_reload_refused").is_empty()
    });
    let refused = &events(&env.state(), "config_reload_refused")[0];
    assert!(
        refused["reason"].as_str().unwrap().contains("bogus_key"),
        "{refused}"
    );
    let (code, body) = http("GET", &format!("{}/healthz", d.url), &[], None);
    assert_eq!(
        (code, body.contains("\"queue_depth\":3")),
        (200, true),
        "{body}"
    );

    // Stopped with work queued: the jobs stay on disk.
    std::fs::write(&env.config, &good).unwrap();
    d.stop();
    assert!(!env.state().join("daemon.json").exists());
    let queued = jobs(&env.state(), false);
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|j| j["state"] == "queued"));
    // Merge counts live in memory and reach the job files at the latest on stop; every
    // decision is in the event log.
    let merged: u64 = queued.iter().map(|j| j["merged"].as_u64().unwrap()).sum();
    assert_eq!(merged, 297 + concurrent);
    assert_eq!(
        events(&env.state(), "routing").len(),
        300 + concurrent as usize
    );

    // Restarted unpaused: every job runs, against the scripted model.
    set_paused(&env, false);
    let d = Daemon::start(&env, Some(&token));
    // An ended job is written to the archive before its active file goes: wait for both.
    wait_for("three finished jobs", 90, || {
        jobs(&env.state(), true)
            .iter()
            .filter(|j| j["state"] == "done")
            .count()
            == 3
            && jobs(&env.state(), false).is_empty()
    });
    let runs = std::fs::read_dir(env.state().join("runs")).unwrap().count();
    assert_eq!(runs, 3);
    let (_, metrics) = http("GET", &format!("{}/metrics", d.url), &[], None);
    assert!(
        metrics.contains(r#"steward_runs_total{goal="incident",outcome="ok"} 3"#),
        "{metrics}"
    );
    d.stop();
    assert_eq!(events(&env.state(), "daemon_stopped").len(), 2);
}

#[test]
fn a_trigger_hands_its_signal_to_the_daemon_and_systemd_hears_of_it() {
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        PAUSED,
    );
    let token = write_token(env.dir.path());
    // systemd's side of sd_notify: a datagram socket, and a watchdog of 200 ms.
    let notify_path = env.dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let recv = |timeout: Duration| {
        notify.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 256];
        notify
            .recv(&mut buf)
            .map(|n| String::from_utf8_lossy(&buf[..n]).trim().to_string())
    };
    let d = Daemon::start_with(
        &env,
        Some(&token),
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    assert_eq!(recv(Duration::from_secs(10)).unwrap(), "READY=1");
    assert_eq!(recv(Duration::from_secs(10)).unwrap(), "WATCHDOG=1");
    let out = env
        .steward()
        .args(["--json", "trigger", "timer", "health-check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["daemon"]["handoff"], "daemon");
    assert_eq!(v["daemon"]["decision"], "enqueue");
    let queued = jobs(&env.state(), false);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["goal"], "health-check");
    assert_eq!(queued[0]["signal"]["source"], "timer");
    d.stop();
    let mut told = Vec::new();
    while let Ok(m) = recv(Duration::from_millis(300)) {
        told.push(m);
    }
    assert!(told.iter().any(|m| m == "STOPPING=1"), "{told:?}");
}

/// The issue's timer: a goal fired again and again through the daemon is run every time (it
/// never "flaps" for running), while a subject whose runs keep failing is held back with exit 6,
/// and a spent budget with exit 7; the operator is told once each.
#[test]
fn timer_fires_run_every_time_and_held_back_triggers_exit_non_zero() {
    // health-check with stand-in checks that pass: every run is `no_action`, no claude needed.
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        "#--tables--\n[serve]\npoll_secs = 1\n[router]\ncooldown_secs = 0\n",
    );
    let d = Daemon::start(&env, None);
    let trigger = |goal: &str| {
        let out = env
            .steward()
            .args(["--json", "trigger", "timer", goal])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    for n in 1..=5 {
        let (code, v) = trigger("health-check");
        assert_eq!(code, Some(0), "fire {n}: {v}");
        assert_eq!(v["daemon"]["decision"], "enqueue", "fire {n}: {v}");
        wait_for("the run", 20, || jobs(&env.state(), true).len() == n);
    }
    let archived = jobs(&env.state(), true);
    assert!(
        archived.iter().all(|j| j["outcome"] == "no_action"),
        "{archived:#?}"
    );
    assert!(events(&env.state(), "operator_notice").is_empty());

    // Three timer runs of the subject that ended escalated in the last ten minutes.
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for i in 0..3 {
        let id = format!(
            "{:04}{:02}{:02}T000000Z-health-check-esc00{i}",
            now.year(),
            u8::from(now.month()),
            now.day()
        );
        let run = env.state().join("runs").join(id);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("result.json"),
            json!({"cost_usd": 0.0, "source": "timer", "subject": "health-check",
                   "outcome": "escalated", "finished": stamp})
            .to_string(),
        )
        .unwrap();
    }
    let (code, v) = trigger("health-check");
    assert_eq!(code, Some(6), "{v}");
    assert_eq!(v["daemon"]["decision"], "flapping", "{v}");
    assert_eq!(v["exit"], "needs_human");

    // Today's runs cost more than the budget: another goal's timer is held back, exit 7.
    let run = env.state().join(format!(
        "runs/{:04}{:02}{:02}T000000Z-incident-spent",
        now.year(),
        u8::from(now.month()),
        now.day()
    ));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("result.json"), r#"{"cost_usd": 99.0}"#).unwrap();
    let out = env
        .steward()
        .args(["trigger", "timer", "proactive"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{said}");
    assert!(
        said.contains("NOT RUN (over_budget; exit 7 limited)"),
        "{said}"
    );
    let causes: Vec<Value> = events(&env.state(), "operator_notice")
        .into_iter()
        .map(|n| n["cause"].clone())
        .collect();
    assert_eq!(causes, [json!("flapping"), json!("daily_budget")]);
    d.stop();
}

/// A job queued before the budget was spent is not started by the worker, and the operator is
/// told (once a day): a skipped run is never silent.
#[test]
fn a_queued_job_the_spent_budget_stops_tells_the_operator() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        PAUSED,
    );
    let token = write_token(tmp.path());
    let d = Daemon::start(&env, Some(&token));
    let (code, body) = post_json(
        &format!("{}/hooks/alertmanager", d.url),
        &am_payload(vec![alert("Disk", "h1", "spent-1", "firing")]),
    );
    assert_eq!(code, 200, "{body}");
    let job = body["decisions"][0]["job_id"].as_str().unwrap().to_string();
    let today = time::OffsetDateTime::now_utc().date();
    let run = env.state().join(format!(
        "runs/{:04}{:02}{:02}T000000Z-incident-spent",
        today.year(),
        u8::from(today.month()),
        today.day()
    ));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("result.json"), r#"{"cost_usd": 99.0}"#).unwrap();
    set_paused(&env, false);
    d.signal("HUP");
    wait_for("the job to be cancelled", 20, || {
        jobs(&env.state(), true)
            .iter()
            .any(|j| j["id"] == job.as_str() && j["state"] == "cancelled")
    });
    wait_for("the notice", 5, || {
        !events(&env.state(), "operator_notice").is_empty()
    });
    let notices = events(&env.state(), "operator_notice");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["cause"], "daily_budget");
    assert_eq!(notices[0]["job"], job.as_str());
    d.stop();
}

/// `prometheus-alertmanager`, with `amtool` beside it, or None (see `common::require`).
fn alertmanager_bin() -> Option<PathBuf> {
    let alertmanager = common::require::tool("prometheus-alertmanager")?;
    common::require::tool("amtool")?;
    Some(alertmanager)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Alertmanager {
    child: Child,
    url: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    fn start(bin: &Path, dir: &Path, webhook: &str) -> Alertmanager {
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: steward\n  group_by: [alertname, instance]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 4h\nreceivers:\n  - name: steward\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n        http_config:\n          authorization:\n            credentials: {TOKEN}\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_for("alertmanager ready", 20, || {
            http("GET", &format!("{}/-/ready", am.url), &[], None).0 == 200
        });
        am
    }

    fn amtool(&self, args: &[&str]) {
        let out = Command::new("amtool")
            .arg(format!("--alertmanager.url={}", self.url))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn alertmanager_fires_a_run_and_a_resolved_alert_cancels_queued_work() {
    let Some(claude) = claude_bin() else { return };
    let Some(am_bin) = alertmanager_bin() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), VERDICT_OK);
    let env = Env::new(&claude, &model.url, PAUSED);
    let token = write_token(env.dir.path());
    let d = Daemon::start(&env, Some(&token));
    let am = Alertmanager::start(
        &am_bin,
        tmp.path(),
        &format!("{}/hooks/alertmanager", d.url),
    );

    am.amtool(&[
        "alert",
        "add",
        "DiskFull",
        "instance=h1",
        "severity=critical",
        "--annotation=summary=disk full on h1",
    ]);
    am.amtool(&[
        "alert",
        "add",
        "HighLoad",
        "instance=h2",
        "severity=warning",
        "--annotation=summary=load high on h2",
    ]);
    wait_for("two queued alert jobs", 20, || {
        jobs(&env.state(), false).len() == 2
    });
    let queued = jobs(&env.state(), false);
    let disk = queued
        .iter()
        .find(|j| j["signal"]["subject"] == "DiskFull/h1")
        .unwrap();
    assert_eq!(disk["goal"], "incident");
    assert_eq!(disk["signal"]["source"], "alertmanager");
    assert_eq!(disk["signal"]["severity"], "critical");
    assert_eq!(disk["signal"]["annotations"]["summary"], "disk full on h1");

    // Resolved: the same alert with an end in the past; Alertmanager sends `resolved`, and the
    // queued job for that fingerprint is cancelled.
    am.amtool(&[
        "alert",
        "add",
        "DiskFull",
        "instance=h1",
        "severity=critical",
        "--annotation=summary=disk full on h1",
        "--end=2020-01-01T00:00:00Z",
    ]);
    let disk_id = disk["id"].as_str().unwrap().to_string();
    wait_for("the resolved alert's job cancelled", 30, || {
        jobs(&env.state(), true)
            .iter()
            .any(|j| j["id"] == disk_id.as_str() && j["state"] == "cancelled")
    });
    assert_eq!(jobs(&env.state(), false).len(), 1);

    // Unpaused by SIGHUP: the other alert's job runs the incident goal against the model.
    set_paused(&env, false);
    d.signal("HUP");
    wait_for("the incident run", 60, || {
        jobs(&env.state(), true)
            .iter()
            .any(|j| j["state"] == "done")
    });
    let done = jobs(&env.state(), true)
        .into_iter()
        .find(|j| j["state"] == "done")
        .unwrap();
    assert_eq!(done["signal"]["subject"], "HighLoad/h2");
    let run_id = done["run_id"].as_str().unwrap();
    let signal: Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("signal.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(signal["source"], "alertmanager");
    assert!(run_id.contains("incident"), "{run_id}");
    assert!(!model.requests().as_array().unwrap().is_empty());
    drop(am);
    d.stop();
}

#[test]
fn sigterm_cancels_a_run_past_the_grace_period_and_requeues_its_job() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // The model takes far longer than the grace period to answer.
    let model = ScriptedModel::start(
        tmp.path(),
        r#"
[[turn]]
delay_ms = 60000
verdict = { status = "ok", summary = "slow", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#,
    );
    let env = Env::new(
        &claude,
        &model.url,
        "#--tables--\n[serve]\ngrace_secs = 1\npoll_secs = 1\n",
    );
    let token = write_token(env.dir.path());
    let d = Daemon::start(&env, Some(&token));
    let (code, body) = post_json(
        &format!("{}/hooks/alertmanager", d.url),
        &am_payload(vec![alert("Slow", "h1", "slow-1", "firing")]),
    );
    assert_eq!(code, 200, "{body}");
    wait_for("claude to ask the model", 30, || {
        !model.requests().as_array().unwrap().is_empty()
    });
    let started = Instant::now();
    d.stop();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        started.elapsed()
    );
    let queued = jobs(&env.state(), false);
    assert_eq!(queued.len(), 1, "the job is back in the queue");
    assert_eq!(queued[0]["state"], "queued");
    let stopped = events(&env.state(), "daemon_stopped");
    assert!(
        stopped[0]["worker"].as_str().unwrap().contains("cancelled"),
        "{stopped:?}"
    );
    // The cancelled run has a complete record, like a `steward run` stopped by SIGTERM.
    let finished = events(&env.state(), "run_finished");
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["outcome"], "cancelled");
    let run_id = finished[0]["run"].as_str().unwrap();
    let result: Value = serde_json::from_str(
        &std::fs::read_to_string(env.run_dir(run_id).join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(result["outcome"], "cancelled", "{result:#}");
    assert_eq!(result["exit_code"], 143);
    assert_eq!(result["failure"]["signal"], "SIGTERM");
    assert!(queued[0]["reason"].as_str().unwrap().contains(run_id));
}

const TICK_GOAL: &str = "+++\ndescription = \"a goal the scheduler fires every second\"\nschedule = \"* * * * * *\"\n+++\nLook around.\n";

#[test]
fn the_scheduler_routes_timer_signals_and_a_reload_stops_it() {
    // Paused: the fires are routed and queued, nothing runs, so no claude is needed.
    let dir = tempfile::tempdir().unwrap();
    let goals = dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(goals.join("tick.md"), TICK_GOAL).unwrap();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!("goals_dir = \"{}\"\n{PAUSED}", goals.display()),
    );
    let state = env.state();
    let d = Daemon::start(&env, None);
    let started = events(&state, "daemon_started");
    assert_eq!(started[0]["scheduled"][0]["goal"], "tick", "{started:?}");

    let fired = |state: &Path| {
        events(state, "scheduled")
            .into_iter()
            .filter(|e| e["goal"] == "tick")
            .count()
    };
    wait_for("two scheduled fires", 10, || fired(&state) >= 2);
    let routed = events(&state, "routing");
    assert!(
        routed.iter().any(|e| e.to_string().contains("tick")),
        "{routed:?}"
    );
    // The first fire queued the goal; the next ones met it queued (the router's dedup).
    wait_for("a queued tick job", 5, || {
        jobs(&state, false).iter().any(|j| j["goal"] == "tick")
    });
    assert_eq!(
        jobs(&state, false)
            .iter()
            .filter(|j| j["goal"] == "tick")
            .count(),
        1
    );

    // The schedule removed and reloaded: no more fires.
    std::fs::write(
        goals.join("tick.md"),
        TICK_GOAL.replace("schedule = \"* * * * * *\"\n", ""),
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the reload", 10, || {
        !events(&state, "config_reloaded").is_empty()
    });
    // A fire already on its way when the reload landed may still record itself.
    std::thread::sleep(Duration::from_millis(500));
    let before = fired(&state);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        fired(&state),
        before,
        "the scheduler fired after the reload"
    );

    // A bad schedule refuses the reload with the goal file and line.
    std::fs::write(
        goals.join("tick.md"),
        TICK_GOAL.replace("* * * * * *", "every second"),
    )
    .unwrap();
    d.signal("HUP");
    wait_for("the refused reload", 10, || {
        !events(&state, "config_reload_refused").is_empty()
    });
    let refused = events(&state, "config_reload_refused");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(reason.contains("tick.md:3:"), "{reason}");
    d.stop();
}

/// Flapping and the daily budget, as the daemon sees them: Alertmanager v4 deliveries posted
/// directly, since a real Alertmanager dedups repeats of one alert for `repeat_interval` and
/// would take minutes to flap. firing → resolved → firing → resolved → firing is the third
/// occurrence within ten minutes: escalated once, no third job. Then a spent budget: alerts are
/// recorded, no job is queued, and the operator is told once.
#[test]
fn flapping_escalates_once_and_an_exhausted_budget_queues_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!("{PAUSED}[router]\ndaily_budget_usd = 0.5\n"),
    );
    let token = write_token(tmp.path());
    let d = Daemon::start(&env, Some(&token));
    let am = format!("{}/hooks/alertmanager", d.url);
    let deliver = |status: &str, instance: &str, fp: &str| -> Value {
        let (code, body) = post_json(&am, &am_payload(vec![alert("Flap", instance, fp, status)]));
        assert_eq!(code, 200, "{body}");
        body["decisions"][0].clone()
    };

    let mut seen = Vec::new();
    for status in [
        "firing", "resolved", "firing", "resolved", "firing", "firing",
    ] {
        seen.push(deliver(status, "h1", "flap-1")["decision"].clone());
    }
    assert_eq!(
        seen,
        [
            "enqueue", "resolved", "enqueue", "resolved", "flapping", "flapping"
        ]
    );
    let escalations = events(&env.state(), "escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0]["subject"], "Flap/h1");
    assert_eq!(escalations[0]["flapping"], "acute");
    assert!(
        jobs(&env.state(), false).is_empty(),
        "no job for a flapping subject"
    );

    // Today's runs cost $0.75 against a $0.50 budget.
    let today = time::OffsetDateTime::now_utc().date();
    let run = env.state().join(format!(
        "runs/{:04}{:02}{:02}T000000Z-incident-abcdef",
        today.year(),
        u8::from(today.month()),
        today.day()
    ));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("result.json"), r#"{"cost_usd": 0.75}"#).unwrap();
    let first = deliver("firing", "h2", "budget-2");
    let second = deliver("firing", "h3", "budget-3");
    assert_eq!(
        (&first["decision"], &first["notify"]),
        (&json!("over_budget"), &json!(true)),
        "{first}"
    );
    assert_eq!(
        (&second["decision"], &second["notify"]),
        (&json!("over_budget"), &json!(false)),
        "{second}"
    );
    assert!(jobs(&env.state(), false).is_empty());
    // Told once about the flapping subject and once about the budget.
    let notices: Vec<Value> = events(&env.state(), "operator_notice")
        .into_iter()
        .map(|n| n["cause"].clone())
        .collect();
    assert_eq!(notices, [json!("flapping"), json!("daily_budget")]);
    let (_, metrics) = http("GET", &format!("{}/metrics", d.url), &[], None);
    for line in [
        r#"steward_signals_total{source="alertmanager",decision="flapping"} 2"#,
        r#"steward_signals_total{source="alertmanager",decision="over_budget"} 2"#,
        r#"steward_signals_total{source="alertmanager",decision="resolved"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    d.stop();
    // The router's windows are on disk for the next start: the escalation and the notice.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(env.state().join("router.json")).unwrap())
            .unwrap();
    assert!(state["escalated"]["Flap/h1"].is_i64(), "{state}");
    assert!(state["budget_told"].is_string(), "{state}");
}

/// An HTTP request to the daemon's local socket with curl: (status, body).
fn local_http(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-m",
        "10",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    cmd.arg("--unix-socket").arg(socket);
    if let Some(b) = body {
        cmd.args(["-H", JSON, "--data-binary", b]);
    }
    let out = cmd.arg(format!("http://steward{path}")).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Reads until the peer closes (or resets) the connection; `Err` if it is still open after
/// `within`.
fn closed_within(s: &mut std::net::TcpStream, within: Duration) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(got),
        Err(e) => Err(format!("still open ({e}) after {:?}: read {got:?}", within)),
    }
}

/// The daemon's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Issue 10 item 4: more half-sent request lines than the daemon has descriptors (its open-file
/// limit lowered to 256 so that the flood is quick) neither starve `daemon.sock`, `/healthz` and
/// the webhooks nor take the descriptors steward keeps for its own files; every one is closed
/// after the header-read timeout, a kept-alive connection after the same idle time, and a body
/// that trickles in gets 408.
#[test]
fn half_sent_requests_are_closed_and_never_starve_the_daemon() {
    const NOFILE: u64 = 256;
    const FLOOD: usize = 400;
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        "#--tables--\n[serve]\npaused = true\npoll_secs = 1\nheader_read_timeout_secs = 2\nbody_timeout_secs = 2\n",
    );
    let token = write_token(env.dir.path());
    let d = Daemon::start_with_nofile(&env, Some(&token), NOFILE);
    let pid = d.child.id();
    let addr = d.url.trim_start_matches("http://").to_string();
    let socket = env.state().join("daemon.sock");

    let started = events(&env.state(), "daemon_started");
    let caps = &started[0]["connections"];
    assert_eq!(caps["nofile"], NOFILE, "{caps}");
    let (tcp_cap, local_cap) = (
        caps["tcp"].as_u64().unwrap(),
        caps["local"].as_u64().unwrap(),
    );
    assert!(
        tcp_cap + local_cap + caps["reserve"].as_u64().unwrap() <= NOFILE,
        "{caps}"
    );

    let flood_start = Instant::now();
    let mut flood: Vec<std::net::TcpStream> = (0..FLOOD)
        .map(|i| {
            let to = addr.parse().unwrap();
            let mut s = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("the daemon took no connection {i} of {FLOOD}: {e}"));
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: steward\r\n")
                .unwrap();
            s
        })
        .collect();

    // The local socket has slots of its own: a trigger is answered at once.
    let (code, body) = local_http(&socket, "GET", "/healthz", None);
    assert_eq!(code, 200, "daemon.sock under the flood: {body}");
    let signal = json!({"source": "manual", "subject": "health-check",
        "fingerprint": "flood-local", "severity": "info", "labels": {"goal": "health-check"},
        "received": "2026-11-22T06:00:00Z"});
    let (code, body) = local_http(&socket, "POST", "/signals", Some(&signal.to_string()));
    assert_eq!(code, 200, "a trigger's signal under the flood: {body}");
    assert!(flood_start.elapsed() < Duration::from_secs(5));

    // The connections take at most their cap: the reserve stays free for steward's own files.
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        most as u64 <= NOFILE - caps["reserve"].as_u64().unwrap(),
        "{most} descriptors open of {NOFILE}: {caps}"
    );

    // The TCP listener reaches new clients as the half-sent ones time out: health and a webhook
    // (whose routing event and job file need descriptors of their own) are answered.
    let (code, body) = http("GET", &format!("{}/healthz", d.url), &[], None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = post_json(
        &format!("{}/hooks/alertmanager", d.url),
        &am_payload(vec![alert("Flood", "h1", "flood-1", "firing")]),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["decisions"][0]["decision"], "enqueue", "{body}");

    // Every half-sent request was closed by the daemon, none answered.
    for s in &mut flood {
        let got = closed_within(s, Duration::from_secs(30)).unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(
            !got.contains("queue_depth"),
            "a half-sent request was answered: {got}"
        );
    }
    let rounds = (FLOOD as u64).div_ceil(tcp_cap) + 1;
    assert!(
        flood_start.elapsed() < Duration::from_secs(2 * rounds + 15),
        "the flood took {:?} to drain",
        flood_start.elapsed()
    );

    // A kept-alive connection is closed once idle for the same time.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: steward\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let n = s.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
    let idle = Instant::now();
    closed_within(&mut s, Duration::from_secs(15)).unwrap();
    assert!(
        idle.elapsed() >= Duration::from_millis(1500),
        "closed after {:?}",
        idle.elapsed()
    );

    // A body that does not arrive in time is refused with 408, and nothing is routed.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(
        format!(
            "POST /hooks/alertmanager HTTP/1.1\r\nHost: steward\r\n{BEARER}\r\n{JSON}\r\nContent-Length: 100\r\n\r\n{{\"version\""
        )
        .as_bytes(),
    )
    .unwrap();
    let got = closed_within(&mut s, Duration::from_secs(15)).unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("serve.body_timeout_secs"), "{got}");
    assert_eq!(events(&env.state(), "routing").len(), 2);
    d.stop();
}

const GENERIC_TOKEN: &str = "generic-token-9876543210fedcba";

/// Issue 10 item 6: the generic webhook is not the operator. A real Alertmanager queues a job;
/// then the generic webhook, with its own token, tries every bypass of the issue: another
/// source, a goal, free-text vars, a label that a bundled route would read as the goal, and a
/// `resolved` naming the Alertmanager alert's fingerprint. Each is refused or neutralised, the
/// Alertmanager job survives, and only Alertmanager's own resolve cancels it. Each endpoint
/// takes its own token only, and a repeated `Content-Type` or `Authorization` is a 400.
#[test]
fn the_generic_webhook_cannot_act_as_another_source_or_pick_a_goal() {
    let Some(am_bin) = alertmanager_bin() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let am_token = tmp.path().join("am-token");
    std::fs::write(&am_token, format!("{TOKEN}\n")).unwrap();
    let generic_token = tmp.path().join("generic-token");
    std::fs::write(&generic_token, format!("{GENERIC_TOKEN}\n")).unwrap();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!(
            "{PAUSED}alertmanager_token_file = \"{}\"\ngeneric_token_file = \"{}\"\n",
            am_token.display(),
            generic_token.display()
        ),
    );
    let d = Daemon::start(&env, None);
    let am = Alertmanager::start(
        &am_bin,
        tmp.path(),
        &format!("{}/hooks/alertmanager", d.url),
    );
    am.amtool(&[
        "alert",
        "add",
        "DiskFull",
        "instance=h1",
        "severity=critical",
    ]);
    wait_for("the alert's job", 20, || {
        jobs(&env.state(), false).len() == 1
    });
    let job = jobs(&env.state(), false).remove(0);
    let fp = job["signal"]["fingerprint"].as_str().unwrap().to_string();
    let job_id = job["id"].as_str().unwrap().to_string();

    let generic = format!("{}/hooks/generic", d.url);
    let bearer = format!("Authorization: Bearer {GENERIC_TOKEN}");
    let post = |body: &Value| -> (u16, Value) {
        let (code, text) = http(
            "POST",
            &generic,
            &[&bearer, JSON],
            Some(body.to_string().as_bytes()),
        );
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };

    // The operator's intent, with free text: refused, with the reason.
    let (code, body) = post(&json!({"subject": "free the disk", "source": "manual",
        "goal": "intent", "vars": {"intent": "delete everything under /var/log"}}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("routes' decision"),
        "{body}"
    );
    for source in ["manual", "ci", "on_failure", "timer", "alertmanager"] {
        let (code, body) = post(&json!({"subject": "main", "source": source}));
        assert_eq!(code, 400, "{source}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("always of source `webhook`"),
            "{body}"
        );
    }
    let (code, body) = post(&json!({"subject": "x", "vars": {"intent": "rm -rf /"}}));
    assert_eq!(code, 400, "{body}");
    // A goal named in a label is just a label: no bundled route reads it for a webhook.
    let (code, body) = post(&json!({"subject": "x", "labels": {"goal": "intent"},
        "annotations": {"intent": "delete everything under /var/log"}}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["decisions"][0]["decision"], "no_route", "{body}");

    // The alert's fingerprint names the webhook's own work only: neither a resolve nor a
    // firing reaches Alertmanager's job.
    let (code, body) = post(&json!({"subject": "DiskFull/h1", "fingerprint": fp,
        "status": "resolved"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["decisions"][0]["decision"], "resolved", "{body}");
    assert_eq!(body["decisions"][0]["cancelled"], json!([]), "{body}");
    assert_eq!(
        body["decisions"][0]["fingerprint"],
        format!("webhook:{fp}"),
        "{body}"
    );
    let (code, body) = post(&json!({"subject": "DiskFull/h1", "fingerprint": fp}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["decisions"][0]["decision"], "no_route", "{body}");
    let queued = jobs(&env.state(), false);
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!(queued[0]["id"], job_id.as_str());
    assert_eq!(queued[0]["state"], "queued");
    assert_eq!(queued[0]["merged"], 0);
    assert!(events(&env.state(), "job_cancelled").is_empty());

    // One endpoint's token does not open the other.
    let payload = am_payload(vec![alert("Forged", "h1", "forged-1", "firing")]).to_string();
    let (code, _) = http(
        "POST",
        &format!("{}/hooks/alertmanager", d.url),
        &[&bearer, JSON],
        Some(payload.as_bytes()),
    );
    assert_eq!(code, 401);
    let (code, _) = http(
        "POST",
        &generic,
        &[BEARER, JSON],
        Some(json!({"subject": "x"}).to_string().as_bytes()),
    );
    assert_eq!(code, 401);

    // Headers read one way only: a repeated Content-Type (differing or not) or Authorization.
    let one = json!({"subject": "x"}).to_string();
    for headers in [
        [bearer.as_str(), JSON, "Content-Type: text/plain"],
        [bearer.as_str(), JSON, JSON],
        [bearer.as_str(), BEARER, JSON],
    ] {
        let (code, body) = http("POST", &generic, &headers, Some(one.as_bytes()));
        assert_eq!(code, 400, "{headers:?}: {body}");
        assert!(body.contains("times: send it once"), "{body}");
    }

    // Alertmanager's own resolve still cancels its job.
    am.amtool(&[
        "alert",
        "add",
        "DiskFull",
        "instance=h1",
        "severity=critical",
        "--end=2020-01-01T00:00:00Z",
    ]);
    wait_for("Alertmanager's resolve", 30, || {
        jobs(&env.state(), true)
            .iter()
            .any(|j| j["id"] == job_id.as_str() && j["state"] == "cancelled")
    });
    // Only Alertmanager's work was ever queued.
    assert!(
        jobs(&env.state(), true)
            .iter()
            .chain(&jobs(&env.state(), false))
            .all(|j| j["signal"]["source"] == "alertmanager")
    );
    drop(am);
    d.stop();
}
