//! Notifications (`[[notify]]`, `steward notify`, the delivery pass of `steward serve`) against
//! real loopback receivers: a small HTTP server in this file that records every request (the
//! generic webhook, ntfy, Telegram, Slack and Matrix shapes are asserted on it) and Debian's
//! aiosmtpd for email. The record they are derived from is real: actions filed through the
//! approval store, runs through the real binary (and the real claude with the scripted model).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cli::{Env, ScriptedModel};
use serde_json::Value;

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A loopback HTTP server: records every request, answers 200 with `{"ok":true}`.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> Receiver {
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                if let Some(req) = read_request(conn) {
                    log.lock().unwrap().push(req);
                }
            }
        });
        Receiver { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(mut conn: TcpStream) -> Option<Req> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let answer = b"{\"ok\":true}";
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    let _ = conn.write_all(answer);
    Some(Req {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// aiosmtpd writing each mail into a maildir; killed on drop.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Smtp {
    fn start(python: &Path, dir: &Path) -> Smtp {
        let port = free_port();
        let maildir = dir.join("maildir");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_for("aiosmtpd to listen", 20, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Smtp {
            child,
            port,
            maildir,
        }
    }

    /// Every mail received, as text (quoted-printable decoded where it matters here: soft line
    /// breaks and `=3D`).
    fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

const PUBLIC: &str = "https://steward.example.org";

/// Files a pending action (queue mode) as a run's policy would.
fn file_action(state: &Path, argv: &[&str]) -> String {
    let store = steward::engine::approval::Store::open(state).unwrap();
    let filed = store
        .file(steward::engine::approval::Proposal {
            subject: "nginx.service".into(),
            signal_fingerprint: None,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            rationale: "nginx is down".into(),
            checks: vec![],
            state_fingerprint: "fp".into(),
            goal: "incident".into(),
            run_id: None,
            rule: "systemctl restart".into(),
            ttl: Duration::from_secs(3600),
            executor: steward::engine::approval::Executor::Steward,
        })
        .unwrap();
    filed.action.id
}

fn run(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// One target of each HTTP kind at `http`, email at `smtp`; the secrets in files.
fn all_kinds(dir: &Path, http: &str, smtp_port: u16) -> String {
    let secret = |name: &str, value: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        p.display().to_string()
    };
    let hook_token = secret("hook-token", "hook-secret-0123456789");
    let ntfy_token = secret("ntfy-token", "tk_ntfysecret0123456789");
    let bot = secret("bot-token", "123456:ABCdefGhIJKlmnoPQRstuvWXyz");
    let matrix = secret("matrix-token", "syt_matrixsecret_0123456789");
    let slack_url = secret(
        "slack-url",
        &format!("{http}/services/T000/B000/XXXXSLACKSECRET"),
    );
    format!(
        r#"
[[notify]]
name = "hook"
kind = "webhook"
url = "{http}/steward"
token_file = "{hook_token}"

[[notify]]
name = "phone"
kind = "ntfy"
url = "{http}"
topic = "steward-alerts"
tags = ["homelab"]
token_file = "{ntfy_token}"

[[notify]]
name = "tg"
kind = "telegram"
url = "{http}"
token_file = "{bot}"
chat_id = "-1001234"

[[notify]]
name = "chat"
kind = "slack"
url_file = "{slack_url}"

[[notify]]
name = "mx"
kind = "matrix"
url = "{http}"
room_id = "!ops:example.org"
token_file = "{matrix}"

[[notify]]
name = "mail"
kind = "email"
url = "smtp://127.0.0.1:{smtp_port}"
starttls = false
from = "steward@example.org"
to = ["ops@example.org"]
"#
    )
}

/// Each kind's request shape; the same pending action is told once per target however often
/// the pass runs; `notify test` reports per target and fails when one fails.
#[test]
fn every_kind_speaks_its_protocol_and_an_action_is_told_once() {
    let Some(python) = common::require::aiosmtpd() else {
        return;
    };
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&python, tmp.path());
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\npublic_url = \"{PUBLIC}/\"\n{}",
            all_kinds(tmp.path(), &rx.url(), smtp.port)
        ),
    );
    let id = file_action(&env.state(), &["systemctl", "restart", "nginx.service"]);
    let (code, text) = run(env.steward().args(["notify", "flush"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("queued 6, delivered 6"), "{text}");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 5, "{reqs:#?}");
    let by_path = |p: &str| {
        reqs.iter()
            .find(|r| r.path.starts_with(p))
            .unwrap_or_else(|| panic!("no request to {p}: {reqs:#?}"))
            .clone()
    };
    let host = host();
    let command = format!("steward actions approve {id}");
    let link = format!("{PUBLIC}/approvals?action={id}");

    // The generic webhook: version 1 of the documented schema, bearer token.
    let hook = by_path("/steward");
    assert_eq!(hook.method, "POST");
    assert_eq!(
        hook.header("authorization"),
        Some("Bearer hook-secret-0123456789")
    );
    let v = hook.json();
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["event"], "action_pending");
    assert_eq!(v["severity"], "warning");
    assert_eq!(v["host"], host.as_str());
    assert_eq!(v["command"], command.as_str());
    assert_eq!(v["link"], link.as_str());
    assert_eq!(v["action"], id.as_str());
    assert_eq!(v["id"], format!("action_pending-{id}"));
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.contains("systemctl restart nginx.service") && !summary.contains('\n'),
        "{summary}"
    );

    // ntfy: JSON publishing to the server root, with the topic, priority, tags, click and a
    // view action to the page.
    let ntfy = reqs.iter().find(|r| r.path == "/").expect("ntfy request");
    assert_eq!(ntfy.method, "POST");
    assert_eq!(
        ntfy.header("authorization"),
        Some("Bearer tk_ntfysecret0123456789")
    );
    let n = ntfy.json();
    assert_eq!(n["topic"], "steward-alerts");
    assert_eq!(n["priority"], 4);
    assert_eq!(n["tags"], serde_json::json!(["homelab", "action_pending"]));
    assert_eq!(n["click"], link.as_str());
    assert_eq!(n["actions"][0]["action"], "view");
    assert_eq!(n["actions"][0]["url"], link.as_str());
    assert!(n["title"].as_str().unwrap().contains(&host), "{n}");
    assert!(n["message"].as_str().unwrap().contains(&command), "{n}");

    // Telegram: sendMessage with the bot token in the path, chat_id and text.
    let tg = by_path("/bot");
    assert_eq!(tg.method, "POST");
    assert_eq!(tg.path, "/bot123456:ABCdefGhIJKlmnoPQRstuvWXyz/sendMessage");
    let t = tg.json();
    assert_eq!(t["chat_id"], "-1001234");
    let text = t["text"].as_str().unwrap();
    for want in [host.as_str(), command.as_str(), link.as_str()] {
        assert!(text.contains(want), "{want} not in {text}");
    }

    // Slack-compatible: POST to the secret URL, {text}.
    let slack = by_path("/services/T000/B000/XXXXSLACKSECRET");
    assert_eq!(slack.method, "POST");
    assert!(
        slack.json()["text"].as_str().unwrap().contains(&command),
        "{}",
        slack.body
    );

    // Matrix: PUT m.room.message with a transaction id, bearer token, m.text body.
    let mx = by_path("/_matrix/client/v3/rooms/");
    assert_eq!(mx.method, "PUT");
    assert!(
        mx.path.starts_with(
            "/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/steward-mx-action_pending-"
        ),
        "{}",
        mx.path
    );
    assert_eq!(
        mx.header("authorization"),
        Some("Bearer syt_matrixsecret_0123456789")
    );
    let m = mx.json();
    assert_eq!(m["msgtype"], "m.text");
    assert!(m["body"].as_str().unwrap().contains(&link), "{m}");

    // No secret of any target in any body.
    for r in &reqs {
        for s in [
            "hook-secret",
            "tk_ntfysecret",
            "ABCdefGhIJK",
            "syt_matrix",
            "SLACKSECRET",
        ] {
            assert!(!r.body.contains(s), "{s} in the body to {}", r.path);
        }
    }

    // Email: one mail with the title as subject and the command and link in the body.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: ops@example.org"), "{}", mails[0]);
    assert!(
        mails[0].contains(&format!("[steward@{host}]")),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains(&command) && mails[0].contains(&link),
        "{}",
        mails[0]
    );

    // Dedup: the same action again (proposed a second time, more passes) is not told again.
    file_action(&env.state(), &["systemctl", "restart", "nginx.service"]);
    for _ in 0..2 {
        let (code, text) = run(env.steward().args(["notify", "flush"]));
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("queued 0, delivered 0"), "{text}");
    }
    assert_eq!(rx.requests().len(), 5);
    assert_eq!(smtp.mails().len(), 1);
    let done = env.state().join("notify/done/hook");
    let rec: Value = serde_json::from_str(
        &std::fs::read_to_string(done.join(format!("action_pending-{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["state"], "delivered");
    assert_eq!(rec["attempts"][0]["ok"], true);
    assert_eq!(rec["attempts"][0]["status"], 200);

    // `notify test`: every target delivered; one target alone.
    let (code, text) = run(env.steward().args(["notify", "test"]));
    assert_eq!(code, Some(0), "{text}");
    for t in ["hook", "phone", "tg", "chat", "mx", "mail"] {
        assert!(text.contains(&format!("{t}: delivered")), "{text}");
    }
    let (code, text) = run(env.steward().args(["notify", "test", "mx"]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(smtp.mails().len(), 2);
    // STARTTLS required (the default) against a server that offers none: refused, not sent
    // in plain text, and `notify test` exits 1 naming the target.
    let tls = tmp.path().join("tls.toml");
    std::fs::write(
        &tls,
        format!(
            "state_dir = \"{}\"\n[[notify]]\nname = \"mail\"\nkind = \"email\"\n\
             url = \"smtp://127.0.0.1:{}\"\nfrom = \"steward@example.org\"\nto = [\"ops@example.org\"]\n",
            tmp.path().join("state-tls").display(),
            smtp.port
        ),
    )
    .unwrap();
    let (code, text) = run(Command::new(common::cli::steward_bin())
        .arg("--config")
        .arg(&tls)
        .args(["notify", "test"]));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("mail: FAILED") && text.to_lowercase().contains("tls"),
        "{text}"
    );
    assert_eq!(smtp.mails().len(), 2);
}

/// A target that is down: attempts are recorded with a growing wait, a run through the daemon
/// takes no longer while they go on, the daemon stops with the message undelivered, and the
/// next start delivers it once the receiver is up.
#[test]
fn a_down_target_is_retried_beside_runs_and_a_restart_delivers_once() {
    // A listener that never answers: each attempt waits for its timeout.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hanging.local_addr().unwrap().port();
    // A second target that answers: served beside the hanging one, not after it.
    let up = Receiver::start();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\npoll_secs = 1\n[router]\ncooldown_secs = 0\n\n\
             [[notify]]\nname = \"down\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             retry_secs = 1\ntimeout_secs = 2\n\n\
             [[notify]]\nname = \"up\"\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
            up.url()
        ),
    );
    let d = serve::Daemon::start(&env);
    let run_ms = |n: usize| -> u64 {
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
        wait_for("the run", 30, || serve::finished(&env.state()).len() == n);
        let mut all = serve::finished(&env.state());
        all.sort_by_key(|r| r["started"].as_str().unwrap().to_string());
        all.last().unwrap()["duration_ms"].as_u64().unwrap()
    };
    // Without anything to deliver, then while the dead target's attempts hang.
    let quiet = run_ms(1);
    let id = file_action(&env.state(), &["systemctl", "restart", "nginx.service"]);
    let pending = env
        .state()
        .join(format!("notify/outbox/down/action_pending-{id}.json"));
    wait_for("the first attempt", 20, || attempts(&pending).len() == 1);
    let delivered = env
        .state()
        .join(format!("notify/done/up/action_pending-{id}.json"));
    wait_for("the other target's delivery", 20, || delivered.exists());
    let stamp = |v: &Value| {
        time::OffsetDateTime::parse(
            v["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let up_at = stamp(&attempts(&delivered)[0]);
    let down_at = stamp(&attempts(&pending)[0]);
    assert!(
        up_at < down_at + time::Duration::seconds(2),
        "the answering target waited for the hanging one: {up_at} vs {down_at}"
    );
    assert_eq!(up.requests().len(), 1);
    let busy = run_ms(2);
    eprintln!("run wall time: {quiet} ms with nothing to deliver, {busy} ms while the target hung");
    assert!(
        busy < quiet + 1000,
        "a run took {busy} ms while the target was down, {quiet} ms before"
    );
    wait_for("a third attempt", 30, || attempts(&pending).len() >= 3);
    let a = attempts(&pending);
    let at = |i: usize| {
        time::OffsetDateTime::parse(
            a[i]["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    // Each attempt hangs 2 s; then 1 s, then 2 s of backoff.
    assert!((at(1) - at(0)).as_seconds_f64() >= 2.9, "{a:#?}");
    assert!((at(2) - at(1)).as_seconds_f64() >= 3.9, "{a:#?}");
    assert!(
        a.iter().all(|x| x["ok"] == false && x["error"].is_string()),
        "{a:#?}"
    );
    let (_, status) = run(env.steward().args(["notify", "status"]));
    assert!(
        status.contains("down") && status.contains("pending"),
        "{status}"
    );
    d.stop();
    // Up again on the same port: the next start delivers it, once.
    drop(hanging);
    let rx = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let d = serve::Daemon::start(&env);
    let done = env
        .state()
        .join(format!("notify/done/down/action_pending-{id}.json"));
    wait_for("the delivery", 20, || done.exists());
    std::thread::sleep(Duration::from_secs(3));
    d.stop();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0].json()["action"], id.as_str());
    assert!(!pending.exists());
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&done).unwrap()).unwrap();
    assert_eq!(rec["state"], "delivered");
    let a = rec["attempts"].as_array().unwrap();
    assert!(a.len() >= 4 && a.last().unwrap()["ok"] == true, "{a:#?}");
}

fn attempts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["attempts"].as_array().cloned())
        .unwrap_or_default()
}

/// The real flow: a run through the real claude whose verdict needs a human ends escalated,
/// and the webhook is told what happened, on which host, the command and the page, without the
/// secret the verdict carried.
#[test]
fn a_real_escalation_reaches_the_target_with_host_command_and_link() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(
        tmp.path(),
        r#"
[[turn]]
verdict = { status = "needs_attention", summary = "disk almost full; saw token sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#,
    );
    let env = Env::new(
        &claude,
        &model.url,
        &format!(
            "#--tables--\n[serve]\npublic_url = \"{PUBLIC}\"\n\n[[notify]]\nname = \"hook\"\n\
             kind = \"webhook\"\nurl = \"{}/hook\"\nevents = [\"escalation\"]\n\n\
             [[notify]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{}/pager\"\n\
             min_severity = \"critical\"\nevents = [\"run_failed\"]\n",
            rx.url(),
            rx.url()
        ),
    );
    let out = env
        .steward()
        .args(["--json", "run", "health-check", "--force-model"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(6), "{report:#}");
    let run_id = report["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (code, text) = run(env.steward().args(["notify", "flush"]));
        assert_eq!(code, Some(0), "{text}");
    }
    let reqs = rx.requests();
    // Once, and only to the target that asked for escalations.
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0].path, "/hook");
    let v = reqs[0].json();
    assert_eq!(v["event"], "escalation");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["host"], host().as_str());
    assert_eq!(v["run"], run_id.as_str());
    assert_eq!(v["command"], format!("steward runs show {run_id}"));
    assert_eq!(v["link"], format!("{PUBLIC}/runs/{run_id}"));
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.contains("escalated"), "{summary}");
    assert!(
        !reqs[0].body.contains("abcdefghijklmnopqrstuvwxyz0123"),
        "{}",
        reqs[0].body
    );
}

