//! Cron schedules of goals (`schedule = "*/15 * * * *"` in the front matter), for the scheduler
//! inside `steward serve`: hosts without systemd timers still get their periodic goals.
//!
//! Expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds
//! first; a year field is refused, because nothing here needs it and a 7th field is more likely
//! a typo. Times are UTC, whatever the host's time zone: a schedule means the same on every host.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use time::OffsetDateTime;

use crate::config::Config;
use crate::defs::bundled::{self, Kind, ReadError};
use crate::defs::goal::{self, GoalError};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Goal(#[from] GoalError),
}

/// Why a schedule does not parse; shown at the goal file's line.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(
        "schedule `{expr}` has {fields} fields: expected 5 (minute hour day month weekday) or 6 \
         (seconds first)"
    )]
    Fields { expr: String, fields: usize },
    #[error("schedule `{expr}` is not a cron expression: {source}")]
    Syntax {
        expr: String,
        source: croner::errors::CronError,
    },
}

/// Parses a schedule.
pub fn parse(expr: &str) -> Result<Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(CronError::Fields {
            expr: expr.to_string(),
            fields,
        });
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|source| CronError::Syntax {
            expr: expr.to_string(),
            source,
        })
}

/// The first fire time strictly after `after`, in UTC; `None` when the expression never fires
/// again (e.g. 30 February) or the time is out of range.
pub fn next_after(cron: &Cron, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let after = after.to_offset(time::UtcOffset::UTC);
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
        after.unix_timestamp(),
        after.nanosecond(),
    )?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    let nanos =
        i128::from(next.timestamp()) * 1_000_000_000 + i128::from(next.timestamp_subsec_nanos());
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// One scheduled goal.
#[derive(Debug, Clone)]
pub struct Entry {
    pub goal: String,
    pub expr: String,
    pub cron: Cron,
}

/// Every goal of the configuration with a `schedule` (bundled goals, replaced by the operator's
/// of the same name). Goals are validated on load, so a bad expression fails here with its line.
/// A broken goal whose file never mentions `schedule` cannot be a scheduled one: it is logged and
/// left to fail when it runs, instead of stopping every other goal's schedule.
pub fn entries(cfg: &Config) -> Result<Vec<Entry>, ScheduleError> {
    let files = bundled::files(Kind::Goals, cfg.goals_dir.as_deref(), cfg.no_bundled, "md")?;
    let mut out = Vec::new();
    let mut goals = Vec::new();
    for (file, loaded) in files.iter().zip(goal::load_each(&files)) {
        match loaded {
            Ok(g) => goals.push(g),
            Err(e) if file.text.contains("schedule") => return Err(e.into()),
            Err(e) => tracing::warn!("goal not scheduled, it does not load: {e}"),
        }
    }
    for g in goals {
        if let Some(expr) = g.schedule {
            // Validated by the goal loader already; parsing twice keeps `Goal` serialisable.
            if let Ok(cron) = parse(&expr) {
                out.push(Entry {
                    goal: g.name,
                    expr,
                    cron,
                });
            }
        }
    }
    Ok(out)
}

/// The earliest fire time after `after` and the goals due then (several may share a minute).
pub fn next_due(entries: &[Entry], after: OffsetDateTime) -> Option<(OffsetDateTime, Vec<&Entry>)> {
    let mut best: Option<(OffsetDateTime, Vec<&Entry>)> = None;
    for e in entries {
        let Some(at) = next_after(&e.cron, after) else {
            continue;
        };
        match &mut best {
            Some((t, due)) if at == *t => due.push(e),
            Some((t, _)) if at > *t => {}
            _ => best = Some((at, vec![e])),
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry(goal: &str, expr: &str) -> Entry {
        Entry {
            goal: goal.into(),
            expr: expr.into(),
            cron: parse(expr).unwrap(),
        }
    }

    #[test]
    fn five_and_six_fields_parse_others_do_not() {
        assert!(parse("*/15 * * * *").is_ok());
        assert!(parse("* * * * * *").is_ok());
        assert!(parse("0 3 * * mon-fri").is_ok());
        for bad in [
            "",
            "hourly",
            "* * * *",
            "0 0 0 * * * 2030",
            "61 * * * *",
            "* * * * 9",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_fire_is_strictly_after_and_in_utc() {
        let c = parse("*/15 * * * *").unwrap();
        let at = datetime!(2026-01-01 10:07:30 UTC);
        assert_eq!(next_after(&c, at), Some(datetime!(2026-01-01 10:15:00 UTC)));
        // On a fire time, the next one, not the same again.
        let at = datetime!(2026-01-01 10:15:00 UTC);
        assert_eq!(next_after(&c, at), Some(datetime!(2026-01-01 10:30:00 UTC)));
        // An offset time is the same instant: schedules are UTC.
        let at = datetime!(2026-01-01 12:07:30 +02:00);
        assert_eq!(next_after(&c, at), Some(datetime!(2026-01-01 10:15:00 UTC)));
        let s = parse("* * * * * *").unwrap();
        let at = datetime!(2026-01-01 10:07:30.5 UTC);
        assert_eq!(next_after(&s, at), Some(datetime!(2026-01-01 10:07:31 UTC)));
    }

    #[test]
    fn an_impossible_date_never_fires_and_does_not_hang() {
        // 30 February: valid fields, no instant. The scheduler must skip it, quickly.
        let c = parse("0 0 30 2 *").unwrap();
        let t = std::time::Instant::now();
        assert_eq!(next_after(&c, datetime!(2026-01-01 00:00:00 UTC)), None);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn operator_goals_replace_bundled_and_carry_their_schedule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("health-check.md"),
            "+++\ndescription = \"d\"\nschedule = \"*/15 * * * *\"\n+++\nbody\n",
        )
        .unwrap();
        let cfg = Config {
            goals_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        };
        let es = entries(&cfg).unwrap();
        assert_eq!(es.len(), 1, "{es:?}");
        assert_eq!(es[0].goal, "health-check");
        assert_eq!(es[0].expr, "*/15 * * * *");
        // No bundled goal is scheduled: timers run them where systemd does.
        assert!(entries(&Config::default()).unwrap().is_empty());
    }

    #[test]
    fn next_due_groups_goals_of_the_same_instant() {
        let es = [
            entry("a", "0 * * * *"),
            entry("b", "*/30 * * * *"),
            entry("c", "0 */2 * * *"),
        ];
        let (at, due) = next_due(&es, datetime!(2026-01-01 10:40:00 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-01-01 11:00:00 UTC));
        let names: Vec<_> = due.iter().map(|e| e.goal.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(next_due(&[], datetime!(2026-01-01 10:40:00 UTC)).is_none());
    }
}
