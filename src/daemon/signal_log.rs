//! Recent signals with their routing decisions, for the web page: the `routing` events of
//! `STATE/events/YYYY-MM-DD.jsonl`, newest first. Bounded per request: the day files are read
//! from the newest backwards, from each file's end in chunks, and reading stops at the page size
//! (or at a byte budget, when filters match little): never the whole history.
//!
//! A signal that started a job links to its run through the job's `job_finished` event, which
//! comes after the routing event in the log and so is met first when reading backwards.

use std::collections::HashMap;
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::base::ledger::{Ledger, LedgerError};

/// How much of the log one request reads at most.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
const CHUNK: u64 = 64 * 1024;

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub source: Option<String>,
    pub decision: Option<String>,
    /// Only signals routed before this time (RFC 3339, as in the log): the next page's cursor.
    pub before: Option<String>,
    pub limit: usize,
}

/// One routed signal.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub time: String,
    pub source: String,
    pub subject: String,
    pub severity: String,
    pub decision: String,
    pub reason: String,
    pub route: Option<String>,
    /// The job it queued or joined.
    pub job: Option<String>,
    /// The run that job ended with, when it has ended.
    pub run: Option<String>,
}

/// The newest routed signals matching `filter`; `complete` is false when the byte budget ended
/// the search before the page filled (older matches may exist).
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    pub rows: Vec<Row>,
    pub complete: bool,
}

pub fn recent(ledger: &Ledger, filter: &Filter) -> Result<Recent, LedgerError> {
    let mut scan = Scan {
        filter,
        runs: HashMap::new(),
        rows: Vec::new(),
    };
    let mut budget = MAX_BYTES;
    for path in day_files(&ledger.root().join("events"), filter.before.as_deref())? {
        let flow = backwards(&path, &mut budget, |line| scan.line(line))?;
        if flow.is_break() {
            return Ok(Recent {
                complete: scan.rows.len() >= filter.limit || budget > 0,
                rows: scan.rows,
            });
        }
    }
    Ok(Recent {
        rows: scan.rows,
        complete: true,
    })
}

struct Scan<'a> {
    filter: &'a Filter,
    /// Job id → run id, from the `job_finished` events met so far.
    runs: HashMap<String, String>,
    rows: Vec<Row>,
}

