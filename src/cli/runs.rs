//! `steward runs list|show|prune`: the run ledger for people (a table, an incident report) and
//! for scripts (`--json`, the same data).

use clap::{Args, Subcommand};
use serde_json::Value;
use time::OffsetDateTime;

use super::output::print_json;
use super::{Cli, CliError, internal, usage};
use crate::base::ledger::Ledger;
use crate::base::outcome::ExitKind;
use crate::daemon::queue::Queue;
use crate::daemon::retention;
use crate::defs::check::CheckResult;
use crate::engine::run::history::{self, Filter, HistoryError};
use crate::engine::run::report::{RunDetail, ToolCall};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recorded runs, newest first.
    List(RunsListArgs),
    /// One run's record as an incident report: `last` is the newest run, and a unique prefix of
    /// an id will do.
    Show { id: String },
    /// Remove runs older than an age, except those an open action or an active job points at and
    /// runs in progress; event log days that ended before it go too.
    Prune {
        /// The age, e.g. `30d`, `12h`, `2w`.
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// Say what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Show at most this many runs, the newest (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Only runs of this goal.
    #[arg(long)]
    pub goal: Option<String>,
    /// Only runs with this outcome (ok, fixed, no_action, aborted, failed, escalated, running, …).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only runs started since: an age (`2h`, `7d`) or an RFC 3339 time.
    #[arg(long, value_name = "AGE|TIME")]
    pub since: Option<String>,
}

fn classify(e: HistoryError) -> CliError {
    if e.is_usage() { usage(e) } else { internal(e) }
}

pub(super) async fn run(cli: &Cli, cmd: &RunsCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let ledger = Ledger::open(&cfg.state_dir).map_err(internal)?;
    match cmd {
        RunsCommand::List(args) => list(cli, &ledger, args),
        RunsCommand::Show { id } => {
            let id = history::resolve_id(&ledger, id).map_err(classify)?;
            let detail = crate::engine::run::show_run(&ledger, &id).map_err(classify)?;
            if cli.json {
                print_json(&detail)?;
            } else {
                print_report(&detail)?;
            }
            Ok(ExitKind::Ok)
        }
        RunsCommand::Prune {
            older_than,
            dry_run,
        } => {
            let age = history::parse_age(older_than)
                .map_err(|e| usage(anyhow::anyhow!("--older-than {e}")))?;
            let queue = Queue::open(&cfg.state_dir).map_err(internal)?;
            let mut pruned =
                retention::prune(&ledger, &queue, age, OffsetDateTime::now_utc(), *dry_run)
                    .map_err(classify)?;
            retention::prune_change_branches(&ledger, cfg.change_path(), &mut pruned)
                .await
                .map_err(|e| internal(anyhow::anyhow!("change branches: {e}")))?;
            if cli.json {
                print_json(&pruned)?;
            } else {
                print_pruned(&pruned)?;
            }
            Ok(ExitKind::Ok)
        }
    }
}

fn list(cli: &Cli, ledger: &Ledger, args: &RunsListArgs) -> Result<ExitKind, CliError> {
    let since = args
        .since
        .as_deref()
        .map(|s| history::parse_since(s, OffsetDateTime::now_utc()))
        .transpose()
        .map_err(|e| usage(anyhow::anyhow!("--since {e}")))?;
    let filter = Filter {
        goal: args.goal.clone(),
        outcome: args.outcome.clone(),
        since,
        limit: args.limit,
    };
    filter.check().map_err(classify)?;
    let all = history::list_runs(ledger).map_err(classify)?;
    let recorded = all.len();
    let (runs, matched) = filter.apply(all);
    // An unreadable record is steward's own failure to read its ledger: exit 1 after listing.
    let broken = runs.iter().any(|r| r.error.is_some());
    if cli.json {
        print_json(&runs)?;
    } else if runs.is_empty() {
        if recorded == 0 {
            crate::outln!("no runs recorded in {}", ledger.root().display())?;
        } else {
            crate::outln!("no runs match ({recorded} recorded)")?;
        }
    } else {
        print_table(&runs)?;
        if matched > runs.len() {
            crate::outln!(
                "({} of {matched} matching runs shown, newest first; --limit 0 shows all)",
                runs.len()
            )?;
        }
    }
    Ok(if broken {
        ExitKind::Error
    } else {
        ExitKind::Ok
    })
}

