//! `GET /`: the runs list. Newest first, filtered by goal, outcome, source and start days (a GET
//! form, so a filtered view is a link), with the matching runs' count and cost, pagination, and
//! above it the last 30 days as two server-drawn charts ([`super::chart`]): runs by outcome and
//! spend against the daily budget. Everything comes from the run catalog
//! ([`crate::engine::catalog`]), kept current by a `stat` per request: the page costs the same
//! with 10,000 recorded runs as with 10.

use std::sync::Arc;

use axum::Router as HttpRouter;
use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::session::Session;
use super::{UiState, chart, templates};
use crate::daemon::server::shared::Shared;
use crate::engine::catalog::{Catalog, CatalogError, Menus, Page, Query};

/// Rows per page unless `limit` says otherwise, and the most it may say.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// Days in the charts.
const DAYS: usize = 30;

pub(super) fn routes() -> HttpRouter<UiState> {
    HttpRouter::new().route("/", get(page))
}

/// At start, when the page is on: the catalog is opened (a rebuild can take seconds with many
/// runs) before anyone asks for it, on a blocking thread.
pub(in crate::daemon::server) fn warm(shared: &Arc<Shared>) {
    if shared.ui.is_none() {
        return;
    }
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = with_catalog(&shared, |_| ()) {
            tracing::error!("cannot open the run catalog: {e}");
        }
    });
}

/// The catalog as the daemon keeps it, with the charts drawn from it: they change only when
/// the catalog does (or the day, or the budget), so they are drawn once per change, not per
/// request.
pub(in crate::daemon::server) struct Cached {
    catalog: Catalog,
    charts: Option<(ChartKey, Arc<str>)>,
}

/// What the charts depend on: the catalog's version, the last day shown, the budget.
type ChartKey = (u64, time::Date, u64);

impl Cached {
    fn charts(&mut self, today: time::Date, budget: f64) -> Arc<str> {
        let key = (self.catalog.version(), today, budget.to_bits());
        match &self.charts {
            Some((k, html)) if *k == key => html.clone(),
            _ => {
                let html: Arc<str> = chart::section(&self.catalog.days(today, DAYS), budget).into();
                self.charts = Some((key, html.clone()));
                html
            }
        }
    }
}

/// Runs `f` on the current catalog (opened on first use, refreshed otherwise).
pub(in crate::daemon::server) fn with_catalog<T>(
    shared: &Shared,
    f: impl FnOnce(&mut Cached) -> T,
) -> Result<T, CatalogError> {
    let mut guard = shared
        .catalog
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cached = match guard.as_mut() {
        Some(c) => {
            c.catalog.refresh()?;
            c
        }
        None => guard.insert(Cached {
            catalog: Catalog::open(&shared.ledger)?,
            charts: None,
        }),
    };
    Ok(f(cached))
}

/// The form's fields, as given (empty means no filter).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub(super) struct Params {
    #[serde(default)]
    goal: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    offset: String,
    #[serde(default)]
    limit: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn date(field: &str, s: &str) -> Result<Option<time::Date>, String> {
    let Some(s) = some(s) else { return Ok(None) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(&s, &format)
        .map(Some)
        .map_err(|_| format!("`{field}` must be a day as YYYY-MM-DD, not `{s}`"))
}

fn number(field: &str, s: &str, default: usize) -> Result<usize, String> {
    match some(s) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("`{field}` must be a whole number, not `{s}`")),
    }
}

impl Params {
    fn query(&self) -> Result<Query, String> {
        Ok(Query {
            goal: some(&self.goal),
            outcome: some(&self.outcome),
            source: some(&self.source),
            since: date("since", &self.since)?,
            until: date("until", &self.until)?,
            offset: number("offset", &self.offset, 0)?,
            limit: number("limit", &self.limit, PAGE)?.clamp(1, MAX_PAGE),
        })
    }

    /// This view's URL at another offset (the filters kept).
    fn at(&self, offset: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("goal", &self.goal),
            ("outcome", &self.outcome),
            ("source", &self.source),
            ("since", &self.since),
            ("until", &self.until),
            ("limit", &self.limit),
        ] {
            if !v.trim().is_empty() {
                parts.push(format!("{k}={}", encode(v.trim())));
            }
        }
        if offset > 0 {
            parts.push(format!("offset={offset}"));
        }
        if parts.is_empty() {
            "/".to_string()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }
}

/// Percent-encoding for a query value (unreserved characters kept).
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one request reads from the catalog (under its lock, then rendered outside it).
struct View {
    page: Page,
    menus: Menus,
    charts: Arc<str>,
    runs: usize,
}

async fn page(
    State(state): State<UiState>,
    session: Session,
    UrlQuery(params): UrlQuery<Params>,
) -> Response {
    let q = match params.query() {
        Ok(q) => q,
        Err(why) => {
            return state.message(StatusCode::BAD_REQUEST, Some(&session), "Bad filter", &why);
        }
    };
    let today = OffsetDateTime::now_utc().date();
    let budget = state.shared.config().router.daily_budget_usd;
    let view = with_catalog(&state.shared, |c| View {
        charts: c.charts(today, budget),
        page: c.catalog.page(&q),
        menus: c.catalog.menus(),
        runs: c.catalog.len(),
    });
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("the runs page cannot read the run catalog: {e}");
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Runs",
                &format!("the run catalog cannot be read: {e}"),
            );
        }
    };
    let ctx = context(&session, &params, &q, &view);
    state.render("runs.html", &ctx)
}

fn context(session: &Session, params: &Params, q: &Query, v: &View) -> tera::Context {
    let mut ctx = templates::context(Some(session));
    let p = &v.page;
    let rows = &p.entries;
    ctx.insert("rows", &super::runs_table::rows(rows));
    ctx.insert("total", &p.total);
    ctx.insert("total_cost", &format!("${:.4}", p.cost_usd));
    ctx.insert("first", &(p.offset + 1).min(p.total));
    ctx.insert("last", &(p.offset + rows.len()));
    ctx.insert("recorded", &v.runs);
    let newer = (q.offset > 0).then(|| params.at(q.offset.saturating_sub(q.limit)));
    let older = (p.offset + rows.len() < p.total).then(|| params.at(p.offset + q.limit));
    ctx.insert("newer", &newer);
    ctx.insert("older", &older);
    ctx.insert("filters", params);
    ctx.insert("menus", &v.menus);
    ctx.insert("charts", &*v.charts);
    ctx.insert("days_shown", &DAYS);
    ctx
}
