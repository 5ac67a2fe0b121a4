//! The runs page's charts, drawn on the server as inline SVG (no chart library in the browser):
//! the last days' runs as bars stacked by outcome, and their spend against the daily budget.
//! Each bar and segment carries a `<title>` (and `data-` attributes) with its day, counts and
//! amounts, every bar its total as text, and the legend names each colour, so that the charts
//! read without colour and scripts can check them. Colours are presentation attributes, which
//! the page's Content-Security-Policy allows (inline styles it does not).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::runs_table::esc;
use crate::engine::catalog::DayStats;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 28.0;

/// Outcomes in stacking order (bottom first), with their colours; others follow in grey.
const OUTCOMES: &[(&str, &str)] = &[
    ("ok", "#2e7d32"),
    ("fixed", "#1565c0"),
    ("no_action", "#9e9e9e"),
    ("aborted", "#ef6c00"),
    ("escalated", "#8e24aa"),
    ("failed", "#b3261e"),
    ("cancelled", "#6d4c41"),
    ("crashed", "#212121"),
    ("running", "#f9a825"),
];
const OTHER: &str = "#607d8b";

fn colour(outcome: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or(OTHER, |(_, c)| c)
}

/// Outcomes that occur in `days`, in stacking order.
fn outcomes_in(days: &[DayStats]) -> Vec<String> {
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for d in days {
        for o in d.by_outcome.keys() {
            seen.insert(o.clone(), ());
        }
    }
    let mut out: Vec<String> = OUTCOMES
        .iter()
        .filter(|(o, _)| seen.contains_key(*o))
        .map(|(o, _)| o.to_string())
        .collect();
    out.extend(
        seen.into_keys()
            .filter(|o| !OUTCOMES.iter().any(|(k, _)| k == o)),
    );
    out
}

/// The frame every chart shares: the opening tag, the y axis from 0 to `max` (labelled with
/// `label`), and the x labels (`MM-DD` every fifth day and the last).
fn frame(out: &mut String, title: &str, days: &[DayStats], max_label: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" class="chart"><title>{t}</title>"#,
        t = esc(title)
    );
    let (x0, y0, y1) = (LEFT, HEIGHT - BOTTOM, TOP);
    let _ = write!(
        out,
        r##"<line x1="{x0}" y1="{y0}" x2="{x2}" y2="{y0}" stroke="#888"/><line x1="{x0}" y1="{y1}" x2="{x2}" y2="{y1}" stroke="#ddd"/><text x="{lx}" y="{ty}" font-size="10" text-anchor="end">{m}</text><text x="{lx}" y="{by}" font-size="10" text-anchor="end">0</text>"##,
        x2 = WIDTH - RIGHT,
        lx = LEFT - 4.0,
        ty = y1 + 4.0,
        by = y0,
        m = esc(max_label)
    );
    let n = days.len();
    for (i, d) in days.iter().enumerate() {
        if i % 5 == 0 || i + 1 == n {
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{y}" font-size="10" text-anchor="middle">{l}</text>"#,
                x = slot_x(i, n) + slot(n) / 2.0,
                y = HEIGHT - BOTTOM + 14.0,
                l = esc(d.date.get(5..).unwrap_or(&d.date))
            );
        }
    }
}

fn slot(n: usize) -> f64 {
    (WIDTH - LEFT - RIGHT) / n.max(1) as f64
}

fn slot_x(i: usize, n: usize) -> f64 {
    LEFT + slot(n) * i as f64
}

fn plot_h() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// Runs per day, stacked by outcome.
pub(super) fn runs_by_outcome(days: &[DayStats]) -> String {
    let max = days.iter().map(|d| d.runs).max().unwrap_or(0).max(1);
    let mut out = String::with_capacity(8 * 1024);
    frame(&mut out, "Runs per day by outcome", days, &max.to_string());
    let order = outcomes_in(days);
    let n = days.len();
    let (w, base) = (slot(n) * 0.7, HEIGHT - BOTTOM);
    for (i, d) in days.iter().enumerate() {
        let x = slot_x(i, n) + slot(n) * 0.15;
        let parts: Vec<String> = order
            .iter()
            .filter_map(|o| d.by_outcome.get(o).map(|c| format!("{c} {o}")))
            .collect();
        let summary = if parts.is_empty() {
            format!("{}: no runs", d.date)
        } else {
            format!("{}: {} runs: {}", d.date, d.runs, parts.join(", "))
        };
        let _ = write!(
            out,
            r#"<g class="day" data-day="{day}" data-runs="{r}"><title>{s}</title>"#,
            day = esc(&d.date),
            r = d.runs,
            s = esc(&summary)
        );
        let mut y = base;
        for o in &order {
            let Some(&count) = d.by_outcome.get(o) else {
                continue;
            };
            let h = count as f64 / max as f64 * plot_h();
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="seg" data-outcome="{o}" data-count="{count}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{day}: {count} {o}</title></rect>"#,
                o = esc(o),
                c = colour(o),
                day = esc(&d.date)
            );
        }
        if d.runs > 0 {
            let _ = write!(
                out,
                r#"<text x="{tx:.1}" y="{ty:.1}" font-size="9" text-anchor="middle">{r}</text>"#,
                tx = x + w / 2.0,
                ty = y - 2.0,
                r = d.runs
            );
        }
        out.push_str("</g>");
    }
    legend(&mut out, &order);
    out.push_str("</svg>");
    out
}

