use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::base::ledger::Ledger;

/// A run id as the ledger makes them: its start stamp first.
fn id_of(started: OffsetDateTime, n: usize) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-g-{n:06}",
        started.year(),
        u8::from(started.month()),
        started.day(),
        started.hour(),
        started.minute(),
        started.second()
    )
}

fn result_json(
    id: &str,
    goal: &str,
    outcome: &str,
    source: &str,
    cost: f64,
    started: OffsetDateTime,
) -> serde_json::Value {
    let t = started
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::json!({
        "id": id, "goal": goal, "source": source, "subject": goal, "outcome": outcome,
        "exit": "ok", "exit_code": 0, "reason": "r", "started": t, "finished": t,
        "duration_ms": 1500, "agent_started": true, "cost_usd": cost, "num_turns": 1,
        "permission_denials": [], "failure": null, "verdict": null,
        "actions_filed": ["a1", "a2"], "session_id": "", "claude_exit_code": null
    })
}

/// A finished run on disk (no catalog line: as a run recorded before the catalog existed).
fn write_run(ledger: &Ledger, r: &serde_json::Value) {
    let dir = ledger.runs_dir().join(r["id"].as_str().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    crate::base::ledger::write_json(&dir.join("result.json"), r).unwrap();
}

/// A finished run written as a run writes it: the result, then the catalog line.
fn finish_run(ledger: &Ledger, r: &serde_json::Value) {
    write_run(ledger, r);
    let result: RunResult = serde_json::from_value(r.clone()).unwrap();
    record(ledger, &result);
}

fn setup() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    (dir, ledger)
}

fn ids(page: &Page) -> Vec<&str> {
    page.entries.iter().map(|e| e.id.as_str()).collect()
}

#[test]
fn a_missing_catalog_is_rebuilt_from_the_results_and_appends_are_read_by_a_stat() {
    let (_d, ledger) = setup();
    let t = datetime!(2026-11-01 10:00:00 UTC);
    for n in 0..5 {
        let id = id_of(t + time::Duration::minutes(n as i64), n);
        write_run(&ledger, &result_json(&id, "disk", "ok", "timer", 0.1, t));
    }
    // A run still going (no result) is not listed.
    std::fs::create_dir_all(ledger.runs_dir().join(id_of(t, 99))).unwrap();
    let mut c = Catalog::open(&ledger).unwrap();
    assert_eq!(c.len(), 5);
    let text = std::fs::read_to_string(ledger.root().join("catalog/runs.jsonl")).unwrap();
    assert!(text.starts_with("{\"steward_catalog\":1}\n"), "{text}");
    assert_eq!(text.lines().count(), 6);

    // Another process finishes a run: the next refresh sees it, without a listing.
    let id = id_of(t + time::Duration::hours(1), 6);
    finish_run(
        &ledger,
        &result_json(&id, "disk", "failed", "manual", 0.25, t),
    );
    assert_eq!(c.len(), 5);
    c.refresh().unwrap();
    assert_eq!(c.len(), 6);
    let e = c.get(&id).unwrap();
    assert_eq!(
        (e.outcome.as_str(), e.actions, e.cost_usd),
        ("failed", 2, 0.25)
    );
    // Nothing new: still 6, and a second refresh is a stat.
    c.refresh().unwrap();
    assert_eq!(c.len(), 6);
}

#[test]
fn an_append_without_a_catalog_adds_nothing_and_the_reader_rebuilds() {
    let (_d, ledger) = setup();
    let t = datetime!(2026-11-01 10:00:00 UTC);
    finish_run(
        &ledger,
        &result_json(&id_of(t, 1), "g", "ok", "timer", 0.0, t),
    );
    assert!(!ledger.root().join("catalog/runs.jsonl").exists());
    let mut c = Catalog::open(&ledger).unwrap();
    assert_eq!(c.len(), 1);
    // Removed under a running daemon: rebuilt at the next refresh.
    std::fs::remove_file(ledger.root().join("catalog/runs.jsonl")).unwrap();
    finish_run(
        &ledger,
        &result_json(&id_of(t, 2), "g", "ok", "timer", 0.0, t),
    );
    c.refresh().unwrap();
    assert_eq!(c.len(), 2);
}

