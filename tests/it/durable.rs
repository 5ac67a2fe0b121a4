//! What a full disk, a dead process and a crash leave behind, against the real binary: a full
//! event log (a real tmpfs, ENOSPC) loses no answered record and queues nothing without its
//! record; a stale `daemon.json` or a job left `running` under a pid that now belongs to another
//! process stops nothing (the proof of life is a lock); a truncated job file and stale temp files
//! in the queue are put right at the next start.
//!
//! The tmpfs tests need `mount` (root). Without it they fail under `CI=true` and skip otherwise,
//! saying why.

use crate::common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::Env;
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";
const BEARER: &str = "Authorization: Bearer test-token-0123456789abcdef";
const JSON: &str = "Content-Type: application/json";

/// No model is needed: jobs stay queued (paused), or are health-check runs whose stand-in checks
/// pass (`no_action`, no model call).
fn env(tables: &str) -> Env {
    Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!("#--tables--\n{tables}"),
    )
}

const PAUSED: &str = "[serve]\npaused = true\npoll_secs = 1\n[router]\nmax_runs_per_hour = 1000\nmax_runs_per_hour_per_source = 1000\n";

/// A running `steward serve`; SIGKILLed on drop if a test did not stop it.
struct Daemon {
    child: Child,
    url: String,
}

impl Daemon {
    fn start(env: &Env) -> Daemon {
        let token = env.dir.path().join("webhook-token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let (child, url) = crate::common::serve::listening(
            env.steward()
                .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token-file"])
                .arg(&token),
        );
        Daemon { child, url }
    }

    /// SIGTERM and wait: the daemon must exit 0.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
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

