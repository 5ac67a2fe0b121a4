//! Maintenance windows (`[[router.maintenance]]`): compiled from the configuration, asked by
//! the router and the worker whether a subject is covered now.

use regex::Regex;
use time::OffsetDateTime;

use super::{ConfigError, MaintenanceWindow};

/// A regex that must match the whole text.
pub fn anchored(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{re})$"))
}

#[derive(Debug, Clone)]
enum Span {
    Absolute(OffsetDateTime, OffsetDateTime),
    /// Minutes after midnight UTC; `start > end` wraps past midnight.
    Daily(u32, u32),
}

#[derive(Debug, Clone)]
struct Window {
    label: String,
    span: Span,
    subjects: Vec<Regex>,
}

/// The compiled `[[router.maintenance]]` windows.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    windows: Vec<Window>,
}

impl Maintenance {
    pub fn compile(raw: &[MaintenanceWindow]) -> Result<Maintenance, ConfigError> {
        let mut windows = Vec::new();
        for (i, w) in raw.iter().enumerate() {
            let key = format!("router.maintenance[{i}]");
            let bad = |message: String| ConfigError::Invalid {
                key: key.clone(),
                message,
            };
            let rfc = |field: &str, v: &str| {
                OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| bad(format!("{field} {v:?} is not an RFC 3339 time: {e}")))
            };
            let (span, label) = match (&w.start, &w.end, &w.daily) {
                (Some(s), Some(e), None) => {
                    let (start, end) = (rfc("start", s)?, rfc("end", e)?);
                    if end <= start {
                        return Err(bad("end must be after start".into()));
                    }
                    (Span::Absolute(start, end), format!("{s}..{e}"))
                }
                (None, None, Some(d)) => (Span::Daily(0, 0), format!("daily {d}")),
                _ => {
                    return Err(bad(
                        "needs either `start` and `end`, or `daily = \"HH:MM-HH:MM\"`".into(),
                    ));
                }
            };
            let span = match (&span, &w.daily) {
                (Span::Daily(..), Some(d)) => parse_daily(d).map_err(bad)?,
                _ => span,
            };
            let subjects = w
                .subjects
                .iter()
                .map(|s| anchored(s).map_err(|e| bad(format!("subjects: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            windows.push(Window {
                label: w.name.clone().unwrap_or(label),
                span,
                subjects,
            });
        }
        Ok(Maintenance { windows })
    }

    /// The window that covers `subject` at `now`, if any.
    pub fn active(&self, subject: &str, now: OffsetDateTime) -> Option<String> {
        let now = now.to_offset(time::UtcOffset::UTC);
        let minute = u32::from(now.hour()) * 60 + u32::from(now.minute());
        self.windows
            .iter()
            .find(|w| {
                let in_time = match w.span {
                    Span::Absolute(s, e) => s <= now && now < e,
                    Span::Daily(s, e) if s <= e => s <= minute && minute < e,
                    Span::Daily(s, e) => minute >= s || minute < e,
                };
                in_time && (w.subjects.is_empty() || w.subjects.iter().any(|r| r.is_match(subject)))
            })
            .map(|w| w.label.clone())
    }
}

fn parse_daily(d: &str) -> Result<Span, String> {
    let hm = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = d
        .split_once('-')
        .ok_or_else(|| format!("daily {d:?}: expected \"HH:MM-HH:MM\" (UTC)"))?;
    match (hm(a), hm(b)) {
        (Some(s), Some(e)) if s != e => Ok(Span::Daily(s, e)),
        (Some(_), Some(_)) => Err(format!("daily {d:?}: start and end are equal")),
        _ => Err(format!("daily {d:?}: expected \"HH:MM-HH:MM\" (UTC)")),
    }
}