impl Scan<'_> {
    fn line(&mut self, line: &[u8]) -> ControlFlow<()> {
        if self.rows.len() >= self.filter.limit {
            return ControlFlow::Break(());
        }
        // Cheap test first: most events are not routing or job ends.
        if !contains(line, b"\"kind\":\"routing\"") && !contains(line, b"\"kind\":\"job_finished\"")
        {
            return ControlFlow::Continue(());
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return ControlFlow::Continue(());
        };
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind == "job_finished" {
            if let (Some(job), Some(run)) = (str_of(&v, "job"), str_of(&v, "run")) {
                self.runs.insert(job, run);
            }
            return ControlFlow::Continue(());
        }
        if kind != "routing" {
            return ControlFlow::Continue(());
        }
        if let Some(row) = self.row(&v) {
            self.rows.push(row);
        }
        if self.rows.len() >= self.filter.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn row(&self, v: &Value) -> Option<Row> {
        let time = str_of(v, "time").unwrap_or_default();
        let source = str_of(v, "source").unwrap_or_default();
        let decision = str_of(v, "decision").unwrap_or_default();
        let f = self.filter;
        if f.before.as_deref().is_some_and(|b| time.as_str() >= b)
            || f.source.as_deref().is_some_and(|s| s != source)
            || f.decision.as_deref().is_some_and(|d| d != decision)
        {
            return None;
        }
        let detail = v.get("detail");
        let job = detail
            .and_then(|d| str_of(d, "job_id").or_else(|| str_of(d, "into")))
            .filter(|j| !j.is_empty());
        Some(Row {
            run: job.as_ref().and_then(|j| self.runs.get(j).cloned()),
            job,
            time,
            source,
            subject: str_of(v, "subject").unwrap_or_default(),
            severity: str_of(v, "severity").unwrap_or_default(),
            decision,
            reason: str_of(v, "reason").unwrap_or_default(),
            route: str_of(v, "route"),
        })
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The day files, newest first; with a cursor, only days up to its day.
fn day_files(dir: &Path, before: Option<&str>) -> Result<Vec<PathBuf>, LedgerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LedgerError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let last_day = before.and_then(|b| b.get(..10));
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.len() == 16 && n.ends_with(".jsonl"))
        .filter(|n| last_day.is_none_or(|d| &n[..10] <= d))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// Calls `each` with the file's whole lines, last first, until it breaks or `budget` bytes were
/// read. A partial last line (being appended) is skipped.
fn backwards(
    path: &Path,
    budget: &mut u64,
    mut each: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, LedgerError> {
    let err = |source| LedgerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ControlFlow::Continue(()));
        }
        Err(e) => return Err(err(e)),
    };
    let mut end = f.metadata().map_err(err)?.len();
    // `tail`: bytes after the last newline seen so far (the start of a line cut by the chunk).
    let mut tail: Vec<u8> = Vec::new();
    let mut first = true;
    while end > 0 {
        if *budget == 0 {
            return Ok(ControlFlow::Break(()));
        }
        let start = end.saturating_sub(CHUNK.min(*budget));
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        f.read_exact_at(&mut buf, start).map_err(err)?;
        *budget = budget.saturating_sub(end - start);
        buf.extend_from_slice(&tail);
        let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        // The first piece may continue in the chunk before; the last is after the final newline.
        let head = if start > 0 { lines.remove(0) } else { &[][..] };
        // At the file's end the last piece follows the final newline: a line being written
        // (or nothing). Later, the last piece is the old `tail`, which ended at a newline.
        if first {
            lines.pop();
            first = false;
        }
        for line in lines.into_iter().rev().filter(|l| !l.is_empty()) {
            if each(line).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        tail = head.to_vec();
        end = start;
    }
    Ok(ControlFlow::Continue(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, kind: &str, rest: &str) -> String {
        format!("{{\"time\":\"{time}\",\"kind\":\"{kind}\",{rest}}}\n")
    }

    fn routing(time: &str, source: &str, decision: &str, job: &str) -> String {
        line(
            time,
            "routing",
            &format!(
                "\"source\":\"{source}\",\"subject\":\"s-{time}\",\"fingerprint\":\"f\",\"severity\":\"warning\",\"decision\":\"{decision}\",\"reason\":\"because {time}\",\"route\":null,\"detail\":{{\"decision\":\"{decision}\",\"job_id\":\"{job}\",\"kind\":\"routing\"}}"
            ),
        )
    }

    #[test]
    fn newest_first_across_days_bounded_filtered_and_linked_to_runs() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let events = dir.path().join("events");
        std::fs::create_dir_all(&events).unwrap();
        let mut day1 = String::new();
        for i in 0..3000 {
            let t = format!("2026-11-01T10:{:02}:{:02}Z", i / 60 % 60, i % 60);
            day1.push_str(&routing(&t, "timer", "cooldown", ""));
            // Filler that is not routing (longer than a chunk in total).
            day1.push_str(&line(&t, "job_started", "\"job\":\"x\""));
        }
        std::fs::write(events.join("2026-11-01.jsonl"), &day1).unwrap();
        let mut day2 = routing("2026-11-02T08:00:00Z", "alertmanager", "enqueue", "j1");
        day2.push_str(&line(
            "2026-11-02T08:00:05Z",
            "job_finished",
            "\"run\":\"R1\",\"job\":\"j1\"",
        ));
        day2.push_str(&routing("2026-11-02T09:00:00Z", "manual", "enqueue", "j2"));
        // A line being written.
        day2.push_str("{\"time\":\"2026-11-02T09:30:00Z\",\"kind\":\"rout");
        std::fs::write(events.join("2026-11-02.jsonl"), &day2).unwrap();
        // Not a day file.
        std::fs::write(events.join("notes.txt"), "x").unwrap();

        let all = recent(
            &ledger,
            &Filter {
                limit: 5,
                ..Filter::default()
            },
        )
        .unwrap();
        let times: Vec<&str> = all.rows.iter().map(|r| r.time.as_str()).collect();
        assert_eq!(
            times,
            [
                "2026-11-02T09:00:00Z",
                "2026-11-02T08:00:00Z",
                "2026-11-01T10:49:59Z",
                "2026-11-01T10:49:58Z",
                "2026-11-01T10:49:57Z"
            ]
        );
        assert!(all.complete);
        assert_eq!(all.rows[0].run, None, "j2 has not finished");
        assert_eq!(all.rows[0].job.as_deref(), Some("j2"));
        assert_eq!(all.rows[1].run.as_deref(), Some("R1"));
        assert_eq!(all.rows[1].reason, "because 2026-11-02T08:00:00Z");
        assert_eq!(all.rows[2].job, None);

        let enq = recent(
            &ledger,
            &Filter {
                decision: Some("enqueue".into()),
                source: Some("alertmanager".into()),
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(enq.rows.len(), 1);
        assert_eq!(enq.rows[0].subject, "s-2026-11-02T08:00:00Z");

        // The cursor: older than the last row shown.
        let older = recent(
            &ledger,
            &Filter {
                before: Some("2026-11-01T10:49:58Z".into()),
                limit: 2,
                ..Filter::default()
            },
        )
        .unwrap();
        let times: Vec<&str> = older.rows.iter().map(|r| r.time.as_str()).collect();
        assert_eq!(times, ["2026-11-01T10:49:57Z", "2026-11-01T10:49:56Z"]);

        // Every line of a large file is met once, in order, across chunk borders.
        let cooldowns = recent(
            &ledger,
            &Filter {
                decision: Some("cooldown".into()),
                limit: 10_000,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(cooldowns.rows.len(), 3000);
        assert!(
            cooldowns
                .rows
                .windows(2)
                .all(|w| w[0].time > w[1].time || w[0].subject != w[1].subject)
        );
    }

    #[test]
    fn the_byte_budget_ends_a_search_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events");
        std::fs::create_dir_all(&events).unwrap();
        let f = events.join("2026-11-01.jsonl");
        let filler = line(
            "2026-11-01T00:00:00Z",
            "job_started",
            &format!("\"pad\":\"{}\"", "x".repeat(1000)),
        );
        let mut text = routing("2026-11-01T00:00:00Z", "timer", "enqueue", "j");
        for _ in 0..(MAX_BYTES as usize / filler.len() + 10) {
            text.push_str(&filler);
        }
        std::fs::write(&f, text).unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let r = recent(
            &ledger,
            &Filter {
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert!(r.rows.is_empty());
        assert!(!r.complete);
    }
}
