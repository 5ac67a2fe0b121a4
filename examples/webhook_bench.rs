//! Webhook ingest on loopback: `steward serve` (paused, fresh state dir) against a bare axum
//! handler that does the same HTTP work (bearer check, JSON parse, 200) and nothing else. Run by
//! `bench/webhook.sh`.
//!
//! Both servers are separate processes on 2 tokio worker threads; the load generator sends the
//! same Alertmanager v4 payloads (one alert each, over a few hundred fingerprints) with a fixed
//! number of connections, alternating bare and steward round by round so both see the same noise.
//! Zero alerts lost: every request answered 200 with `accepted = 1`, and steward's `routing`
//! events and `steward_signals_total{source="alertmanager"}` both equal the alerts sent.
// A benchmark reports on stdout and stops at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";

struct Opts {
    bin: PathBuf,
    requests: usize,
    concurrency: usize,
    fingerprints: usize,
    rounds: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        bin: PathBuf::from("target/release/steward"),
        requests: 20_000,
        concurrency: 32,
        fingerprints: 300,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, what: &str| -> usize {
        v.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what} N"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(args.next().expect("--bin PATH")),
            "--requests" => o.requests = num(args.next(), "--requests"),
            "--concurrency" => o.concurrency = num(args.next(), "--concurrency"),
            "--fingerprints" => o.fingerprints = num(args.next(), "--fingerprints"),
            "--rounds" => o.rounds = num(args.next(), "--rounds"),
            "--serve-bare" => {
                serve_bare();
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The bare handler: its own process, 2 worker threads like the daemon.

fn serve_bare() {
    use axum::http::{HeaderMap, StatusCode, header};
    async fn hook(headers: HeaderMap, body: axum::body::Bytes) -> (StatusCode, String) {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if auth != Some(TOKEN) {
            return (
                StatusCode::UNAUTHORIZED,
                "{\"error\":\"unauthorized\"}".into(),
            );
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => {
                let n = v["alerts"].as_array().map_or(0, Vec::len);
                (StatusCode::OK, format!("{{\"accepted\":{n}}}"))
            }
            Err(e) => (StatusCode::BAD_REQUEST, format!("{{\"error\":\"{e}\"}}")),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        println!("listening on http://{addr}");
        let app = axum::Router::new().route("/hooks/alertmanager", axum::routing::post(hook));
        axum::serve(listener, app).await.expect("serve");
    });
}

// ---------------------------------------------------------------------------------------------
// Servers

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Spawns and reads the `... http://ADDR` line both print once listening.
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listen line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(url.starts_with("http://"), "unexpected first line {line:?}");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn steward_env(dir: &Path) -> PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).expect("write token");
    let ws = dir.join("workspace");
    std::fs::create_dir_all(&ws).expect("workspace");
    let config = dir.join("steward.toml");
    // Paused: the worker runs nothing, so this measures ingest (auth, parse, route, queue,
    // events). Limits high (flapping at its maximum count, 100: the bench never resolves, so
    // nothing flaps): nothing is refused for rate, though merged/cooldown/flapping would
    // still be routing decisions, not losses. `ROUTER_LIMITS=default` keeps steward's own.
    let limits = if std::env::var("ROUTER_LIMITS").as_deref() == Ok("default") {
        ""
    } else {
        "[router]\ndaily_budget_usd = 1000000.0\nmax_runs_per_hour = 1000000\n\
         max_runs_per_hour_per_source = 1000000\ncooldown_secs = 0\n\
         flapping_acute = { count = 100, window_secs = 600 }\n\
         flapping_chronic = { count = 100, window_secs = 86400 }\n"
    };
    std::fs::write(
        &config,
        format!(
            "workspace = \"{ws}\"\nstate_dir = \"{state}\"\n[serve]\npaused = true\n{limits}",
            ws = ws.display(),
            state = dir.join("state").display(),
        ),
    )
    .expect("write config");
    config
}

// ---------------------------------------------------------------------------------------------
// Load

