//! The web page served by `steward serve`, driven as a person drives it: headless Chromium over
//! WebDriver (the W3C JSON protocol, spoken with reqwest), the real daemon, a run of the real
//! claude against the scripted model that filed a pending action. Log in through the form,
//! open the run, approve through the confirmation, see the executor's outcome appear without a
//! reload; a cross-site POST is refused from another loopback origin in the browser and with a
//! foreign `Origin`/`Sec-Fetch-Site` from reqwest; the agent's process tree has no route to an
//! approval; a wrong token is refused and then rate limited. Screenshots of the pages are kept
//! under `target/test-artefacts/web/`.

use crate::common;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use common::serve::Serve;
use serde_json::{Value, json};

pub(crate) const UI_TOKEN: &str = "ui-token-0123456789abcdef0123456789abcdef";
const WEBHOOK_TOKEN: &str = "webhook-token-0123456789abcdef";

/// An env whose page is on (`serve.ui_token_file`), the worker paused, and a goal whose agent's
/// `touch MARKER` needs a human's approval. Its check takes a few seconds, so that approving
/// (which re-runs it before and after the command) finishes well after the page has loaded.
fn web_env(claude: &Path) -> Env {
    let env = Env::new(claude, "http://127.0.0.1:9", "");
    let ui_token = env.dir.path().join("ui-token");
    std::fs::write(&ui_token, format!("{UI_TOKEN}\n")).unwrap();
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("restart.md"),
        "+++\ndescription = \"restart what is down, with a human's approval\"\n\
         tools = [\"Bash\"]\nmax_turns = 6\n\n[checks]\ninvariants = [\"slow\"]\n\n[policy]\n\
         approve = [\"touch FILE\"]\nread = [\"{workspace}\"]\n+++\nRestart what is down.\n",
    )
    .unwrap();
    let checks = env.dir.path().join("context").join("checks.toml");
    let mut text = std::fs::read_to_string(&checks).unwrap();
    text.push_str(
        "\n[[check]]\nname = \"slow\"\ndescription = \"takes a while\"\nkind = \"command\"\n\
         argv = [\"sleep\", \"3\"]\n",
    );
    std::fs::write(&checks, text).unwrap();
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "goals_dir = \"{}\"\n{config}\n[serve]\npaused = true\nui_token_file = \"{}\"\n",
            goals.display(),
            ui_token.display()
        ),
    )
    .unwrap();
    env
}

fn marker(env: &Env) -> PathBuf {
    env.dir.path().join("workspace").join("restarted")
}

fn scenario(marker: &Path) -> String {
    format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch {}", description = "the service is down: restart it" }}

[[turn]]
verdict = {{ status = "needs_attention", summary = "a restart waits for approval", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
        marker.display()
    )
}

fn point_at(env: &Env, model: &ScriptedModel) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace("http://127.0.0.1:9", &model.url)).unwrap();
}