    fn health(&self) -> (u16, Value) {
        let (code, text) = http("GET", &format!("{}/healthz", self.url), &[], None);
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn alerts(&self, alerts: Vec<Value>) -> (u16, Value) {
        let body = json!({"version": "4", "status": "firing", "receiver": "steward",
            "groupKey": "{}:{}", "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "alerts": alerts});
        let (code, text) = http(
            "POST",
            &format!("{}/hooks/alertmanager", self.url),
            &[BEARER, JSON],
            Some(body.to_string().as_bytes()),
        );
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alert(name: &str, fp: &str) -> Value {
    json!({"status": "firing", "labels": {"alertname": name, "instance": "h1", "severity": "warning"},
           "annotations": {"summary": format!("{name} on h1, with a longer description to make the event line longer than a short one")},
           "startsAt": "2026-11-22T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
           "fingerprint": fp})
}

/// An HTTP request with curl: (status, body).
fn http(method: &str, url: &str, headers: &[&str], body: Option<&[u8]>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]);
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
        stdin.write_all(b).unwrap();
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

/// Every line of every event day file, parsed: a line that does not parse fails the test.
fn all_events(state: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(state.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in a partial line",
            f.display()
        );
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}: {line:.300}", f.display(), i + 1));
            out.push(v);
        }
    }
    out
}

fn events(state: &Path, kind: &str) -> Vec<Value> {
    all_events(state)
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// Active (or archived) job files, parsed.
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

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// A real full disk: a small tmpfs.

/// A tmpfs mounted on a directory, unmounted when dropped (whatever the test did).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `dir` (created). `None`: mounting is not possible here
    /// (not root), and the test skips, saying so; under `CI=true` that is a failure.
    fn mount(dir: &Path, size: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    dir: dir.to_path_buf(),
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let msg = format!(
            "cannot mount a tmpfs on {} ({why}): this test needs root to fill a real file system",
            dir.display()
        );
        common::require::missing(&msg, "run the tests as root, as CI does");
        None
    }

    /// Fills the file system with a file `filler`: every page is taken.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
        // Nothing fits any more: a new file cannot get a page.
        let probe = self.dir.join("probe");
        assert!(
            std::fs::write(&probe, [0u8; 1]).is_err(),
            "the tmpfs is not full"
        );
        let _ = std::fs::remove_file(probe);
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// The issue's full disk: an event append that failed with ENOSPC left a partial line, the next
/// alert's event was glued to it and unreadable though it was answered 200, and the failed
/// batch's jobs were queued without any record. Now the failed batch is answered 500 and takes
/// nothing with it, the log keeps whole lines only, `/healthz` says degraded until the log can
/// be written again, and then the daemon recovers by itself.
#[test]
fn a_full_event_log_loses_no_answered_record_and_queues_nothing_unrecorded() {
    let env = env(PAUSED);
    let Some(fs) = Tmpfs::mount(&env.state().join("events"), 1024 * 1024) else {
        return;
    };
    let d = Daemon::start(&env);
    for i in 0..3 {
        let (code, v) = d.alerts(vec![alert(&format!("Before{i}"), &format!("before-{i}"))]);
        assert_eq!(code, 200, "{v}");
    }
    let day_file = |state: &Path| {
        std::fs::read_dir(state.join("events"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .unwrap()
    };
    // The day file's last page must have room left, so that the failing write is a partial one.
    let mut extra = 0;
    while std::fs::metadata(day_file(&env.state())).unwrap().len() % 4096 == 0 {
        extra += 1;
        d.alerts(vec![alert(&format!("Pad{extra}"), &format!("pad-{extra}"))]);
    }
    let filler = fs.fill();
    let before = std::fs::metadata(day_file(&env.state())).unwrap().len();

    // 20 alerts, one batch: far more than fits in the last page.
    let storm: Vec<Value> = (0..20)
        .map(|i| alert(&format!("Storm{i}"), &format!("storm-{i}")))
        .collect();
    let (code, v) = d.alerts(storm.clone());
    assert_eq!(code, 500, "{v}");
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 20, "{v}");
    for dec in decisions {
        assert_eq!(dec["decision"], "error", "{dec}");
        let reason = dec["reason"].as_str().unwrap();
        assert!(reason.contains("could not be written"), "{reason}");
        assert!(reason.contains("No space left"), "{reason}");
    }
    // Nothing of the batch is left: not a byte of the log, not a job.
    assert_eq!(
        std::fs::metadata(day_file(&env.state())).unwrap().len(),
        before
    );
    all_events(&env.state());
    let queued = jobs(&env.state(), false);
    assert_eq!(queued.len(), 3 + extra, "{queued:#?}");
    assert!(
        queued.iter().all(|j| !j["signal"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("storm")),
        "a job was queued without its record: {queued:#?}"
    );
    let (code, h) = d.health();
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["reason"].as_str().unwrap().contains("event log"), "{h}");
    // Still full: still degraded, the batch still refused (a single event may still fit in
    // the last page, and would be taken).
    let (code, _) = d.alerts(storm.clone());
    assert_eq!(code, 500);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.health().0, 503);

    // Space again: the daemon recovers by itself, and records the outage.
    std::fs::remove_file(filler).unwrap();
    wait_for("/healthz 200", 10, || d.health().0 == 200);
    let recovered = events(&env.state(), "event_log_recovered");
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert!(recovered[0]["failed_writes"].as_u64().unwrap() >= 2);
    // The retried batch is queued as if the first attempt never happened.
    let (code, v) = d.alerts(storm);
    assert_eq!(code, 200, "{v}");
    for dec in v["decisions"].as_array().unwrap() {
        assert_eq!(dec["decision"], "enqueue", "{dec}");
    }
    let routing = events(&env.state(), "routing");
    assert_eq!(routing.len(), 3 + extra + 20);
    assert_eq!(jobs(&env.state(), false).len(), 3 + extra + 20);
    d.stop();
    drop(fs);
}

/// The whole state directory full: the degraded daemon cannot write its notification outbox
/// either, so the `daemon_degraded` notice goes to the target straight from memory, once.
#[test]
fn a_full_state_directory_still_tells_the_operator_once() {
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in hook.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = vec![0u8; 65536];
            let mut text = String::new();
            // Headers and a small JSON body arrive in a read or two on loopback.
            while !text.contains("\r\n\r\n{") || !text.trim_end().ends_with('}') {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            seen.lock().unwrap().push(text);
        }
    });
    let env = env(&format!(
        "{PAUSED}[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{url}\"\n\
         events = [\"daemon_degraded\"]\nretry_secs = 1\n"
    ));
    let Some(fs) = Tmpfs::mount(&env.state(), 2 * 1024 * 1024) else {
        return;
    };
    let d = Daemon::start(&env);
    let (code, v) = d.alerts(vec![alert("Before", "before")]);
    assert_eq!(code, 200, "{v}");
    // The day file's last page filled with one whole event line, so that no later event fits
    // (the recovery record included) until space is freed.
    let day = std::fs::read_dir(env.state().join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let len = std::fs::metadata(&day).unwrap().len() as usize;
    let slack = (4096 - len % 4096) % 4096;
    let frame = r#"{"time":"2026-01-01T00:00:00Z","kind":"pad","x":""}"#.len() + 1;
    if slack >= frame {
        let line = format!(
            "{{\"time\":\"2026-01-01T00:00:00Z\",\"kind\":\"pad\",\"x\":\"{}\"}}\n",
            "x".repeat(slack - frame)
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&day)
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
    }
    let filler = fs.fill();
    // Repeats of a queued alert merge into its job: no job file, only routing events to write.
    let storm: Vec<Value> = (0..20).map(|_| alert("Before", "before")).collect();
    let (code, v) = d.alerts(storm);
    assert_eq!(code, 500, "{v}");
    assert_eq!(d.health().0, 503, "{v}");
    let degraded = |all: &[String]| -> usize {
        all.iter()
            .filter(|t| t.contains("steward serve is degraded"))
            .count()
    };
    wait_for("the degraded notice", 20, || {
        degraded(&got.lock().unwrap()) >= 1
    });
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        degraded(&got.lock().unwrap()),
        1,
        "told once while degraded"
    );
    std::fs::remove_file(filler).unwrap();
    wait_for("/healthz 200", 10, || d.health().0 == 200);
    d.stop();
    drop(fs);
}