fn payload(i: usize, fingerprints: usize) -> String {
    let k = i % fingerprints;
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"DiskFull\", instance=\"host-{k}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "steward",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "instance": format!("host-{k}"), "severity": "warning"},
        "commonAnnotations": {"summary": "disk almost full"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": format!("host-{k}"), "severity": "warning"},
            "annotations": {"summary": format!("/var on host-{k} is 93% full")},
            "startsAt": "2026-11-22T06:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("{k:016x}"),
        }],
    })
    .to_string()
}

struct Load {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Requests that did not answer 200 with `accepted = 1`.
    lost: usize,
}

async fn load(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<String>>,
    concurrency: usize,
) -> Load {
    let url = Arc::new(format!("{url}/hooks/alertmanager"));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut lost = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let res = client
                    .post(url.as_str())
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match res {
                    Ok(r) if r.status() == 200 => match r.json::<serde_json::Value>().await {
                        Ok(v) => v["accepted"] == 1,
                        Err(_) => false,
                    },
                    _ => false,
                };
                lat.push(t.elapsed());
                lost += usize::from(!ok);
            }
            (lat, lost)
        }));
    }
    let mut out = Load {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        lost: 0,
    };
    for t in tasks {
        let (lat, lost) = t.await.expect("load task");
        out.latencies.extend(lat);
        out.lost += lost;
    }
    out.elapsed = start.elapsed();
    out
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time (user + system) a process used so far, from `/proc/PID/stat`.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state; utime and stime
    // are the 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

#[derive(Default)]
struct Side {
    rates: Vec<f64>,
    latencies: Vec<Duration>,
    lost: usize,
    sent: usize,
    /// Server and load-generator CPU per alert, one per round.
    server_cpu: Vec<f64>,
    client_cpu: Vec<f64>,
}

impl Side {
    fn add_cpu(&mut self, server: Duration, client: Duration, n: usize) {
        self.server_cpu.push(server.as_secs_f64() * 1e6 / n as f64);
        self.client_cpu.push(client.as_secs_f64() * 1e6 / n as f64);
    }

    fn add(&mut self, l: Load, n: usize) {
        self.rates.push(n as f64 / l.elapsed.as_secs_f64());
        self.latencies.extend(l.latencies);
        self.lost += l.lost;
        self.sent += n;
    }
}

/// `routing` events in `STATE/events/*.jsonl` from the alertmanager source.
fn routing_events(state: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(state.join("events")) else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        n += text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == "routing" && v["source"] == "alertmanager")
            .count();
    }
    n
}

/// The sum of `steward_signals_total{source="alertmanager",...}`, and the decisions seen.
fn signals_metric(text: &str) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut seen = Vec::new();
    for l in text.lines() {
        if l.starts_with("steward_signals_total{")
            && l.contains("source=\"alertmanager\"")
            && let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok())
        {
            total += v as u64;
            seen.push(l.to_string());
        }
    }
    (total, seen)
}

