//! The metrics to alert on and the bundled alert rules: `steward serve`'s /metrics reports what
//! waits for a human (and for how long) and when each goal last ran and last succeeded, brought up
//! to date at each scrape; `triggers/steward-alerts.yml` passes `promtool check rules` and
//! `promtool test rules` (the series below, the alerts each should fire).

use std::path::Path;
use std::process::Command;

use steward::base::ledger::Ledger;

use crate::common::cli::Env;
use crate::common::require::tool;
use crate::common::serve::Serve;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `promtool test rules` input: RULES is replaced by the rule file's path.
const RULE_TESTS: &str = r#"
rule_files: [RULES]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # An action pending since 0 (its age grows 60 s a minute); a change that is younger.
      - series: 'steward_pending_oldest_age_seconds{kind="action"}'
        values: '0+60x400'
      - series: 'steward_pending_oldest_age_seconds{kind="change"}'
        values: '0x400'
      - series: 'steward_pending_oldest_age_seconds{kind="knowledge"}'
        values: '0x400'
      # health-check last ran and last succeeded at 0; doctor (not a timer goal) too.
      - series: 'steward_goal_last_run_timestamp_seconds{goal="health-check"}'
        values: '0x2000'
      - series: 'steward_goal_last_success_timestamp_seconds{goal="health-check"}'
        values: '0x2000'
      - series: 'steward_goal_last_run_timestamp_seconds{goal="incident"}'
        values: '0x2000'
      - series: 'steward_notification_failures_total{target="phone"}'
        values: '0 0 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25'
      - series: 'steward_notification_failures_total{target="mail"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 3h
        alertname: StewardApprovalWaiting
        exp_alerts: []
      - eval_time: 4h10m
        alertname: StewardApprovalWaiting
        exp_alerts:
          - exp_labels: {severity: warning, kind: action}
            exp_annotations:
              summary: "steward: a pending action has waited over 4 hours for approval"
              description: "Review it: steward actions list (or the web page's approvals)."
      - eval_time: 25m
        alertname: StewardNotificationsFailing
        exp_alerts:
          - exp_labels: {severity: critical, target: phone}
            exp_annotations:
              summary: "steward: notifications to phone are failing"
              description: "steward notify status; steward notify test phone."
      - eval_time: 25h
        alertname: StewardGoalNotRun
        exp_alerts: []
      - eval_time: 27h
        alertname: StewardGoalNotRun
        exp_alerts:
          - exp_labels: {severity: warning, goal: health-check}
            exp_annotations:
              summary: "steward: goal health-check has not run for over 26 hours"
              description: "Check its timer: systemctl list-timers 'steward-check@*'; steward runs list."
      - eval_time: 27h
        alertname: StewardGoalNotSucceeding
        exp_alerts:
          - exp_labels: {severity: warning, goal: health-check}
            exp_annotations:
              summary: "steward: goal health-check has not succeeded for over 26 hours"
              description: "See its recent runs: steward runs list."
      - eval_time: 27h
        alertname: StewardGoalNeverSucceeded
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'steward_goal_last_run_timestamp_seconds{goal="health-check"}'
        values: '0x1700'
    alert_rule_test:
      - eval_time: 25h
        alertname: StewardGoalNeverSucceeded
        exp_alerts: []
      - eval_time: 27h
        alertname: StewardGoalNeverSucceeded
        exp_alerts:
          - exp_labels: {severity: warning, goal: health-check}
            exp_annotations:
              summary: "steward: goal health-check has runs but none succeeded"
              description: "See its recent runs: steward runs list."
"#;

fn scrape(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", &format!("{url}/metrics")])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl /metrics failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

fn finished(ledger: &Ledger, goal: &str, outcome: &str, at: i64) {
    let run = ledger.create_run(goal).unwrap();
    let t = time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let result =
        serde_json::json!({"goal": goal, "outcome": outcome, "finished": t, "cost_usd": 0.0});
    run.write_json("result.json", &result).unwrap();
}

#[test]
fn metrics_report_waiting_items_and_goal_times_updated_at_each_scrape() {
    let env = Env::new(Path::new("/bin/false"), "http://127.0.0.1:9", "");
    let ledger = Ledger::open(&env.state()).unwrap();
    finished(&ledger, "health-check", "ok", 1_700_000_000);
    finished(&ledger, "health-check", "failed", 1_700_000_600);
    finished(&ledger, "incident", "escalated", 1_700_000_300);
    // A knowledge proposal filed an hour ago.
    let store = steward::engine::knowledge::KnowledgeStore::open(&env.state()).unwrap();
    let (mut ps, _) = steward::engine::knowledge::from_verdict(
        &[serde_json::json!({"title": "t", "tags": ["x"], "body": "b"})],
        "run",
        "incident",
        &steward::base::redact::Redactor::default(),
        &Default::default(),
    );
    ps[0].created -= time::Duration::hours(1);
    store.file(ps, &Default::default()).unwrap();

    let d = Serve::start(&env);
    let m = scrape(&d.url);
    let get = |m: &str, s: &str| sample(m, s).unwrap_or_else(|| panic!("no {s} in:\n{m}"));
    let hc = r#"{goal="health-check"}"#;
    assert_eq!(
        get(&m, &format!("steward_goal_last_run_timestamp_seconds{hc}")),
        1_700_000_600.0
    );
    assert_eq!(
        get(
            &m,
            &format!("steward_goal_last_success_timestamp_seconds{hc}")
        ),
        1_700_000_000.0
    );
    assert_eq!(
        get(
            &m,
            r#"steward_goal_last_run_timestamp_seconds{goal="incident"}"#
        ),
        1_700_000_300.0
    );
    assert_eq!(
        sample(
            &m,
            r#"steward_goal_last_success_timestamp_seconds{goal="incident"}"#
        ),
        None
    );
    assert_eq!(get(&m, r#"steward_pending{kind="knowledge"}"#), 1.0);
    let age = get(
        &m,
        r#"steward_pending_oldest_age_seconds{kind="knowledge"}"#,
    );
    assert!((3600.0..3900.0).contains(&age), "{age}");
    for kind in ["action", "change"] {
        assert_eq!(get(&m, &format!("steward_pending{{kind=\"{kind}\"}}")), 0.0);
        assert_eq!(
            get(
                &m,
                &format!("steward_pending_oldest_age_seconds{{kind=\"{kind}\"}}")
            ),
            0.0
        );
    }

    // A run that ends while the daemon runs (here: recorded by another process) is counted by
    // the next scrape.
    finished(&ledger, "health-check", "ok", 1_700_001_000);
    let m = scrape(&d.url);
    assert_eq!(
        get(
            &m,
            &format!("steward_goal_last_success_timestamp_seconds{hc}")
        ),
        1_700_001_000.0
    );
}

#[test]
fn the_bundled_alert_rules_check_and_fire_as_tested() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let rules = Path::new(REPO).join("triggers/steward-alerts.yml");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("steward-alerts.test.yml");
    std::fs::write(&tests, RULE_TESTS.replace("RULES", rules.to_str().unwrap())).unwrap();
    let out = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&tests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