/// Every line log, not only the daemon's event log: an append that fails on a full disk leaves
/// the file as it was, and the next append after space came back is a whole line.
#[test]
fn every_line_log_is_cut_back_when_an_append_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("state"), 64 * 1024) else {
        return;
    };
    let ledger = steward::base::ledger::Ledger::open(&fs.dir).unwrap();
    let run = ledger.create_run("health-check").unwrap();
    let mut transcript = run.appender("transcript.jsonl").unwrap();
    let audit = run.file("audit.jsonl");
    let memory = fs.dir.join("effectiveness.jsonl");
    let line = json!({"pad": "x".repeat(300)});
    let text = line.to_string();
    for _ in 0..3 {
        transcript.line(&text).unwrap();
        steward::base::ledger::append_line(&audit, &text).unwrap();
        steward::base::ledger::append_json_line(&memory, &line).unwrap();
        ledger.event("probe", None, line.clone()).unwrap();
    }
    let filler = fs.fill();
    let logs = [
        run.file("transcript.jsonl"),
        audit.clone(),
        memory.clone(),
        std::fs::read_dir(fs.dir.join("events"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    ];
    let sizes = |logs: &[PathBuf]| -> Vec<u64> {
        logs.iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect()
    };
    let before = sizes(&logs);
    let big = json!({"pad": "y".repeat(20_000)});
    let big_text = big.to_string();
    assert!(transcript.line(&big_text).is_err());
    assert!(steward::base::ledger::append_line(&audit, &big_text).is_err());
    assert!(steward::base::ledger::append_json_line(&memory, &big).is_err());
    assert!(ledger.event("probe", None, big.clone()).is_err());
    assert_eq!(sizes(&logs), before, "a failed append left bytes behind");

    std::fs::remove_file(filler).unwrap();
    transcript.line(&text).unwrap();
    steward::base::ledger::append_line(&audit, &text).unwrap();
    steward::base::ledger::append_json_line(&memory, &line).unwrap();
    ledger.event("probe", None, line.clone()).unwrap();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert_eq!(text.lines().count(), 4, "{}", log.display());
        for l in text.lines() {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("{}: {e}: {l:.200}", log.display()));
        }
    }
    drop(transcript);
    drop(fs);
}