fn steward_json(env: &Env, args: &[&str]) -> Value {
    let out = env.steward().arg("--json").args(args).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
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

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Standard base64 (the screenshot endpoint's PNG).
fn base64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// chromedriver and one headless Chromium session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,1100",
                    format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res:#}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        let v = self
            .call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
        assert!(v.is_null(), "navigate to {url}: {v:#}");
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = v
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_string);
        match id {
            Some(id) => id,
            None => panic!("no element {css}: {v:#}\n{}", self.text().await),
        }
    }

    async fn click(&self, css: &str) {
        let el = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn text(&self) -> String {
        self.js("return document.body ? document.body.innerText : ''")
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn screenshot(&self, name: &str) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64(v.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(artefacts().join(format!("{name}.png")), png).unwrap();
    }

    /// Waits until `script` returns true.
    async fn wait_js(&self, what: &str, script: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.js(script).await != json!(true) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the page says:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A page on another loopback origin that posts a form to the daemon as soon as it loads;
/// served until the returned flag is set.
fn foreign_page(
    target: &str,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let html = format!(
        "<!doctype html><html><body><form id=f method=post action=\"{target}\">\
         <input name=csrf value=guessed><input name=reason value=forged></form>\
         <script>document.getElementById('f').submit()</script></body></html>"
    );
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    (url, done, handle)
}

/// The session cookie and CSRF token of a login made with reqwest.
pub(crate) async fn login(http: &reqwest::Client, url: &str) -> (String, String) {
    let res = http
        .post(format!("{url}/login"))
        .header("Origin", url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={UI_TOKEN}&next=%2Fapprovals"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http: no Secure attribute ({set})"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{url}/approvals"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field:\n{page}"))
        .to_string();
    (cookie, csrf)
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Issue 13 item 2: log in, open the run, approve its action through the confirmation and see
/// the executor's outcome appear without a reload; a cross-site POST from another loopback
/// origin is refused although the browser sends the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_from_the_page_and_sees_the_outcome_live() {
    let Some(claude) = claude_bin() else { return };
    let Some((chromium, chromedriver)) = common::require::chromium() else {
        return;
    };
    let env = web_env(&claude);
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario(&marker(&env)));
    point_at(&env, &model);
    // The run files the pending action (steward's hook asks for approval of `touch`).
    let report = steward_json(&env, &["run", "restart"]);
    let run_id = report["id"].as_str().unwrap().to_string();
    let filed = report["actions_filed"].as_array().unwrap().clone();
    assert_eq!(filed.len(), 1, "{report:#}");
    let action = filed[0].as_str().unwrap().to_string();
    assert!(!marker(&env).exists());
    let daemon = Serve::start(&env);
    let url = daemon.url.clone();
    let b = Browser::start(&chromium, &chromedriver).await;

    // Not logged in: the login page, with where to go next.
    b.goto(&format!("{url}/approvals")).await;
    assert!(
        b.url().await.contains("/login?next=/approvals"),
        "{}",
        b.url().await
    );
    b.screenshot("login").await;
    b.type_into("#token", "not-the-token-at-all").await;
    b.click("#login").await;
    // A click does not wait for the answer: wait for the page it brings.
    b.wait_js(
        "the refused login",
        "return document.getElementById('login-error') !== null",
        20,
    )
    .await;
    assert!(b.text().await.contains("wrong token"), "{}", b.text().await);
    b.type_into("#token", UI_TOKEN).await;
    b.click("#login").await;
    b.wait_js(
        "the approvals page",
        "return document.title.indexOf('Approvals') === 0",
        20,
    )
    .await;
    assert!(b.url().await.ends_with("/approvals"), "{}", b.url().await);
    let page = b.text().await;
    assert!(page.contains(&action) && page.contains("touch"), "{page}");
    b.screenshot("approvals").await;

    // The run as an incident report: the tool call, its decision, the action it filed.
    b.goto(&format!("{url}/runs/{run_id}")).await;
    let page = b.text().await;
    assert!(page.contains("touch") && page.contains("approve"), "{page}");
    assert!(page.contains(&action) && page.contains("slow"), "{page}");
    b.screenshot("run").await;
    b.goto(&format!("{url}/")).await;
    b.screenshot("runs").await;

    // Approve: first a confirmation showing exactly what runs; only its form approves.
    b.goto(&format!("{url}/approvals?action={action}")).await;
    b.click(&format!("#approve-{action}")).await;
    b.wait_js(
        "the confirmation",
        "return document.title.indexOf('Confirm') === 0",
        20,
    )
    .await;
    let plan = b.text().await;
    assert!(
        plan.contains("Approve action") && plan.contains("touch"),
        "{plan}"
    );
    assert!(plan.contains("steward's executor"), "{plan}");
    assert_eq!(
        steward_json(&env, &["actions", "show", &action])["state"],
        "pending",
        "the first POST only shows the plan"
    );
    b.screenshot("confirm").await;
    b.click("#confirm").await;
    b.wait_js(
        "the approvals page",
        "return document.title.indexOf('Approvals') === 0",
        20,
    )
    .await;
    assert!(
        b.url()
            .await
            .contains(&format!("/approvals?action={action}"))
    );
    // A marker set now survives only if the page is never reloaded.
    let before = b
        .js("window.__stewardMarker = 42; return document.getElementById('action-execution') === null")
        .await;
    assert_eq!(
        before,
        json!(true),
        "the outcome was there before the page could show it live"
    );
    b.wait_js(
        "the executor's outcome",
        "return document.getElementById('action-execution') !== null",
        90,
    )
    .await;
    assert_eq!(
        b.js("return window.__stewardMarker").await,
        json!(42),
        "the page reloaded"
    );
    assert_eq!(b.js("return document.body.dataset.live").await, json!("on"));
    let page = b.text().await;
    assert!(page.contains("Executed: exit 0"), "{page}");
    assert!(marker(&env).exists(), "the approved command did not run");
    let record = steward_json(&env, &["actions", "show", &action]);
    assert_eq!(record["state"], "done", "{record:#}");
    let by = record["decision"]["by"].as_str().unwrap();
    assert!(by.starts_with("web:") && by.len() == 12, "{by}");

    // The run's page, drawn (and kept) before the approval, shows the action's new state and
    // this session's CSRF token: nothing stale, nothing of another session.
    let logout_csrf = "return document.querySelector('form.logout input[name=csrf]').value";
    let session_csrf = b.js(logout_csrf).await;
    b.goto(&format!("{url}/runs/{run_id}")).await;
    let shown = b
        .js(&format!(
            "return document.querySelector('[data-action=\"{action}\"]').textContent"
        ))
        .await;
    assert_eq!(shown, json!("done"), "the run page is stale");
    assert_eq!(b.js(logout_csrf).await, session_csrf);

    // Another loopback origin posts to the page: the browser sends the (SameSite=Strict)
    // cookie, since it is the same site, but not the same origin: refused and recorded.
    let (foreign, done, server) = foreign_page(&format!("{url}/logout"));
    b.goto(&foreign).await;
    b.wait_js(
        "the refusal",
        "return document.body.innerText.indexOf('Refused') >= 0 || document.body.innerText.indexOf('not logged in') >= 0",
        20,
    )
    .await;
    let page = b.text().await;
    assert!(page.contains("Sec-Fetch-Site is same-site"), "{page}");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
    let refused = events(&env.state(), "ui_refused");
    assert!(
        refused.iter().any(|e| e["request"] == "logout"),
        "{refused:#?}"
    );
    // Still logged in: the forged logout did nothing.
    b.goto(&format!("{url}/approvals")).await;
    assert!(b.url().await.ends_with("/approvals"), "{}", b.url().await);
}

/// CSRF from outside a browser, the agent's process tree, security headers, and the login rate
/// limit. No model needed: the page alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_the_agent_and_token_guessers_are_refused() {
    let env = web_env(Path::new("/nonexistent/claude"));
    let daemon = Serve::start(&env);
    let url = daemon.url.clone();
    let http = no_redirects();

    // Headers on every page.
    let res = http.get(format!("{url}/login")).send().await.unwrap();
    let h = res.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    // Assets are cached for long.
    let css = http
        .get(format!("{url}/assets/style.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    // A page without a session redirects to the login, only to a local path.
    let res = http.get(format!("{url}/runs/x")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=/runs/x");

    let (cookie, csrf) = login(&http, &url).await;
    let post = |path: &str, origin: Option<&str>, site: Option<&str>, body: String| {
        let mut req = http
            .post(format!("{url}{path}"))
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        if let Some(s) = site {
            req = req.header("Sec-Fetch-Site", s);
        }
        req.send()
    };
    let good = format!("csrf={csrf}&reason=no");
    for (origin, site, body, why) in [
        (
            Some("http://evil.example"),
            None,
            good.clone(),
            "evil.example is not",
        ),
        (
            Some(url.as_str()),
            Some("cross-site"),
            good.clone(),
            "Sec-Fetch-Site is cross-site",
        ),
        (None, None, good.clone(), "no Origin header"),
        (
            Some(url.as_str()),
            None,
            "csrf=wrong&reason=no".to_string(),
            "CSRF token",
        ),
    ] {
        let res = post("/actions/nope/reject", origin, site, body)
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{origin:?} {site:?}");
        let text = res.text().await.unwrap();
        assert!(text.contains(why), "{why}: {text}");
    }

    // A process that descends from a run's agent (it carries the run's private HOME) is refused
    // with every credential right.
    let agent_home = env.state().join("tmp").join("claude-home-test");
    let out = Command::new("curl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &agent_home)
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args([
            "-H",
            &format!("Cookie: {cookie}"),
            "-H",
            &format!("Origin: {url}"),
        ])
        .args(["--data", &good, &format!("{url}/actions/nope/reject")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("403"), "{text}");
    assert!(
        text.contains("descends from a run&#x27;s agent")
            || text.contains("descends from a run's agent"),
        "{text}"
    );
    // The same request from outside the agent's tree gets past the guard (to the store).
    let res = post("/actions/nope/reject", Some(&url), None, good.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "{:?}", res.text().await);
    let refused = events(&env.state(), "ui_refused");
    assert!(
        refused
            .iter()
            .any(|e| e["reason"].as_str().unwrap().contains("agent")),
        "{refused:#?}"
    );

    // A reject without a reason is refused; logout works with everything right.
    let res = post(
        "/actions/nope/reject",
        Some(&url),
        None,
        format!("csrf={csrf}"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    let res = post(
        "/logout",
        Some(&url),
        Some("same-origin"),
        format!("csrf={csrf}"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 303);
    let res = http
        .get(format!("{url}/approvals"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the session ended");

    // Wrong tokens: refused, then rate limited with Retry-After; recorded without the token.
    let guess = "guessed-token-that-is-wrong-0123456789";
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let res = http
            .post(format!("{url}/login"))
            .header("Origin", &url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={guess}"))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            let after: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&after), "{after}");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // Limited: even the right token is not compared now.
    let res = http
        .post(format!("{url}/login"))
        .header("Origin", &url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={UI_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let failed = events(&env.state(), "ui_login_failed");
    assert_eq!(failed.len(), 7, "{failed:#?}");
    let log = serde_json::to_string(&failed).unwrap();
    assert!(!log.contains(guess) && !log.contains(UI_TOKEN), "{log}");
}

/// The page stays off without a token, and a bad token stops the start naming its file.
#[test]
fn the_page_is_off_without_a_token_and_a_bad_one_stops_the_start() {
    let env = Env::new(Path::new("/nonexistent/claude"), "http://127.0.0.1:9", "");
    let daemon = Serve::start(&env);
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/login", daemon.url),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    drop(daemon);

    let short = env.dir.path().join("short-ui-token");
    std::fs::write(&short, "too-short\n").unwrap();
    let webhook = env.dir.path().join("webhook-token");
    std::fs::write(&webhook, format!("{WEBHOOK_TOKEN}padpadpad\n")).unwrap();
    let same = env.dir.path().join("same-ui-token");
    std::fs::write(&same, format!("{WEBHOOK_TOKEN}padpadpad\n")).unwrap();
    for (file, why) in [
        (&short, "at least 32 bytes"),
        (&same, "equals a webhook token"),
    ] {
        let mut child = env
            .steward()
            .env("STEWARD_UI_TOKEN_FILE", file)
            .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token-file"])
            .arg(&webhook)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve started with a bad UI token ({why})");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            err.contains(why) && err.contains(&file.display().to_string()),
            "{err}"
        );
    }
}

/// The UI token file is a secret to every run's agent, even inside its read roots: reading it
/// with the Read tool or `cat` is denied and audited, and the token never reaches the model.
#[test]
fn the_agent_cannot_read_the_ui_token_file() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = web_env(&claude);
    // In the workspace, where the goal may read, under a name no bundled secret pattern has.
    let ws = env.dir.path().join("workspace");
    let token_file = ws.join("page-login");
    std::fs::write(&token_file, format!("{UI_TOKEN}\n")).unwrap();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let old = env.dir.path().join("ui-token");
    std::fs::write(
        &env.config,
        text.replace(
            &old.display().to_string(),
            &token_file.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::write(
        env.dir.path().join("goals").join("look.md"),
        "+++\ndescription = \"look around\"\ntools = [\"Bash\", \"Read\"]\nmax_turns = 6\n\n\
         [policy]\nallow = [\"cat FILE\"]\nread = [\"{workspace}\"]\n+++\nLook around.\n",
    )
    .unwrap();
    let f = token_file.display().to_string();
    let scenario = format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Read"
id = "toolu_read_token"
input = {{ file_path = "{f}" }}
[[turn.tool_use]]
name = "Bash"
id = "toolu_cat_token"
input = {{ command = "cat {f}", description = "read it" }}

[[turn]]
verdict = {{ status = "ok", summary = "looked", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#
    );
    let model = ScriptedModel::start(tmp.path(), &scenario);
    point_at(&env, &model);
    let report = steward_json(&env, &["run", "look", "--force-model"]);
    let id = report["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{report:#}"));
    let audit = std::fs::read_to_string(env.run_dir(id).join("audit.jsonl")).unwrap();
    for call in ["toolu_read_token", "toolu_cat_token"] {
        let entry: Value = audit
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|e| e["tool_use_id"] == call)
            .unwrap_or_else(|| panic!("{call} not audited:\n{audit}"));
        assert_eq!(entry["decision"], "deny", "{call}: {entry:#}");
        assert!(
            entry["reason"].as_str().unwrap().contains("secret"),
            "{call}: {entry:#}"
        );
    }
    assert!(
        !model.requests().to_string().contains(UI_TOKEN),
        "the UI token reached the model"
    );
}

/// `/live` speaks server-sent events to a logged-in page only, and its streams end when the
/// daemon stops (they would otherwise hold the stop for the listener's whole shutdown wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_end_when_the_daemon_stops() {
    let env = web_env(Path::new("/nonexistent/claude"));
    let mut daemon = Serve::start(&env);
    let url = daemon.url.clone();
    let http = no_redirects();
    let res = http.get(format!("{url}/live")).send().await.unwrap();
    assert_eq!(res.status(), 303, "not logged in: to the login");
    let (cookie, _) = login(&http, &url).await;
    let mut curl = Command::new("curl")
        .args([
            "-sN",
            "-H",
            &format!("Cookie: {cookie}"),
            &format!("{url}/live"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(curl.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "event: hello");
    let stopped = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = loop {
        if let Some(s) = daemon.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "serve did not stop with a live stream open"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    // The stream ended: curl reads to its end.
    for _ in lines.by_ref() {}
    assert!(curl.wait().unwrap().success());
}
