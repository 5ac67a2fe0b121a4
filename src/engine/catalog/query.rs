//! The runs list's questions: a page of entries newest first with filters (goal, outcome,
//! source, a time range of start days), its totals, and the filter menus. Without filters, or with
//! one field filter and no days, the totals are running ones and a page reads only its own rows;
//! otherwise the walk is bounded by the smallest field's runs, or by the ids of the days asked for
//! (ids begin with the start stamp).

use serde::Serialize;
use time::Date;

use super::days::usd;
use super::{Catalog, Entry};

/// What a page asks for. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub goal: Option<String>,
    pub outcome: Option<String>,
    pub source: Option<String>,
    /// Runs that started on or after this UTC day.
    pub since: Option<Date>,
    /// Runs that started on or before this UTC day.
    pub until: Option<Date>,
    pub offset: usize,
    pub limit: usize,
}

impl Query {
    fn filters_fields(&self) -> bool {
        self.goal.is_some() || self.outcome.is_some() || self.source.is_some()
    }

    fn matches(&self, e: &Entry) -> bool {
        self.goal.as_deref().is_none_or(|g| g == e.goal)
            && self.outcome.as_deref().is_none_or(|o| o == e.outcome)
            && self.source.as_deref().is_none_or(|s| s == e.source)
    }
}

/// One page of the runs list.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Runs matching the filters, and what they cost.
    pub total: usize,
    pub cost_usd: f64,
    pub offset: usize,
    pub limit: usize,
}

/// The distinct values to filter by.
#[derive(Debug, Clone, Serialize)]
pub struct Menus {
    pub goals: Vec<String>,
    pub outcomes: Vec<String>,
    pub sources: Vec<String>,
}

/// `YYYYMMDD` of a day: the prefix of the ids of runs started on it.
fn id_prefix(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Catalog {
    pub fn page(&self, q: &Query) -> Page {
        let mut page = Page {
            entries: Vec::with_capacity(q.limit.min(1000)),
            total: 0,
            cost_usd: 0.0,
            offset: q.offset,
            limit: q.limit,
        };
        if !q.filters_fields() && q.since.is_none() && q.until.is_none() {
            page.total = self.entries.len();
            page.cost_usd = usd(self.agg.cost);
            page.entries = self
                .entries
                .values()
                .rev()
                .skip(q.offset)
                .take(q.limit)
                .cloned()
                .collect();
            return page;
        }
        let Some(slices) = self.slices(q) else {
            return page;
        };
        // One field filter and no time range: the slice's own count and cost.
        if let ([only], None, None) = (slices.as_slice(), q.since, q.until) {
            page.total = only.ids.len();
            page.cost_usd = usd(only.cost);
            page.entries = only
                .ids
                .iter()
                .rev()
                .skip(q.offset)
                .take(q.limit)
                .filter_map(|id| self.entries.get(id).cloned())
                .collect();
            return page;
        }
        let lo = q.since.map(id_prefix).unwrap_or_default();
        let hi = q.until.and_then(Date::next_day).map(id_prefix);
        if hi.as_ref().is_some_and(|hi| *hi <= lo) {
            return page;
        }
        let in_range = |id: &String| *id >= lo && hi.as_ref().is_none_or(|hi| id < hi);
        // The smallest slice bounds the walk; without one, the range of days.
        let ids: Box<dyn Iterator<Item = &String>> = match slices.iter().min_by_key(|s| s.ids.len())
        {
            Some(s) => Box::new(s.ids.iter().rev().filter(|id| in_range(id))),
            None => match &hi {
                Some(hi) => Box::new(
                    self.entries
                        .range(lo.clone()..hi.clone())
                        .rev()
                        .map(|(k, _)| k),
                ),
                None => Box::new(self.entries.range(lo.clone()..).rev().map(|(k, _)| k)),
            },
        };
        let mut cost = 0i64;
        for e in ids
            .filter_map(|id| self.entries.get(id))
            .filter(|e| q.matches(e))
        {
            if page.total >= q.offset && page.entries.len() < q.limit {
                page.entries.push(e.clone());
            }
            page.total += 1;
            cost += super::days::micros(e.cost_usd);
        }
        page.cost_usd = usd(cost);
        page
    }

    /// The slices of the fields filtered on; `None` when a value has no runs at all.
    fn slices(&self, q: &Query) -> Option<Vec<&super::days::Slice>> {
        let mut out = Vec::new();
        for (want, map) in [
            (&q.goal, &self.agg.goals),
            (&q.outcome, &self.agg.outcomes),
            (&q.source, &self.agg.sources),
        ] {
            if let Some(v) = want {
                out.push(map.get(v)?);
            }
        }
        Some(out)
    }

    pub fn menus(&self) -> Menus {
        let keys = |m: &std::collections::BTreeMap<String, super::days::Slice>| {
            m.keys().cloned().collect()
        };
        Menus {
            goals: keys(&self.agg.goals),
            outcomes: keys(&self.agg.outcomes),
            sources: keys(&self.agg.sources),
        }
    }
}
