//! Effectiveness memory on a real state directory.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Attempt, FILE_NAME, Memory, MemoryError};
use crate::base::outcome::Outcome;

fn at(now: OffsetDateTime, minutes_ago: i64) -> OffsetDateTime {
    now - time::Duration::minutes(minutes_ago)
}

fn attempt(subject: &str, action: &str, outcome: Outcome, when: OffsetDateTime) -> Attempt {
    Attempt {
        subject: subject.into(),
        action: action.into(),
        outcome,
        at: when,
    }
}

fn rec(m: &Memory, a: &Attempt) {
    if let Err(e) = m.record(a) {
        panic!("{e}");
    }
}

fn esc(m: &Memory, subject: &str, action: &str, now: OffsetDateTime) -> bool {
    match m.should_escalate_at(subject, action, Duration::from_secs(3600), now) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn third_identical_ineffective_action_escalates() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A state directory that does not exist yet is created on the first record.
    let m = Memory::open(&dir.path().join("state"));
    let now = OffsetDateTime::now_utc();
    let (s, a) = ("nomad:web", "nomad job restart web");
    assert!(!esc(&m, s, a, now), "empty memory");
    rec(&m, &attempt(s, a, Outcome::Failed, at(now, 30)));
    assert!(!esc(&m, s, a, now), "one failure is not flapping");
    // Other subjects, other actions and effective attempts do not count.
    rec(&m, &attempt("nomad:api", a, Outcome::Failed, at(now, 20)));
    rec(
        &m,
        &attempt(s, "systemctl restart nomad", Outcome::Failed, at(now, 20)),
    );
    rec(&m, &attempt(s, a, Outcome::Fixed, at(now, 15)));
    assert!(!esc(&m, s, a, now));
    rec(&m, &attempt(s, a, Outcome::Failed, at(now, 10)));
    // Two failures of the same action on the same subject: the third attempt goes to a human.
    assert!(esc(&m, s, a, now));
    assert!(
        m.should_escalate(s, a, Duration::from_secs(3600))
            .unwrap_or(false)
    );
}

#[test]
fn failures_outside_the_window_do_not_count() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = Memory::open(dir.path());
    let now = OffsetDateTime::now_utc();
    rec(&m, &attempt("s", "a", Outcome::Failed, at(now, 180)));
    rec(&m, &attempt("s", "a", Outcome::Failed, at(now, 10)));
    assert!(!esc(&m, "s", "a", now), "one of the two is 3 h old");
    // Time passes; a recent pair does escalate.
    rec(&m, &attempt("s", "a", Outcome::Failed, at(now, 5)));
    assert!(esc(&m, "s", "a", now));
    // The same history judged 2 hours later has left the window.
    assert!(!esc(&m, "s", "a", now + time::Duration::hours(2)));
}

#[test]
fn recent_returns_the_last_n_for_a_subject() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = Memory::open(dir.path());
    let now = OffsetDateTime::now_utc();
    for i in 0..5 {
        rec(
            &m,
            &attempt("s", &format!("a{i}"), Outcome::Failed, at(now, 50 - i)),
        );
        rec(&m, &attempt("other", "x", Outcome::Ok, at(now, 50 - i)));
    }
    let got = m.recent("s", 2).unwrap_or_default();
    let actions: Vec<&str> = got.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["a3", "a4"]);
    assert_eq!(m.recent("s", 99).map(|v| v.len()).ok(), Some(5));
    assert_eq!(m.recent("nobody", 3).map(|v| v.len()).ok(), Some(0));
    // Timestamps survive the round trip (RFC 3339, second precision at least).
    assert!((got[1].at - at(now, 46)).abs() < time::Duration::seconds(1));
}

#[test]
fn an_unreadable_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = Memory::open(dir.path());
    let now = OffsetDateTime::now_utc();
    rec(&m, &attempt("s", "a", Outcome::Failed, now));
    let path = dir.path().join(FILE_NAME);
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str("{\"subject\": \"s\", truncated\n");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    match m.should_escalate_at("s", "a", Duration::from_secs(60), now) {
        Err(e @ MemoryError::Corrupt { line: 2, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("{}:2:", path.display())), "{msg}");
        }
        other => panic!("expected a corrupt-line error, got {other:?}"),
    }
    assert!(m.recent("s", 1).is_err());
}

#[test]
fn lines_are_plain_json() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let m = Memory::open(dir.path());
    m.record_now("host:a", "systemctl restart x", Outcome::Fixed)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(m.path()).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
    assert_eq!(v["subject"], "host:a");
    assert_eq!(v["outcome"], "fixed");
    assert!(v["at"].as_str().is_some_and(|s| s.ends_with('Z')));
    assert!(text.ends_with('\n'));
}