/// A secret in the config text, an unknown event or kind, and a URL with a password are
/// refused, naming the table and the field.
/// A job that cannot finish (the host lock is held by someone else) makes the queue stuck
/// after `serve.stuck_secs`: one `daemon_degraded` message, told once.
#[test]
fn a_stuck_queue_is_told_once() {
    let Some(flock) = common::require::tool("flock") else {
        return;
    };
    let rx = Receiver::start();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\npoll_secs = 1\nstuck_secs = 1\n\n\
             [[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{}/hook\"\n\
             events = [\"daemon_degraded\"]\n",
            rx.url()
        ),
    );
    std::fs::create_dir_all(env.state()).unwrap();
    // `-o`: the lock stays with flock itself, so killing it frees the lock.
    let mut holder = Command::new(flock)
        .arg("-o")
        .arg(env.state().join("lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let d = serve::Daemon::start(&env);
    let out = env
        .steward()
        .args(["--json", "trigger", "timer", "health-check", "--wait", "0"])
        .output()
        .unwrap();
    let stuck = |r: &Req| r.json()["event"] == "daemon_degraded";
    wait_for("the stuck queue's message", 30, || {
        rx.requests().iter().any(stuck)
    });
    std::thread::sleep(Duration::from_secs(3));
    let _ = holder.kill();
    let _ = holder.wait();
    d.stop();
    let told: Vec<Value> = rx
        .requests()
        .iter()
        .filter(|r| stuck(r))
        .map(Req::json)
        .collect();
    assert_eq!(told.len(), 1, "told once: {told:#?} (trigger: {out:?})");
    let summary = told[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("queue is stuck") && summary.contains("health-check"),
        "{summary}"
    );
}

#[test]
fn config_errors_name_the_table_and_field() {
    let env = Env::new(Path::new("/nonexistent/claude"), "http://127.0.0.1:9", "");
    let cases = [
        (
            "[[notify]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\n\n[[notify]]\nname = \"tg\"\nkind = \"telegram\"\nchat_id = \"1\"\ntoken = \"123:abc\"\n",
            "notify[1].token",
            "token_file",
        ),
        (
            "[[notify]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"http://x\"\nevents = [\"escalation\", \"coffee\"]\n",
            "notify[0].events",
            "unknown event `coffee`",
        ),
        (
            "[[notify]]\nname = \"a\"\nkind = \"pager\"\nurl = \"http://x\"\n",
            "notify[0].kind",
            "unknown kind `pager`",
        ),
        (
            "[[notify]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://u:hunter2@x/\"\n",
            "notify[0].url",
            "carries a secret",
        ),
    ];
    for (table, key, message) in cases {
        let text = std::fs::read_to_string(&env.config).unwrap();
        let path = env.dir.path().join("bad.toml");
        std::fs::write(&path, format!("{text}\n{table}")).unwrap();
        let (code, out) = run(Command::new(common::cli::steward_bin())
            .arg("--config")
            .arg(&path)
            .args(["config", "show"]));
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains(key) && out.contains(message), "{key}: {out}");
        assert!(out.contains("bad.toml:"), "{out}");
        assert!(
            !out.contains("hunter2") && !out.contains("123:abc"),
            "{out}"
        );
    }
}

/// `steward serve` as a process, and the runs it finished.
mod serve {
    use super::*;

    pub use crate::common::serve::Serve as Daemon;

    /// `result.json` of every finished run.
    pub fn finished(state: &Path) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(state.join("runs")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("result.json")).ok())
            .map(|t| serde_json::from_str(&t).unwrap())
            .collect()
    }
}