// ---------------------------------------------------------------------------------------------
// Pids are not proof of life.

/// An unrelated live process: what a dead steward's pid may belong to now.
struct Unrelated(Child);

impl Unrelated {
    fn start() -> Unrelated {
        Unrelated(Command::new("sleep").arg("300").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Unrelated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A job left `running` by a steward that died, its pid since reused by `pid`.
fn plant_running_job(state: &Path, pid: u32) -> String {
    let now = time::OffsetDateTime::now_utc();
    let job = steward::daemon::queue::Job {
        seq: 1,
        id: "deadbeef0001".into(),
        goal: "health-check".into(),
        vars: Default::default(),
        signal: steward::base::signal::Signal::timer("health-check"),
        state: steward::daemon::queue::JobState::Running,
        merged: 0,
        enqueued: now,
        updated: now,
        started: Some(now),
        finished: None,
        claimed_by: Some(pid),
        attempts: 1,
        run_id: None,
        outcome: None,
        reason: None,
        cost_usd: 0.0,
    };
    std::fs::create_dir_all(state.join("queue")).unwrap();
    std::fs::write(
        state.join("queue").join(job.file_name()),
        serde_json::to_string_pretty(&job).unwrap(),
    )
    .unwrap();
    job.id
}

/// The issue's stale `daemon.json` naming a reused live pid stopped `serve` from starting, and a
/// job `running` under a reused pid was never recovered and swallowed every repeat as `merged`.
/// Now the daemon's lock and the job's claim lock say who lives: serve starts, runs the
/// recovered job, and a repeat of its signal is queued and run; a second serve on the same state
/// directory is still refused, by the lock.
#[test]
fn a_reused_pid_neither_stops_serve_nor_keeps_a_dead_job() {
    let env = env("[serve]\npoll_secs = 1\n[router]\ncooldown_secs = 0\n");
    let other = Unrelated::start();
    std::fs::create_dir_all(env.state()).unwrap();
    std::fs::write(
        env.state().join("daemon.json"),
        json!({"pid": other.pid(), "listen": "127.0.0.1:1",
               "socket": env.state().join("daemon.sock")})
        .to_string(),
    )
    .unwrap();
    let job = plant_running_job(&env.state(), other.pid());

    let d = Daemon::start(&env);
    let started = events(&env.state(), "daemon_started");
    assert_eq!(started[0]["recovered"], json!([job]), "{started:#?}");
    let recovered = events(&env.state(), "job_recovered");
    assert_eq!(recovered[0]["pid"], other.pid(), "{recovered:#?}");
    wait_for("the recovered job's run", 30, || {
        jobs(&env.state(), true)
            .iter()
            .any(|j| j["id"] == job.as_str())
    });
    let done = jobs(&env.state(), true);
    assert_eq!(done[0]["state"], "done", "{done:#?}");
    assert_eq!(done[0]["outcome"], "no_action", "{done:#?}");

    // A repeat of its signal through a trigger: queued and run, not merged into a dead job.
    let out = env
        .steward()
        .args(["--json", "trigger", "timer", "health-check"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["daemon"]["handoff"], "daemon", "{v}");
    assert_eq!(v["daemon"]["decision"], "enqueue", "{v}");
    wait_for("the repeat's run", 30, || {
        jobs(&env.state(), true).len() == 2
    });

    // A second daemon on the same state directory is refused by the lock.
    let second = env
        .steward()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("daemon.lock"), "{said}");
    assert!(said.contains("another steward serve"), "{said}");
    d.stop();
}

/// Without a daemon, a trigger whose signal's job was left `running` by a dead process (its pid
/// reused) used to print "not run (merged)" for ever; now the job is queued again and run.
#[test]
fn an_inline_trigger_recovers_a_job_a_dead_process_left_running() {
    let env = env("[router]\ncooldown_secs = 0\n");
    let other = Unrelated::start();
    let job = plant_running_job(&env.state(), other.pid());
    // A stale daemon.json naming the live pid: no daemon holds the lock, so none is asked.
    std::fs::write(
        env.state().join("daemon.json"),
        json!({"pid": other.pid(), "listen": "127.0.0.1:1",
               "socket": env.state().join("daemon.sock")})
        .to_string(),
    )
    .unwrap();
    let out = env
        .steward()
        .args(["--json", "trigger", "timer", "health-check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{v}\n{stderr}");
    assert_eq!(v["routing"]["decision"], "merged", "{v}");
    assert_eq!(v["report"]["outcome"], "no_action", "{v}");
    assert!(!stderr.contains("did not take the signal"), "{stderr}");
    let done = jobs(&env.state(), true);
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0]["id"], job.as_str());
    assert_eq!(done[0]["state"], "done");
    assert_eq!(events(&env.state(), "job_recovered").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// A start after a crash.

/// A job file left truncated made the next start fail. Now it is moved to `queue/bad/` with an
/// event, the start goes on, and the alert it held is released from its cooldown: the repeat is
/// queued, not refused for work that no longer exists.
#[test]
fn a_truncated_job_file_is_moved_aside_and_its_alert_released() {
    let env = env(PAUSED);
    let d = Daemon::start(&env);
    let (code, v) = d.alerts(vec![alert("Disk", "disk-1")]);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["decisions"][0]["decision"], "enqueue");
    let job = v["decisions"][0]["job_id"].as_str().unwrap().to_string();
    // Cooldown holds a repeat back while the job is queued (merged), and would after.
    d.stop();
    let file = std::fs::read_dir(env.state().join("queue"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(&job))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 3]).unwrap();

    let d = Daemon::start(&env);
    assert!(!file.exists());
    let bad: Vec<PathBuf> = std::fs::read_dir(env.state().join("queue/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    let corrupt = events(&env.state(), "queue_corrupt_job");
    assert_eq!(corrupt.len(), 1);
    assert!(corrupt[0]["file"].as_str().unwrap().contains(&job));
    let released = events(&env.state(), "cooldown_released");
    assert_eq!(released.len(), 1, "{released:#?}");
    assert_eq!(released[0]["released"], true, "{released:#?}");
    assert_eq!(released[0]["subject"], "Disk/h1");
    let started = events(&env.state(), "daemon_started");
    assert_eq!(
        started[1]["quarantined"][0]["job"],
        job.as_str(),
        "{started:#?}"
    );
    let (code, v) = d.alerts(vec![alert("Disk", "disk-1")]);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["decisions"][0]["decision"], "enqueue", "{v}");
    d.stop();
}

/// Temp files of job writes a crash interrupted (between write and rename) are removed at the
/// next start, with an event; nothing else in the queue is touched.
#[test]
fn stale_temp_files_in_the_queue_are_removed_at_start() {
    let env = env(PAUSED);
    let queue = env.state().join("queue");
    std::fs::create_dir_all(queue.join("archive")).unwrap();
    std::fs::write(queue.join(".tmpAbC123"), "{\"seq\": 3, \"id\":").unwrap();
    std::fs::write(queue.join("archive").join(".tmpXyZ789"), "").unwrap();
    let d = Daemon::start(&env);
    assert!(!queue.join(".tmpAbC123").exists());
    assert!(!queue.join("archive").join(".tmpXyZ789").exists());
    let removed = events(&env.state(), "queue_tmp_removed");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert_eq!(removed[0]["files"].as_array().unwrap().len(), 2);
    let (code, v) = d.alerts(vec![alert("Disk", "disk-1")]);
    assert_eq!(code, 200, "{v}");
    d.stop();
}
