//! Running aggregates of the catalog, kept as entries come and go so that a page asks for them
//! without walking the runs: per UTC day (runs by outcome, spend), the distinct goals, outcomes
//! and sources (the filter menus), and the totals. Money is summed in micro-dollars, so that
//! removing an entry takes off exactly what adding it put on.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::Date;

use super::{Catalog, Entry};

/// USD in micro-dollars (exact sums).
pub(super) fn micros(usd: f64) -> i64 {
    (usd * 1e6).round() as i64
}

pub(super) fn usd(micros: i64) -> f64 {
    micros as f64 / 1e6
}

#[derive(Debug, Default, Clone)]
struct Day {
    by_outcome: BTreeMap<String, usize>,
    spend: i64,
}

/// The runs with one value of a field (a goal, an outcome, a source): their ids (start order)
/// and what they cost, so a filter on that field reads only its own runs.
#[derive(Debug, Default)]
pub(super) struct Slice {
    pub(super) ids: BTreeSet<String>,
    pub(super) cost: i64,
}

#[derive(Debug, Default)]
pub(super) struct Aggregates {
    days: BTreeMap<Date, Day>,
    pub(super) goals: BTreeMap<String, Slice>,
    pub(super) outcomes: BTreeMap<String, Slice>,
    pub(super) sources: BTreeMap<String, Slice>,
    pub(super) cost: i64,
}

fn up(map: &mut BTreeMap<String, Slice>, key: &str, e: &Entry) {
    let slice = map.entry(key.to_string()).or_default();
    slice.ids.insert(e.id.clone());
    slice.cost += micros(e.cost_usd);
}

fn down(map: &mut BTreeMap<String, Slice>, key: &str, e: &Entry) {
    if let Some(slice) = map.get_mut(key) {
        slice.ids.remove(&e.id);
        slice.cost -= micros(e.cost_usd);
        if slice.ids.is_empty() {
            map.remove(key);
        }
    }
}

fn count_up(map: &mut BTreeMap<String, usize>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn count_down(map: &mut BTreeMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Aggregates {
    pub(super) fn add(&mut self, e: &Entry) {
        let day = self.days.entry(e.day()).or_default();
        count_up(&mut day.by_outcome, &e.outcome);
        day.spend += micros(e.cost_usd);
        up(&mut self.goals, &e.goal, e);
        up(&mut self.outcomes, &e.outcome, e);
        up(&mut self.sources, &e.source, e);
        self.cost += micros(e.cost_usd);
    }

    pub(super) fn sub(&mut self, e: &Entry) {
        let date = e.day();
        if let Some(day) = self.days.get_mut(&date) {
            count_down(&mut day.by_outcome, &e.outcome);
            day.spend -= micros(e.cost_usd);
            if day.by_outcome.is_empty() {
                self.days.remove(&date);
            }
        }
        down(&mut self.goals, &e.goal, e);
        down(&mut self.outcomes, &e.outcome, e);
        down(&mut self.sources, &e.source, e);
        self.cost -= micros(e.cost_usd);
    }
}

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayStats {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Runs that started that day, by outcome (only outcomes that occurred).
    pub by_outcome: BTreeMap<String, usize>,
    pub runs: usize,
    pub spend_usd: f64,
}

impl Catalog {
    /// The `n` days ending with `last` (oldest first), each with its runs by outcome and spend;
    /// days without runs are there with zeros.
    pub fn days(&self, last: Date, n: usize) -> Vec<DayStats> {
        let mut out = Vec::with_capacity(n);
        let mut date = last;
        for _ in 0..n {
            let day = self.agg.days.get(&date).cloned().unwrap_or_default();
            out.push(DayStats {
                date: format!(
                    "{:04}-{:02}-{:02}",
                    date.year(),
                    u8::from(date.month()),
                    date.day()
                ),
                runs: day.by_outcome.values().sum(),
                by_outcome: day.by_outcome,
                spend_usd: usd(day.spend),
            });
            match date.previous_day() {
                Some(d) => date = d,
                None => break,
            }
        }
        out.reverse();
        out
    }
}