fn time_of(t: Option<OffsetDateTime>) -> String {
    t.map(|t| {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    })
    .unwrap_or_else(|| "?".into())
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    let s = s.lines().next().unwrap_or_default();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn print_table(runs: &[crate::engine::run::RunSummary]) -> Result<(), CliError> {
    let w_id = runs.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let w_goal = runs.iter().map(|r| r.goal.len()).max().unwrap_or(4).max(4);
    let w_out = runs
        .iter()
        .map(|r| r.outcome.len())
        .max()
        .unwrap_or(10)
        .max(10);
    crate::outln!(
        "{:w_id$}  {:19}  {:w_goal$}  {:w_out$}  {:>8}  {:>7}  REASON",
        "ID",
        "STARTED (UTC)",
        "GOAL",
        "OUTCOME",
        "COST",
        "TIME"
    )?;
    for r in runs {
        // Loud on purpose: a record steward cannot read is its own failure.
        let (outcome, reason) = match &r.error {
            Some(e) => ("UNREADABLE".to_string(), e.clone()),
            None => (r.outcome.clone(), r.reason.clone()),
        };
        crate::outln!(
            "{:w_id$}  {:19}  {:w_goal$}  {:w_out$}  {:>8}  {:>7}  {}",
            r.id,
            time_of(r.started),
            r.goal,
            outcome,
            format!("${:.4}", r.cost_usd),
            format!("{:.1}s", r.duration_ms as f64 / 1000.0),
            clip(&reason, 100)
        )?;
    }
    Ok(())
}

fn print_pruned(p: &retention::Pruned) -> Result<(), CliError> {
    let verb = if p.dry_run { "would remove" } else { "removed" };
    crate::outln!(
        "runs started before {}: {verb} {}, kept {}",
        time_of(Some(p.cutoff)),
        p.removed.len(),
        p.kept.len()
    )?;
    for id in &p.removed {
        crate::outln!("  {verb} {id}")?;
    }
    for k in &p.kept {
        crate::outln!("  kept {}: {}", k.id, k.reason)?;
    }
    if !p.incidents_removed.is_empty() {
        crate::outln!("container incidents {verb}: {}", p.incidents_removed.len())?;
    }
    if !p.event_days_removed.is_empty() {
        crate::outln!("event log days {verb}: {}", p.event_days_removed.join(", "))?;
    }
    for b in &p.change_branches.deleted {
        crate::outln!("change branch {verb}: {b}")?;
    }
    for k in &p.change_branches.kept {
        crate::outln!(
            "change branch kept {} ({}): {}",
            k.branch,
            k.change,
            k.reason
        )?;
    }
    Ok(())
}

/// A status or kind in words: `needs_attention` → `needs attention`.
fn words(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_else(|| "?".into())
}

fn print_report(d: &RunDetail) -> Result<(), CliError> {
    print_header(d)?;
    print_signal(d)?;
    print_checks(d)?;
    print_tool_calls(&d.tool_calls)?;
    print_verdict(d)?;
    print_actions(d)?;
    print_change(d)?;
    print_rollback(d)?;
    print_cost(d)?;
    crate::outln!()?;
    crate::outln!("record: {}", d.dir)?;
    crate::outln!("files: {}", d.files.join(", "))
}

fn print_header(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!("run {}", d.id)?;
    let goal = d
        .result
        .as_ref()
        .map(|r| r.goal.clone())
        .or_else(|| d.meta.as_ref().map(|m| m.goal.clone()))
        .unwrap_or_else(|| "?".into());
    crate::outln!("  goal:    {goal}")?;
    match &d.result {
        Some(r) => {
            crate::outln!(
                "  outcome: {} (exit {} {})",
                d.outcome,
                r.exit_code,
                r.exit.as_str()
            )?;
            crate::outln!("  reason:  {}", r.reason)?;
            crate::outln!(
                "  started: {} UTC, took {:.1} s",
                time_of(Some(r.started)),
                r.duration_ms as f64 / 1000.0
            )?;
        }
        None => {
            crate::outln!("  outcome: {} (no result recorded)", d.outcome)?;
            if let Some(m) = &d.meta {
                crate::outln!(
                    "  started: {} UTC; last stage `{}`, pid {}",
                    time_of(Some(m.started)),
                    m.stage,
                    m.pid
                )?;
            }
        }
    }
    Ok(())
}

fn pairs(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => format!("{k}={}", clip(s, 120)),
                None => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        _ => "(none)".into(),
    }
}

