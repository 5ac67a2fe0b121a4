//! The runs page's table rows, written straight into HTML (every value escaped): the one part
//! of the page that grows with its size, so it is not walked by the template engine row by row
//! and field by field.

use std::fmt::Write;

use crate::engine::catalog::Entry;

/// Text for HTML: `&`, `<`, `>`, quotes escaped.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `<tr>` of each entry: start (linking to `/runs/ID`), goal, subject, source, outcome,
/// cost, duration, and what the run filed.
pub(super) fn rows(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(entries.len() * 640);
    for e in entries {
        let t = e.started.to_offset(time::UtcOffset::UTC);
        let id = esc(&e.id);
        let outcome = esc(&e.outcome);
        let _ = write!(
            out,
            "<tr data-run=\"{id}\">\n<td><a href=\"/runs/{id}\">{:04}-{:02}-{:02} {:02}:{:02}:{:02}</a></td>\n\
             <td>{}</td><td>{}</td><td>{}</td>\n<td><span class=\"pill {outcome}\">{outcome}</span></td>\n\
             <td class=\"cost\">${:.4}</td><td>{:.1}s</td>\n<td>",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            esc(&e.goal),
            esc(&e.subject),
            esc(&e.source),
            e.cost_usd,
            e.duration_ms as f64 / 1000.0,
        );
        if let Some(c) = &e.change {
            let _ = write!(out, "change {}", esc(c));
        }
        if e.actions > 0 {
            let sep = if e.change.is_some() { ", " } else { "" };
            let _ = write!(out, "{sep}{} action(s)", e.actions);
        }
        out.push_str("</td>\n</tr>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_escaped() {
        let e = Entry {
            id: "20261101T000000Z-g-1".into(),
            goal: "<g>".into(),
            subject: "a&b".into(),
            source: "\"s\"".into(),
            outcome: "ok".into(),
            cost_usd: 0.01,
            started: time::macros::datetime!(2026-11-01 00:00:00 UTC),
            finished: time::macros::datetime!(2026-11-01 00:00:02 UTC),
            duration_ms: 2500,
            change: Some("c1".into()),
            actions: 2,
        };
        let html = rows(&[e]);
        assert!(
            html.contains("<td>&lt;g&gt;</td><td>a&amp;b</td><td>&quot;s&quot;</td>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/runs/20261101T000000Z-g-1\">2026-11-01 00:00:00</a>"));
        assert!(html.contains("<td class=\"cost\">$0.0100</td><td>2.5s</td>"));
        assert!(html.contains("change c1, 2 action(s)"));
    }
}
