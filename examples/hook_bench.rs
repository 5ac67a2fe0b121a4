//! Hook latency as Claude Code sees it: one whole `steward hook pre-tool-use --run-dir DIR`
//! process per tool call, over the policy case table. Run by `bench/hook.sh`.
//!
//! Also checks that the binary's answers agree with the table (approve → `deny` on the wire).
// A benchmark reports on stdout and stops at the first surprise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use steward::defs::policy::GoalPolicy;
use steward::defs::policy::{Permission, Policy};

include!("../tests/data/policy_table.rs");
include!("../tests/data/hostile_table.rs");

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut bin = PathBuf::from("target/release/steward");
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bin" => bin = PathBuf::from(args.next().expect("--bin PATH")),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("--rounds N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    // The hook runs with the workspace as cwd, so a relative binary path must be resolved first.
    let bin = std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let f = fixture();
    // A run directory as steward lays it out: the compiled policy, and the context the hook
    // needs to file approval-required calls.
    let run_dir = f.ws.parent().unwrap().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let policy_file = run_dir.join(steward::engine::boundary::POLICY_FILE);
    f.policy.to_file(&policy_file).unwrap();
    steward::base::ledger::write_json(
        &run_dir.join(steward::engine::boundary::HOOK_CONTEXT_FILE),
        &steward::engine::boundary::HookContext {
            state_dir: f.ws.parent().unwrap().join("state"),
            run_id: "bench".into(),
            goal: "bench".into(),
            subject: "bench".into(),
            signal_fingerprint: None,
            state_fingerprint: String::new(),
            checks: vec![],
            known_checks: vec![],
            action_ttl_secs: 3600,
            approval: steward::defs::goal::ApprovalMode::Queue,
            approval_timeout_secs: 300,
        },
    )
    .unwrap();
    let mut inputs: Vec<(Permission, Vec<u8>)> = Vec::new();
    let wrap = |tool: &str, tool_input: Value| {
        serde_json::to_vec(&json!({
            "session_id": "bench", "cwd": f.ws, "hook_event_name": "PreToolUse",
            "tool_name": tool, "tool_input": tool_input, "tool_use_id": "toolu_bench",
        }))
        .unwrap()
    };
    for (v, cmd) in BASH {
        inputs.push((*v, wrap("Bash", json!({"command": f.sub(cmd)}))));
    }
    for (v, tool, input) in FILES {
        inputs.push((*v, wrap(tool, serde_json::from_str(&f.sub(input)).unwrap())));
    }

    let run = |input: &[u8]| -> (Duration, i32, String) {
        let t = Instant::now();
        let mut child = Command::new(&bin)
            .args(["hook", "pre-tool-use", "--run-dir"])
            .arg(&run_dir)
            .current_dir(&f.ws)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            t.elapsed(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    for (_, input) in inputs.iter().take(20) {
        run(input);
    }
    let mut times = Vec::new();
    let mut mismatches = 0;
    for _ in 0..rounds {
        for (expected, input) in &inputs {
            let (t, code, stdout) = run(input);
            times.push(t);
            let got = serde_json::from_str::<Value>(&stdout).ok().and_then(|v| {
                v["hookSpecificOutput"]["permissionDecision"]
                    .as_str()
                    .map(str::to_string)
            });
            let want = if *expected == Permission::Allow {
                "allow"
            } else {
                "deny"
            };
            if code != 0 || got.as_deref() != Some(want) {
                mismatches += 1;
            }
        }
    }
    times.sort();

    // The same decisions in process, for how much of the above is process start-up.
    let mut inproc = Vec::new();
    for (_, input) in &inputs {
        let t = Instant::now();
        let _ = steward::engine::boundary::pre_tool_use(&run_dir, input);
        inproc.push(t.elapsed());
    }
    inproc.sort();

    println!("binary:            {}", bin.display());
    println!(
        "policy file:       {} bytes",
        std::fs::metadata(&policy_file).unwrap().len()
    );
    println!(
        "calls:             {} ({} cases x {rounds} rounds)",
        times.len(),
        inputs.len()
    );
    println!(
        "process per call:  median {}  p90 {}  p99 {}  max {}",
        ms(pct(&times, 0.5)),
        ms(pct(&times, 0.9)),
        ms(pct(&times, 0.99)),
        ms(*times.last().unwrap())
    );
    println!(
        "in-process decide: median {}  p99 {}  (load policy + decide + audit)",
        ms(pct(&inproc, 0.5)),
        ms(pct(&inproc, 0.99))
    );
    println!("answers differing from the table: {mismatches}");
    let ok = pct(&times, 0.5) <= Duration::from_millis(5);
    println!(
        "target median <= 5 ms: {}",
        if ok { "met" } else { "NOT met" }
    );
    let (worst, allowed) = hostile(&run, &wrap, rounds, pct(&times, 0.5));
    let worst_ok = worst <= Duration::from_millis(200);
    println!(
        "target worst hostile <= 200 ms: {}",
        if worst_ok { "met" } else { "NOT met" }
    );
    if mismatches > 0 || !ok || !worst_ok || allowed > 0 {
        std::process::exit(1);
    }
}

/// The hostile table (tests/data/hostile_table.rs): each input's median and slowest whole-process
/// answer, and the slowest of all as a ratio to the ordinary median. Returns (slowest, answers
/// that were not a deny).
/// One whole hook process: (time, exit code, stdout).
type RunHook<'a> = &'a dyn Fn(&[u8]) -> (Duration, i32, String);

fn hostile(
    run: RunHook<'_>,
    wrap: &dyn Fn(&str, Value) -> Vec<u8>,
    rounds: usize,
    ordinary_median: Duration,
) -> (Duration, usize) {
    println!();
    println!(
        "{:<34} {:>9} {:>10} {:>10}  answer",
        "hostile input", "bytes", "median", "max"
    );
    let mut worst = Duration::ZERO;
    let mut not_denied = 0;
    for (what, tool, input, _) in hostile_cases() {
        let input = wrap(tool, input);
        let mut times = Vec::new();
        let mut answer = String::new();
        for _ in 0..rounds.max(3) {
            let (t, code, stdout) = run(&input);
            times.push(t);
            let decision = serde_json::from_str::<Value>(&stdout).ok().and_then(|v| {
                v["hookSpecificOutput"]["permissionDecision"]
                    .as_str()
                    .map(str::to_string)
            });
            answer = match (code, decision.as_deref()) {
                (0, Some("deny")) => "deny".to_string(),
                (2, _) => "blocked (exit 2)".to_string(),
                (c, d) => {
                    not_denied += 1;
                    format!("NOT DENIED: exit {c}, {d:?}")
                }
            };
        }
        times.sort();
        worst = worst.max(*times.last().unwrap());
        println!(
            "{what:<34} {:>9} {:>10} {:>10}  {answer}",
            input.len(),
            ms(pct(&times, 0.5)),
            ms(*times.last().unwrap())
        );
    }
    println!(
        "slowest hostile answer: {} = {:.1}x the ordinary median ({})",
        ms(worst),
        worst.as_secs_f64() / ordinary_median.as_secs_f64(),
        ms(ordinary_median)
    );
    (worst, not_denied)
}
