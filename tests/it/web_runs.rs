//! The web page's runs list and signals through HTTP, against a real `steward serve` with a UI
//! token: a logged-in session (the cookie from `POST /login`) sees fabricated runs filtered,
//! paged and charted per day, runs written by other processes (`steward run`, the daemon's
//! worker) appear through the run catalog, and a signal handed to the daemon shows its routing
//! decision linked to its run. Without a session every page redirects to `/login`.

use crate::common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::cli::Env;
use time::OffsetDateTime;

const UI_TOKEN: &str = "ui-token-0123456789abcdef0123456789abcdef";

/// A running `steward serve`, killed on drop.
struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &Env) -> Daemon {
    let (child, url) =
        crate::common::serve::listening(env.steward().args(["serve", "--listen", "127.0.0.1:0"]));
    Daemon { child, url }
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("ui-token");
    std::fs::write(&token, format!("{UI_TOKEN}\n")).unwrap();
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\nui_token_file = \"{}\"\npoll_secs = 1\n[router]\ndaily_budget_usd = 2.0\n",
            token.display()
        ),
    );
    // The token lives as long as the env.
    std::mem::forget(dir);
    env
}

fn stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn day(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A finished run's record, as a run writes it.
fn fabricate(
    env: &Env,
    n: usize,
    started: OffsetDateTime,
    goal: &str,
    outcome: &str,
    source: &str,
    cost: f64,
) -> String {
    let id = format!("{}-{goal}-{n:06}", stamp(started));
    let dir = env.run_dir(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let t = started
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let result = serde_json::json!({
        "id": id, "goal": goal, "source": source, "subject": format!("{goal}-subject"),
        "outcome": outcome, "exit": "ok", "exit_code": 0, "reason": "fabricated",
        "started": t, "finished": t, "duration_ms": 2500, "agent_started": true,
        "cost_usd": cost, "num_turns": 2, "permission_denials": [], "failure": null,
        "verdict": null, "actions_filed": [], "session_id": "", "claude_exit_code": null
    });
    std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
    id
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in; returns the `Cookie` header value.
async fn login(c: &reqwest::Client, url: &str) -> String {
    let res = c
        .post(format!("{url}/login"))
        .header("origin", url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={UI_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303, "{:?}", res.text().await);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

async fn get(c: &reqwest::Client, url: &str, cookie: &str) -> (u16, String) {
    let res = c.get(url).header("cookie", cookie).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The run ids of the runs table, in order.
fn rows(html: &str) -> Vec<String> {
    html.split("<tr data-run=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_list_filters_pages_charts_and_sees_runs_of_other_processes() {
    let env = env();
    let now = OffsetDateTime::now_utc().replace_time(time::macros::time!(12:00));
    let yesterday = now - time::Duration::days(1);
    let earlier = now - time::Duration::days(3);
    // 60 runs yesterday (goal a: 40 ok, goal b: 20 failed, $0.01 each), 3 escalated three days
    // ago ($1 each: over the $2 budget), 2 older than the chart.
    let mut ids = Vec::new();
    for n in 0..60 {
        let (goal, outcome) = if n < 40 { ("a", "ok") } else { ("b", "failed") };
        let source = if n % 10 == 0 { "alertmanager" } else { "timer" };
        let t = yesterday + time::Duration::seconds(n as i64);
        ids.push(fabricate(&env, n, t, goal, outcome, source, 0.01));
    }
    for n in 60..63 {
        fabricate(
            &env,
            n,
            earlier + time::Duration::seconds(n as i64),
            "c",
            "escalated",
            "manual",
            1.0,
        );
    }
    for n in 63..65 {
        fabricate(
            &env,
            n,
            now - time::Duration::days(45),
            "c",
            "ok",
            "manual",
            0.5,
        );
    }
    let d = start(&env);
    let c = client();

    // No session: every page sends the browser to the login.
    for path in ["/", "/signals", "/?goal=a"] {
        let res = c.get(format!("{}{path}", d.url)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 303, "{path}");
        let to = res.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login"), "{path} → {to}");
    }

    let cookie = login(&c, &d.url).await;
    let (status, html) = get(&c, &format!("{}/", d.url), &cookie).await;
    assert_eq!(status, 200, "{html}");
    let first = rows(&html);
    assert_eq!(first.len(), 50);
    // Newest first: yesterday's last run, and each row links to its detail page.
    assert_eq!(first[0], ids[59]);
    assert!(html.contains(&format!("href=\"/runs/{}\"", ids[59])));
    assert!(
        html.contains("of <strong>65</strong> matching, costing <strong>$4.6000</strong>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"cost\">$0.0100</td>"));
    // The chart: yesterday's bar has 60 runs stacked 40 ok + 20 failed; three days ago, 3
    // escalated and its spend over the budget; the 45-day-old runs are not in it.
    let y = day(yesterday);
    assert!(
        html.contains(&format!("data-day=\"{y}\" data-runs=\"60\"")),
        "{html}"
    );
    assert!(html.contains(&format!("<title>{y}: 60 runs: 40 ok, 20 failed</title>")));
    assert!(html.contains(&format!("<title>{y}: 40 ok</title>")));
    assert!(html.contains(&format!("<title>{y}: 20 failed</title>")));
    let e = day(earlier);
    assert!(html.contains(&format!("data-day=\"{e}\" data-runs=\"3\"")));
    assert!(
        html.contains(&format!(
            "{e}: $3.0000 of the $2.00 daily budget (over budget)"
        )),
        "{html}"
    );
    assert_eq!(html.matches("<g class=\"day\"").count(), 30);
    assert_eq!(html.matches("data-over=\"true\"").count(), 1);
    assert!(html.contains("daily budget $2.00"));

    // Page two: the 15 left, and a link back.
    let (_, older) = get(&c, &format!("{}/?offset=50", d.url), &cookie).await;
    let second = rows(&older);
    assert_eq!(second.len(), 15);
    assert!(second.iter().all(|id| !first.contains(id)));
    assert!(older.contains("id=\"newer\""));
    assert!(!older.contains("id=\"older\""));

    // Filters: goal and outcome, source, a day range, and what a bad date says.
    let (_, b) = get(&c, &format!("{}/?goal=b&outcome=failed", d.url), &cookie).await;
    assert_eq!(rows(&b).len(), 20);
    assert!(b.contains("of <strong>20</strong> matching, costing <strong>$0.2000</strong>"));
    let (_, am) = get(
        &c,
        &format!("{}/?source=alertmanager&limit=4", d.url),
        &cookie,
    )
    .await;
    assert_eq!(rows(&am).len(), 4);
    assert!(am.contains("of <strong>6</strong> matching"));
    assert!(
        am.contains("href=\"&#x2F;?source=alertmanager&amp;limit=4&amp;offset=4\""),
        "{am}"
    );
    let (_, range) = get(&c, &format!("{}/?since={e}&until={e}", d.url), &cookie).await;
    assert_eq!(rows(&range).len(), 3);
    let (status, bad) = get(&c, &format!("{}/?since=yesterday", d.url), &cookie).await;
    assert_eq!(status, 400);
    assert!(bad.contains("`since` must be a day as YYYY-MM-DD"), "{bad}");

    // A run recorded by another process (`steward run`): the next page shows it.
    let out = env
        .steward()
        .args(["--json", "run", "health-check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    let (_, html) = get(&c, &format!("{}/", d.url), &cookie).await;
    assert_eq!(rows(&html)[0], id, "the CLI's run is the newest");
    assert!(html.contains("of <strong>66</strong> matching"));
    let (_, h) = get(&c, &format!("{}/?outcome=no_action", d.url), &cookie).await;
    assert_eq!(rows(&h), vec![id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_show_routing_decisions_linked_to_their_runs() {
    let env = env();
    let d = start(&env);
    let c = client();
    let cookie = login(&c, &d.url).await;
    // A signal handed to the daemon: routed (enqueue), run by its worker (no_action).
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["daemon"]["decision"], "enqueue", "{v}");
    // The run, once the worker has finished it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let (_, html) = get(&c, &format!("{}/", d.url), &cookie).await;
        if let Some(id) = rows(&html).first() {
            break id.clone();
        }
        assert!(Instant::now() < deadline, "the run never appeared: {html}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The job's end (which names the run) is recorded just after the run's result.
    let link = format!("<a href=\"/runs/{run}\">{run}</a>");
    let html = loop {
        let (status, html) = get(&c, &format!("{}/signals", d.url), &cookie).await;
        assert_eq!(status, 200, "{html}");
        if html.contains(&link) {
            break html;
        }
        assert!(Instant::now() < deadline, "no link to {run}: {html}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        html.contains("<tr data-decision=\"enqueue\" data-source=\"timer\">"),
        "{html}"
    );
    // Filters: no `cooldown` decisions were made.
    let (_, none) = get(&c, &format!("{}/signals?decision=cooldown", d.url), &cookie).await;
    assert!(none.contains("No signals match."), "{none}");
    let (_, other) = get(
        &c,
        &format!("{}/signals?source=alertmanager", d.url),
        &cookie,
    )
    .await;
    assert!(other.contains("No signals match."));
    let (_, timer) = get(
        &c,
        &format!("{}/signals?source=timer&decision=enqueue", d.url),
        &cookie,
    )
    .await;
    assert_eq!(timer.matches("<tr data-decision=").count(), 1);
    let (status, _) = get(&c, &format!("{}/signals?limit=x", d.url), &cookie).await;
    assert_eq!(status, 400);
}