#[test]
fn garbage_and_torn_lines_are_skipped_and_a_partial_last_line_waits() {
    let (_d, ledger) = setup();
    let t = datetime!(2026-11-01 10:00:00 UTC);
    finish_run(
        &ledger,
        &result_json(&id_of(t, 1), "g", "ok", "timer", 0.0, t),
    );
    let mut c = Catalog::open(&ledger).unwrap();
    let path = ledger.root().join("catalog/runs.jsonl");
    let second = serde_json::to_string(&Entry {
        id: id_of(t, 2),
        ..c.get(&id_of(t, 1)).unwrap().clone()
    })
    .unwrap();
    // Its run is on disk (a later open finds runs/ and the catalog agree).
    write_run(
        &ledger,
        &result_json(&id_of(t, 2), "g", "ok", "timer", 0.0, t),
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    use std::io::Write;
    // A garbage line, a line of the wrong shape, then half of a line still being written.
    write!(f, "not json\n{{\"id\":3}}\n{}", &second[..10]).unwrap();
    c.refresh().unwrap();
    assert_eq!(c.len(), 1);
    // The writer finishes its line.
    writeln!(f, "{}", &second[10..]).unwrap();
    c.refresh().unwrap();
    assert_eq!(c.len(), 2, "the completed line is read");
    // A fresh reader (the daemon restarting) skips the bad lines too, and does not rebuild
    // (the runs match): the catalog file still has them.
    let c2 = Catalog::open(&ledger).unwrap();
    assert_eq!(c2.len(), 2);
    assert!(std::fs::read_to_string(&path).unwrap().contains("not json"));
}

#[test]
fn another_version_or_a_mismatch_with_runs_is_rebuilt() {
    let (_d, ledger) = setup();
    let t = datetime!(2026-11-01 10:00:00 UTC);
    finish_run(
        &ledger,
        &result_json(&id_of(t, 1), "g", "ok", "timer", 0.0, t),
    );
    let path = ledger.root().join("catalog/runs.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{\"steward_catalog\":99}\n{\"anything\":1}\n").unwrap();
    let c = Catalog::open(&ledger).unwrap();
    assert_eq!(c.len(), 1);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("{\"steward_catalog\":1}\n")
    );
    // A run finished while the catalog was not there to append to (rebuilt since by nobody):
    // the next open notices that runs/ has a result the catalog lacks.
    let body = std::fs::read_to_string(&path).unwrap();
    write_run(
        &ledger,
        &result_json(&id_of(t, 2), "g", "ok", "timer", 0.0, t),
    );
    std::fs::write(&path, &body).unwrap();
    assert_eq!(Catalog::open(&ledger).unwrap().len(), 2);
    // And an entry whose run is gone.
    std::fs::remove_dir_all(ledger.runs_dir().join(id_of(t, 1))).unwrap();
    assert_eq!(Catalog::open(&ledger).unwrap().len(), 1);
}

#[test]
fn retention_takes_removed_runs_out() {
    let (dir, ledger) = setup();
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::days(40);
    let (a, b) = (id_of(old, 1), id_of(now, 2));
    finish_run(&ledger, &result_json(&a, "g", "ok", "timer", 1.0, old));
    finish_run(&ledger, &result_json(&b, "g", "ok", "timer", 2.0, now));
    let mut c = Catalog::open(&ledger).unwrap();
    assert_eq!(c.len(), 2);
    let queue = crate::daemon::queue::Queue::open(dir.path()).unwrap();
    let pruned =
        crate::daemon::retention::prune(&ledger, &queue, time::Duration::days(30), now, false)
            .unwrap();
    assert_eq!(pruned.removed, vec![a.clone()]);
    c.refresh().unwrap();
    assert_eq!(c.len(), 1);
    assert!(c.get(&a).is_none());
    let page = c.page(&Query {
        limit: 10,
        ..Query::default()
    });
    assert_eq!((page.total, page.cost_usd), (1, 2.0));
    // No directory listing needed to agree: a fresh open does not rebuild either.
    assert_eq!(Catalog::open(&ledger).unwrap().len(), 1);
}

/// 30 runs over three days: goals a/b, outcomes ok/failed, sources timer/manual.
fn fabricated() -> (tempfile::TempDir, Ledger, Catalog) {
    let (d, ledger) = setup();
    let day0 = datetime!(2026-11-01 00:00:00 UTC);
    for n in 0..30usize {
        let t = day0 + time::Duration::hours(n as i64 * 2);
        let goal = if n % 2 == 0 { "a" } else { "b" };
        let outcome = if n % 3 == 0 { "failed" } else { "ok" };
        let source = if n % 5 == 0 { "manual" } else { "timer" };
        write_run(
            &ledger,
            &result_json(&id_of(t, n), goal, outcome, source, 0.01 * n as f64, t),
        );
    }
    let c = Catalog::open(&ledger).unwrap();
    (d, ledger, c)
}