fn main() {
    let o = parse_opts();
    let bin = std::fs::canonicalize(&o.bin).unwrap_or_else(|e| panic!("{}: {e}", o.bin.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = steward_env(dir.path());
    let mut steward = Command::new(&bin);
    steward
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token-file"])
        .arg(dir.path().join("token"))
        .env("HOME", dir.path())
        .env("RUST_LOG", "warn");
    let steward = Server::spawn(steward);
    let mut bare = Command::new(std::env::current_exe().expect("current exe"));
    bare.arg("--serve-bare");
    let bare = Server::spawn(bare);

    let bodies: Arc<Vec<String>> = Arc::new(
        (0..o.requests / o.rounds)
            .map(|i| payload(i, o.fingerprints))
            .collect(),
    );
    let per_round = bodies.len();
    let warm: Arc<Vec<String>> = Arc::new((0..500).map(|i| payload(i, o.fingerprints)).collect());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (bare_side, steward_side, metrics) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(o.concurrency)
            .build()
            .expect("http client");
        let (mut b, mut s) = (Side::default(), Side::default());
        // Warm-up: connections, page cache, the router's state file. Counted for losses.
        s.add(
            load(&client, &steward.url, warm.clone(), o.concurrency).await,
            warm.len(),
        );
        b.add(
            load(&client, &bare.url, warm.clone(), o.concurrency).await,
            warm.len(),
        );
        let (mut b, mut s) = (
            Side {
                lost: b.lost,
                sent: b.sent,
                ..Side::default()
            },
            Side {
                lost: s.lost,
                sent: s.sent,
                ..Side::default()
            },
        );
        for round in 0..o.rounds {
            // Alternate which goes first, so neither always follows the other.
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_bare in order {
                let server = if is_bare { &bare } else { &steward };
                let pid = server.child.id().to_string();
                let (server_before, client_before) = (cpu_time(&pid), cpu_time("self"));
                let l = load(&client, &server.url, bodies.clone(), o.concurrency).await;
                let server_cpu = cpu_time(&pid).saturating_sub(server_before);
                let client_cpu = cpu_time("self").saturating_sub(client_before);
                let side = if is_bare { &mut b } else { &mut s };
                side.add(l, per_round);
                side.add_cpu(server_cpu, client_cpu, per_round);
            }
        }
        let metrics = client
            .get(format!("{}/metrics", steward.url))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body");
        (b, s, metrics)
    });
    drop(steward);
    drop(bare);

    let events = routing_events(&dir.path().join("state"));
    let (metric_total, decisions) = signals_metric(&metrics);
    let summary = |mut side: Side| {
        side.latencies.sort();
        let rate = median(&mut side.rates);
        (
            rate,
            pct(&side.latencies, 0.5),
            pct(&side.latencies, 0.99),
            side.lost,
            side.sent,
            format!(
                "{:.1} µs | {:.1} µs",
                median(&mut side.server_cpu),
                median(&mut side.client_cpu)
            ),
        )
    };
    let (b_rate, b50, b99, b_lost, _, b_cpu) = summary(bare_side);
    let (s_rate, s50, s99, s_lost, s_sent, s_cpu) = summary(steward_side);
    let unrouted = s_sent.saturating_sub(events.min(metric_total as usize));
    let s_lost_total =
        s_lost + unrouted + (events.max(metric_total as usize)).saturating_sub(s_sent);
    let ratio = s_rate / b_rate;

    println!(
        "webhook ingest on loopback: {} rounds × {per_round} requests (1 alert each, {} fingerprints), {} connections, after 500 warm-up requests each",
        o.rounds, o.fingerprints, o.concurrency
    );
    println!();
    println!(
        "| case | alerts/s (median of rounds) | p50 | p99 | ratio to bare | lost | server CPU per alert | load generator CPU per alert |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| bare axum handler | {b_rate:.0} | {} | {} | 1.00 | {b_lost} | {b_cpu} |",
        ms(b50),
        ms(b99)
    );
    println!(
        "| steward serve (paused) | {s_rate:.0} | {} | {} | {ratio:.2} | {s_lost_total} | {s_cpu} |",
        ms(s50),
        ms(s99)
    );
    println!();
    println!(
        "steward: {s_sent} alerts sent, {events} routing events, steward_signals_total{{source=\"alertmanager\"}} = {metric_total}"
    );
    for d in &decisions {
        println!("  {d}");
    }
    let checks = [
        ("≥ 5000 alerts/s", s_rate >= 5000.0),
        ("p99 < 20 ms", s99 < Duration::from_millis(20)),
        ("ratio to bare ≥ 0.5", ratio >= 0.5),
        (
            "zero alerts lost",
            s_lost_total == 0 && events == s_sent && metric_total as usize == s_sent,
        ),
    ];
    let mut failed = false;
    for (what, ok) in checks {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        failed |= !ok;
    }
    if failed {
        std::process::exit(1);
    }
}