fn print_signal(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Signal")?;
    match &d.signal {
        Some(s) => {
            crate::outln!(
                "  {} · subject {} · severity {} · fingerprint {}",
                s["source"].as_str().unwrap_or("?"),
                s["subject"].as_str().unwrap_or("?"),
                s["severity"].as_str().unwrap_or("?"),
                s["fingerprint"].as_str().unwrap_or("?")
            )?;
            crate::outln!("  labels: {}", pairs(&s["labels"]))?;
            crate::outln!("  annotations: {}", pairs(&s["annotations"]))?;
        }
        None => crate::outln!("  (not recorded)")?,
    }
    let vars = serde_json::to_value(&d.vars).unwrap_or_default();
    crate::outln!("  vars: {}", pairs(&vars))
}

fn check_line(phase: &str, c: &CheckResult) -> Result<(), CliError> {
    let why = if c.status.is_failure() || c.status == crate::defs::check::CheckStatus::Unavailable {
        let detail = c.detail.clone().unwrap_or_else(|| c.expected.clone());
        format!(" — {}", clip(&detail, 160))
    } else {
        String::new()
    };
    crate::outln!("  {phase:<10} {:<11} {}{why}", c.status.as_str(), c.name)
}

fn print_phase(phase: &str, checks: &[CheckResult]) -> Result<(), CliError> {
    if checks.is_empty() {
        return crate::outln!("  {phase:<10} (none)");
    }
    checks.iter().try_for_each(|c| check_line(phase, c))
}

fn print_checks(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Checks before")?;
    match &d.checks_before {
        Some(b) => {
            print_phase("static", &b.static_)?;
            print_phase("preflight", &b.preflight)?;
            print_phase("invariant", &b.invariants)?;
            print_phase("post", &b.post)?;
        }
        None => crate::outln!("  (not recorded)")?,
    }
    crate::outln!()?;
    crate::outln!("Checks after")?;
    match &d.checks_after {
        Some(a) => {
            print_phase("invariant", &a.invariants)?;
            print_phase("post", &a.post)?;
        }
        None => crate::outln!("  (none: the agent did not run, or the run did not get there)")?,
    }
    Ok(())
}

