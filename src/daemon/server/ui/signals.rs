//! `GET /signals`: recent signals with their routing decisions and reasons, newest first, from
//! the event log ([`crate::daemon::signal_log`]: the newest day file backwards, stopping at the
//! page size), filtered by source and decision, each linked to the run it started. `before`
//! (the last row's time) is the cursor to older signals.

use axum::Router as HttpRouter;
use axum::extract::{Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::runs::encode;
use super::session::Session;
use super::{UiState, templates};
use crate::daemon::signal_log::{self, Filter};

const PAGE: usize = 100;
const MAX_PAGE: usize = 500;
/// The decisions the router makes (`RoutingDecision::name`), for the filter menu.
const DECISIONS: &[&str] = &[
    "enqueue",
    "merged",
    "cooldown",
    "rate_limited",
    "over_budget",
    "flapping",
    "maintenance",
    "resolved",
];

pub(super) fn routes() -> HttpRouter<UiState> {
    HttpRouter::new().route("/signals", get(page))
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub(super) struct Params {
    #[serde(default)]
    source: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    limit: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Params {
    fn filter(&self) -> Result<Filter, String> {
        let limit = match some(&self.limit) {
            None => PAGE,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| format!("`limit` must be a whole number, not `{s}`"))?
                .clamp(1, MAX_PAGE),
        };
        Ok(Filter {
            source: some(&self.source),
            decision: some(&self.decision),
            before: some(&self.before),
            limit,
        })
    }

    /// The next (older) page: the same filters before `time`.
    fn older(&self, time: &str) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("source", &self.source),
            ("decision", &self.decision),
            ("limit", &self.limit),
        ] {
            if !v.trim().is_empty() {
                parts.push(format!("{k}={}", encode(v.trim())));
            }
        }
        parts.push(format!("before={}", encode(time)));
        format!("/signals?{}", parts.join("&"))
    }
}

async fn page(
    State(state): State<UiState>,
    session: Session,
    UrlQuery(params): UrlQuery<Params>,
) -> Response {
    let filter = match params.filter() {
        Ok(f) => f,
        Err(why) => {
            return state.message(StatusCode::BAD_REQUEST, Some(&session), "Bad filter", &why);
        }
    };
    let ledger = state.shared.ledger.clone();
    let read = {
        let filter = filter.clone();
        tokio::task::spawn_blocking(move || signal_log::recent(&ledger, &filter)).await
    };
    let recent = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!("the signals page cannot read the event log: {e}");
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Signals",
                &format!("the event log cannot be read: {e}"),
            );
        }
        Err(e) => {
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Signals",
                &format!("reading the event log failed: {e}"),
            );
        }
    };
    let mut ctx = templates::context(Some(&session));
    let older = (recent.rows.len() >= filter.limit)
        .then(|| recent.rows.last().map(|r| params.older(&r.time)))
        .flatten();
    ctx.insert("rows", &recent.rows);
    ctx.insert("complete", &recent.complete);
    ctx.insert("older", &older);
    ctx.insert("filters", &params);
    ctx.insert("decisions", DECISIONS);
    ctx.insert("searched_mib", &(signal_log::MAX_BYTES / (1024 * 1024)));
    state.render("signals.html", &ctx)
}