/// The legend along the top: a swatch and the name of each outcome shown.
fn legend(out: &mut String, order: &[String]) {
    let mut x = LEFT;
    for o in order {
        let _ = write!(
            out,
            r#"<g class="legend"><rect x="{x:.1}" y="2" width="9" height="9" fill="{c}"/><text x="{tx:.1}" y="10" font-size="10">{o}</text></g>"#,
            c = colour(o),
            tx = x + 12.0,
            o = esc(o)
        );
        x += 16.0 + 6.5 * o.len() as f64;
    }
}

/// Spend per day against the daily budget (a dashed line); days over it are drawn red.
pub(super) fn spend(days: &[DayStats], budget: f64) -> String {
    let top = days
        .iter()
        .map(|d| d.spend_usd)
        .fold(budget, f64::max)
        .max(0.01)
        * 1.1;
    let mut out = String::with_capacity(8 * 1024);
    frame(
        &mut out,
        &format!("Spend per day against the daily budget of ${budget:.2}"),
        days,
        &format!("${top:.2}"),
    );
    let n = days.len();
    let (w, base) = (slot(n) * 0.7, HEIGHT - BOTTOM);
    for (i, d) in days.iter().enumerate() {
        let over = d.spend_usd > budget;
        let h = d.spend_usd / top * plot_h();
        let title = format!(
            "{}: ${:.4} of the ${budget:.2} daily budget{}",
            d.date,
            d.spend_usd,
            if over { " (over budget)" } else { "" }
        );
        let _ = write!(
            out,
            r##"<rect class="spend" data-day="{day}" data-usd="{usd:.6}" data-over="{over}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{t}</title></rect>"##,
            day = esc(&d.date),
            usd = d.spend_usd,
            x = slot_x(i, n) + slot(n) * 0.15,
            y = base - h,
            c = if over { "#b3261e" } else { "#2f5d8a" },
            t = esc(&title)
        );
    }
    let by = base - budget / top * plot_h();
    let _ = write!(
        out,
        r##"<line class="budget" x1="{LEFT}" y1="{by:.1}" x2="{x2}" y2="{by:.1}" stroke="#9a6700" stroke-dasharray="5 3"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end">daily budget ${budget:.2}</text>"##,
        x2 = WIDTH - RIGHT,
        tx = WIDTH - RIGHT,
        ty = by - 3.0
    );
    out.push_str("</svg>");
    out
}

/// The charts' part of the runs page: both charts, and the same numbers as a table (for
/// readers without the pictures).
pub(super) fn section(days: &[DayStats], budget: f64) -> String {
    let mut out = String::with_capacity(48 * 1024);
    let _ = write!(
        out,
        r#"<figure id="chart-runs">{}</figure><figure id="chart-spend">{}</figure>"#,
        runs_by_outcome(days),
        spend(days, budget)
    );
    let _ = write!(
        out,
        r#"<details><summary>The charts as a table</summary><table id="days"><thead><tr><th>Day</th><th>Runs</th><th>By outcome</th><th>Spend (budget ${budget:.2})</th></tr></thead><tbody>"#
    );
    for d in days.iter().rev().filter(|d| d.runs > 0) {
        let by: Vec<String> = outcomes_in(std::slice::from_ref(d))
            .iter()
            .map(|o| format!("{} {}", d.by_outcome.get(o).copied().unwrap_or(0), esc(o)))
            .collect();
        let _ = write!(
            out,
            r#"<tr data-day="{day}"><td>{day}</td><td>{r}</td><td>{by}</td><td>${s:.4}</td></tr>"#,
            day = esc(&d.date),
            r = d.runs,
            by = by.join(", "),
            s = d.spend_usd
        );
    }
    out.push_str("</tbody></table></details>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, outcomes: &[(&str, usize)], spend: f64) -> DayStats {
        let by_outcome: BTreeMap<String, usize> =
            outcomes.iter().map(|(o, n)| (o.to_string(), *n)).collect();
        DayStats {
            date: date.into(),
            runs: by_outcome.values().sum(),
            by_outcome,
            spend_usd: spend,
        }
    }

    #[test]
    fn bars_stack_by_outcome_and_read_without_colour() {
        let days = [
            day("2026-11-01", &[("ok", 3), ("failed", 1)], 0.5),
            day("2026-11-02", &[], 0.0),
            day("2026-11-03", &[("weird<x>", 2)], 7.0),
        ];
        let svg = runs_by_outcome(&days);
        assert_eq!(svg.matches("<rect class=\"seg\"").count(), 3);
        assert!(
            svg.contains("<title>2026-11-01: 4 runs: 3 ok, 1 failed</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>2026-11-02: no runs</title>"));
        assert!(svg.contains("weird&lt;x&gt;") && !svg.contains("weird<x>"));
        // The tallest bar reaches the top of the plot.
        assert!(
            svg.contains(&format!(
                "data-count=\"3\" x=\"{:.1}\" y=\"{:.1}\"",
                LEFT + slot(3) * 0.15,
                TOP + plot_h() / 4.0
            )),
            "{svg}"
        );
        let spend = spend(&days, 5.0);
        assert_eq!(spend.matches("data-over=\"true\"").count(), 1);
        assert!(spend.contains("2026-11-03: $7.0000 of the $5.00 daily budget (over budget)"));
        assert!(spend.contains("daily budget $5.00"));
    }
}