/// What a call asked for, in one line.
fn call_input(c: &ToolCall) -> String {
    let i = &c.input;
    let text = ["command", "file_path", "pattern", "path", "url"]
        .iter()
        .find_map(|k| i.get(*k).and_then(|v| v.as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| i.to_string());
    clip(&text, 200)
}

/// The tool claude reports its verdict with: shown under Verdict, not as a call.
const VERDICT_TOOL: &str = "StructuredOutput";

fn print_tool_calls(calls: &[ToolCall]) -> Result<(), CliError> {
    let calls: Vec<&ToolCall> = calls
        .iter()
        .filter(|c| !(c.tool == VERDICT_TOOL && c.decision == "allow"))
        .collect();
    crate::outln!()?;
    crate::outln!("Tool calls ({})", calls.len())?;
    for (n, c) in calls.iter().enumerate() {
        crate::outln!("  {}. {}: {}", n + 1, c.tool, call_input(c))?;
        let action = c
            .action
            .as_ref()
            .map(|a| format!(" → action {a}"))
            .unwrap_or_default();
        let rule = c
            .rule
            .as_ref()
            .map(|r| format!(" [rule: {r}]"))
            .unwrap_or_default();
        crate::outln!(
            "     {}{action}{rule}: {}",
            c.decision,
            clip(&c.reason, 240)
        )?;
        if let Some(out) = &c.output {
            let label = if c.output_is_error { "error" } else { "output" };
            let mut lines = out.lines();
            match lines.next() {
                Some(first) => crate::outln!("     {label}: {first}")?,
                None => crate::outln!("     {label}: (empty)")?,
            }
            for l in lines {
                crate::outln!("       {l}")?;
            }
            if c.output_omitted_lines > 0 {
                crate::outln!("       … {} more line(s)", c.output_omitted_lines)?;
            }
        }
    }
    Ok(())
}

/// A finding or a proposal from the verdict: its known fields in words, else its JSON.
fn item(v: &Value) -> String {
    let command = match &v["command"] {
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    if let Some(cmd) = command {
        let risk = v["risk"]
            .as_str()
            .map(|r| format!(" ({r} risk)"))
            .unwrap_or_default();
        return format!("`{cmd}`{risk}: {}", v["rationale"].as_str().unwrap_or(""));
    }
    match (v["subject"].as_str(), v["detail"].as_str()) {
        (Some(s), Some(d)) => format!("[{}] {s}: {d}", v["severity"].as_str().unwrap_or("?")),
        _ => match v.as_str() {
            Some(s) => s.to_string(),
            None => v.to_string(),
        },
    }
}

fn print_verdict(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Verdict (what the agent reported; the outcome above is steward's)")?;
    let Some(v) = d.result.as_ref().and_then(|r| r.verdict.as_ref()) else {
        let why = match d.result.as_ref().and_then(|r| r.failure.as_ref()) {
            Some(f) => format!("none: {}", crate::engine::run::describe_failure(f)),
            None => "none".into(),
        };
        return crate::outln!("  {why}");
    };
    crate::outln!("  {}: {}", words(&v.status), v.summary)?;
    for f in &v.findings {
        crate::outln!("  finding: {}", item(f))?;
    }
    for a in &v.actions_taken {
        crate::outln!("  taken: {}", item(a))?;
    }
    for a in &v.proposed_actions {
        crate::outln!("  proposed (not filed): {}", item(a))?;
    }
    Ok(())
}

fn print_actions(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Actions filed ({})", d.actions.len())?;
    for a in &d.actions {
        if a.state == "unknown" {
            crate::outln!("  {}  not in the action store", a.id)?;
            continue;
        }
        crate::outln!(
            "  {}  {:<8}  {}  for {}",
            a.id,
            a.state,
            a.argv.join(" "),
            a.subjects.join(", ")
        )?;
    }
    Ok(())
}

/// The change set the run filed (goals with `[change]`), and the one command that shows it.
fn print_change(d: &RunDetail) -> Result<(), CliError> {
    let Some(c) = d.result.as_ref().and_then(|r| r.change.as_ref()) else {
        return Ok(());
    };
    crate::outln!()?;
    crate::outln!("change set")?;
    crate::outln!("  {} {} ({} file(s))", c.id, c.state, c.files)?;
    if !c.reason.is_empty() {
        crate::outln!("  reason: {}", clip(&c.reason, 400))?;
    }
    crate::outln!("  see: steward changes show {}", c.id)
}

/// Whether the goal's rollback ran, why or why not, and its result; then its output.
fn print_rollback(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Rollback")?;
    let Some(r) = &d.result else {
        return crate::outln!("  (no result recorded)");
    };
    let Some(rb) = &r.rollback else {
        return crate::outln!(
            "  none: the goal has no rollback command, or the run ended before judging"
        );
    };
    crate::outln!("  {}", rb.describe())?;
    for line in rb.output.lines().take(4) {
        crate::outln!("    {}", clip(line, 200))?;
    }
    Ok(())
}

fn print_cost(d: &RunDetail) -> Result<(), CliError> {
    crate::outln!()?;
    crate::outln!("Cost")?;
    match &d.result {
        Some(r) if r.agent_started => crate::outln!(
            "  ${:.4}, {} turns, {:.1} s; claude reported {} permission denial(s), steward's \
             policy denied or queued {} call(s); session {}",
            r.cost_usd,
            r.num_turns,
            r.duration_ms as f64 / 1000.0,
            r.permission_denials.len(),
            r.policy_denials,
            r.session_id
        ),
        Some(r) => crate::outln!("  no model call; {:.1} s", r.duration_ms as f64 / 1000.0),
        None => crate::outln!("  (no result recorded)"),
    }
}