#[test]
fn pages_are_newest_first_with_filters_and_totals() {
    let (_d, _l, c) = fabricated();
    let all = c.page(&Query {
        limit: 4,
        ..Query::default()
    });
    assert_eq!(all.total, 30);
    assert_eq!(all.entries.len(), 4);
    assert!(ids(&all)[0].ends_with("-000029"), "{:?}", ids(&all));
    assert!((all.cost_usd - 4.35).abs() < 1e-9, "{}", all.cost_usd);
    let next = c.page(&Query {
        limit: 4,
        offset: 4,
        ..Query::default()
    });
    assert!(ids(&next)[0].ends_with("-000025"));

    let q = Query {
        goal: Some("a".into()),
        outcome: Some("failed".into()),
        limit: 100,
        ..Query::default()
    };
    let p = c.page(&q);
    // Even n divisible by 3: 0, 6, 12, 18, 24.
    assert_eq!(p.total, 5);
    assert!(
        p.entries
            .iter()
            .all(|e| e.goal == "a" && e.outcome == "failed")
    );
    assert!((p.cost_usd - 0.6).abs() < 1e-9);
    let manual = c.page(&Query {
        source: Some("manual".into()),
        limit: 2,
        offset: 1,
        ..Query::default()
    });
    assert_eq!(manual.total, 6);
    assert!(ids(&manual)[0].ends_with("-000020"), "{:?}", ids(&manual));

    // The second day: runs 12..=23.
    let day = c.page(&Query {
        since: Some(time::macros::date!(2026 - 11 - 02)),
        until: Some(time::macros::date!(2026 - 11 - 02)),
        limit: 100,
        ..Query::default()
    });
    assert_eq!(day.total, 12);
    assert!(ids(&day)[0].ends_with("-000023") && ids(&day)[11].ends_with("-000012"));
    let backwards = c.page(&Query {
        since: Some(time::macros::date!(2026 - 11 - 03)),
        until: Some(time::macros::date!(2026 - 11 - 01)),
        limit: 100,
        ..Query::default()
    });
    assert_eq!(backwards.total, 0);

    // A field and a range of days: goal a on the second day (even n in 12..=23).
    let a_day = c.page(&Query {
        goal: Some("a".into()),
        since: Some(time::macros::date!(2026 - 11 - 02)),
        until: Some(time::macros::date!(2026 - 11 - 02)),
        limit: 100,
        ..Query::default()
    });
    assert_eq!(a_day.total, 6);
    assert!(ids(&a_day)[0].ends_with("-000022"));
    // A value no run has.
    let none = c.page(&Query {
        goal: Some("zzz".into()),
        limit: 100,
        ..Query::default()
    });
    assert_eq!((none.total, none.entries.len()), (0, 0));

    let menus = c.menus();
    assert_eq!(menus.goals, ["a", "b"]);
    assert_eq!(menus.outcomes, ["failed", "ok"]);
    assert_eq!(menus.sources, ["manual", "timer"]);
}

#[test]
fn days_count_runs_by_outcome_and_spend() {
    let (_d, ledger, mut c) = fabricated();
    let days = c.days(time::macros::date!(2026 - 11 - 04), 5);
    let dates: Vec<&str> = days.iter().map(|d| d.date.as_str()).collect();
    assert_eq!(
        dates,
        [
            "2026-10-31",
            "2026-11-01",
            "2026-11-02",
            "2026-11-03",
            "2026-11-04"
        ]
    );
    assert_eq!(days[0].runs, 0);
    // Day one: n = 0..=11; failed: 0, 3, 6, 9.
    assert_eq!(days[1].runs, 12);
    assert_eq!(days[1].by_outcome["failed"], 4);
    assert_eq!(days[1].by_outcome["ok"], 8);
    assert!(
        (days[1].spend_usd - 0.66).abs() < 1e-9,
        "{}",
        days[1].spend_usd
    );
    assert_eq!(days[3].runs, 6);
    // A removal takes exactly its share off.
    let gone = id_of(datetime!(2026-11-01 00:00:00 UTC), 0);
    std::fs::remove_dir_all(ledger.runs_dir().join(&gone)).unwrap();
    forget(&ledger, std::slice::from_ref(&gone));
    c.refresh().unwrap();
    let days = c.days(time::macros::date!(2026 - 11 - 01), 1);
    assert_eq!(days[0].by_outcome["failed"], 3);
    assert!((days[0].spend_usd - 0.66).abs() < 1e-9);
}
