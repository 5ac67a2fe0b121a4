//! How a change reads for a person: one line in a list, the whole record with its diff, and
//! the plan shown before an approval. The diff is coloured only when stdout is a terminal and
//! `NO_COLOR` is unset.

use serde_json::Value;
use time::OffsetDateTime;

use super::super::CliError;
use super::super::output::stdout_colour;
use super::to_object;
use crate::engine::change::approve::rfc3339;
use crate::engine::change::diff::Diff;
use crate::engine::change::record::{
    ChangeRecord, RollbackTarget, Step, Validation, ValidatorSource,
};

/// Characters of the intent a list line keeps.
const INTENT_IN_LIST: usize = 60;
/// Lines of a validator's or step's output shown (its end: where errors are).
const OUTPUT_LINES: usize = 8;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// `id  state  age  goal  subject  N files +A -R  intent`.
pub(super) fn print_line(r: &ChangeRecord, now: OffsetDateTime) -> Result<(), CliError> {
    let added: u64 = r.files.iter().map(|f| f.added).sum();
    let removed: u64 = r.files.iter().map(|f| f.removed).sum();
    crate::outln!(
        "{}  {:<11}  {:>4}  {}  {}  {} file(s) +{added} -{removed}  {}",
        r.id,
        r.state.as_str(),
        age(now - r.created),
        r.goal,
        r.subject,
        r.files.len(),
        cut(&r.intent, INTENT_IN_LIST)
    )
}

/// `45s`, `12m`, `3h`, `9d`.
fn age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// The first line of `text`, at most `max` characters (`…` when cut).
fn cut(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    let mut out: String = first.chars().take(max).collect();
    if first.chars().count() > max || text.trim().lines().count() > 1 {
        out.push('…');
    }
    out
}

/// The record plus the diff as git has it now (`--json`).
pub(super) fn json(
    rec: &ChangeRecord,
    diff: &Result<Diff, String>,
) -> Result<serde_json::Map<String, Value>, CliError> {
    let mut v = to_object(rec)?;
    match diff {
        Ok(d) => {
            v.insert("diff".into(), d.text.clone().into());
            v.insert("diff_truncated".into(), d.truncated.into());
            // `null`: the record has no digest (the change never passed steward's checks).
            let matches = (!rec.diff_sha256.is_empty()).then(|| d.diff_sha256 == rec.diff_sha256);
            v.insert("diff_matches".into(), matches.into());
        }
        Err(e) => {
            v.insert("diff".into(), Value::Null);
            v.insert("diff_truncated".into(), false.into());
            v.insert("diff_error".into(), e.clone().into());
        }
    }
    Ok(v)
}

/// The whole record, then the diff.
pub(super) fn print(rec: &ChangeRecord, diff: &Result<Diff, String>) -> Result<(), CliError> {
    print_head(rec)?;
    print_validation(&rec.validation)?;
    print_effects(rec)?;
    print_history(rec)?;
    print_steps(&rec.steps)?;
    print_diff(rec, diff)
}

fn print_head(rec: &ChangeRecord) -> Result<(), CliError> {
    crate::outln!("change {}: {}", rec.id, rec.state)?;
    if !rec.reason.is_empty() {
        crate::outln!("  reason:  {}", rec.reason)?;
    }
    let mut intent = rec.intent.trim_end().lines();
    crate::outln!("  intent:  {}", intent.next().unwrap_or(""))?;
    for line in intent {
        crate::outln!("           {line}")?;
    }
    crate::outln!(
        "  goal:    {}   run: {}   subject: {}",
        rec.goal,
        rec.run,
        rec.subject
    )?;
    crate::outln!(
        "  branch:  {}: {} → {}",
        rec.branch,
        short(&rec.base),
        short(&rec.head)
    )?;
    crate::outln!(
        "  workspace: {}{}",
        rec.workspace.display(),
        rec.workspace_branch
            .as_deref()
            .map(|b| format!(" (branch {b})"))
            .unwrap_or_else(|| " (detached HEAD)".into())
    )?;
    crate::outln!("  profile: {}", profile_name(rec))?;
    crate::outln!("  files ({}):", rec.files.len())?;
    for f in &rec.files {
        let from = f
            .old_path
            .as_deref()
            .map(|p| format!(" (from {p})"))
            .unwrap_or_default();
        let counts = if f.binary {
            "binary".to_string()
        } else {
            format!("+{} -{}", f.added, f.removed)
        };
        crate::outln!("    {:<12} {}{from}  {counts}", f.status, f.path)?;
    }
    Ok(())
}

fn profile_name(rec: &ChangeRecord) -> String {
    let name = serde_json::to_value(rec.profile)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match (&rec.apply, &rec.rollback) {
        (Some(a), Some(r)) => format!(
            "{name} (apply `{}`, rollback `{}`)",
            a.join(" "),
            r.join(" ")
        ),
        _ => name,
    }
}

fn print_validation(validation: &[Validation]) -> Result<(), CliError> {
    if validation.is_empty() {
        return crate::outln!("  validation: none ran");
    }
    crate::outln!("  validation:")?;
    for v in validation {
        let exit = v.exit_code.map_or("-".to_string(), |c| c.to_string());
        crate::outln!(
            "    round {} {:<6} `{}` ({}, exit {exit}, {} ms{}){}",
            v.round,
            if v.passed { "passed" } else { "FAILED" },
            v.argv.join(" "),
            match v.source {
                ValidatorSource::Goal => "the goal's",
                ValidatorSource::Profile => "the profile's",
            },
            v.duration_ms,
            if v.timed_out { ", timed out" } else { "" },
            v.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )?;
        print_tail(&v.output, "      ")?;
    }
    Ok(())
}

/// The last [`OUTPUT_LINES`] lines of `text`, indented.
fn print_tail(text: &str, indent: &str) -> Result<(), CliError> {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(OUTPUT_LINES);
    if start > 0 {
        crate::outln!("{indent}[… {start} line(s) before]")?;
    }
    lines[start..]
        .iter()
        .try_for_each(|l| crate::outln!("{indent}{l}"))
}

/// Artefacts, blast radius, rollback target, post-checks, expiry.
fn print_effects(rec: &ChangeRecord) -> Result<(), CliError> {
    let a = &rec.artefacts;
    if a.is_empty() {
        crate::outln!("  artefacts: none (the profile builds or plans nothing)")?;
    } else {
        crate::outln!("  artefacts:")?;
        for (host, path) in &a.store_paths {
            crate::outln!("    store path of {host}: {path}")?;
        }
        for (job, index) in &a.nomad_modify_index {
            crate::outln!("    Nomad job modify index of {job}: {index}")?;
        }
        for (file, sha) in &a.compose_config_sha256 {
            crate::outln!("    compose config of {file}: sha256 {sha}")?;
        }
    }
    print_blast_radius(rec)?;
    crate::outln!("  rollback to: {}", rollback_text(&rec.rollback_target))?;
    crate::outln!(
        "  post-checks: {}",
        if rec.post_checks.is_empty() {
            "(none)".to_string()
        } else {
            rec.post_checks.join(", ")
        }
    )?;
    crate::outln!(
        "  created {}, expires {}",
        rfc3339(rec.created),
        rfc3339(rec.expires)
    )
}

fn print_blast_radius(rec: &ChangeRecord) -> Result<(), CliError> {
    let b = &rec.blast_radius;
    if b.units.is_empty()
        && b.nomad.is_empty()
        && b.compose_services.is_empty()
        && b.notes.is_empty()
    {
        return crate::outln!("  blast radius: nothing reported by the profile");
    }
    crate::outln!("  blast radius:")?;
    // What the profile could not tell (NixOS units before approval): unknown, not "nothing".
    for note in &b.notes {
        crate::outln!("    note: {note}")?;
    }
    if !b.units.is_empty() {
        crate::outln!("    units that would restart: {}", b.units.join(", "))?;
    }
    for (job, counts) in &b.nomad {
        let text: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        crate::outln!("    Nomad job {job}: {}", text.join(", "))?;
    }
    for (file, services) in &b.compose_services {
        crate::outln!("    compose {file}: recreates {}", services.join(", "))?;
    }
    Ok(())
}

fn rollback_text(t: &RollbackTarget) -> String {
    match t {
        RollbackTarget::BaseCommit { sha } => format!("the base commit {sha}"),
        RollbackTarget::Generation { number, path } => {
            format!("system generation {number} ({path})")
        }
        RollbackTarget::JobVersions { versions } => {
            let v: Vec<String> = versions
                .iter()
                .map(|(job, n)| format!("{job} version {n}"))
                .collect();
            format!("Nomad {}", v.join(", "))
        }
    }
}

fn print_history(rec: &ChangeRecord) -> Result<(), CliError> {
    crate::outln!("  history:")?;
    for t in &rec.history {
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!(": {}", t.note)
        };
        crate::outln!("    {} {} by {}{note}", rfc3339(t.at), t.to, t.by)?;
    }
    Ok(())
}

fn print_steps(steps: &[Step]) -> Result<(), CliError> {
    if steps.is_empty() {
        return Ok(());
    }
    crate::outln!("  steps:")?;
    for s in steps {
        let exit = s.exit_code.map_or("-".to_string(), |c| c.to_string());
        crate::outln!(
            "    {} {} {:<6} `{}` (exit {exit}, {} ms)",
            rfc3339(s.started),
            s.what,
            if s.ok { "ok" } else { "FAILED" },
            s.argv.join(" "),
            s.duration_ms
        )?;
        print_tail(&s.output, "      ")?;
    }
    Ok(())
}

fn print_diff(rec: &ChangeRecord, diff: &Result<Diff, String>) -> Result<(), CliError> {
    let d = match diff {
        Ok(d) => d,
        Err(e) => return crate::outln!("  diff: cannot be read from git: {e}"),
    };
    let matches = if rec.diff_sha256.is_empty() {
        "the record has no digest: the change never passed steward's checks".to_string()
    } else if d.diff_sha256 == rec.diff_sha256 {
        "the diff that was proposed".to_string()
    } else {
        format!(
            "NOT the diff that was proposed ({}): approving refuses it",
            rec.diff_sha256
        )
    };
    crate::outln!("  diff (sha256 {}, {matches}):", d.diff_sha256)?;
    let colour = stdout_colour();
    for line in d.text.lines() {
        crate::outln!("{}", paint(line, colour))?;
    }
    if d.truncated {
        crate::outln!("[… the diff is longer; cut here]")?;
    }
    Ok(())
}

/// A diff line with its colour: removed red, added green, hunk headers cyan, file headers bold.
fn paint(line: &str, colour: bool) -> String {
    if !colour {
        return line.to_string();
    }
    let c = if line.starts_with("diff --git") || line.starts_with("+++") || line.starts_with("---")
    {
        BOLD
    } else if line.starts_with("@@") {
        CYAN
    } else if line.starts_with('+') {
        GREEN
    } else if line.starts_with('-') {
        RED
    } else {
        return line.to_string();
    };
    format!("{c}{line}{RESET}")
}

/// What applying came to: the state, why, and each step.
pub(super) fn print_applied(rec: &ChangeRecord) -> Result<(), CliError> {
    let why = if rec.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", rec.reason)
    };
    crate::outln!("{} {}{why}", rec.id, rec.state)?;
    print_steps(&rec.steps)
}

/// Exactly what approving does, before it is done.
pub(super) fn print_plan(rec: &ChangeRecord) -> Result<(), CliError> {
    let added: u64 = rec.files.iter().map(|f| f.added).sum();
    let removed: u64 = rec.files.iter().map(|f| f.removed).sum();
    crate::outln!(
        "approving {} applies {} file(s) (+{added} -{removed}) of {} through the {} profile",
        rec.id,
        rec.files.len(),
        rec.branch,
        profile_name(rec)
    )?;
    crate::outln!("  intent:      {}", cut(&rec.intent, 200))?;
    crate::outln!("  rollback to: {}", rollback_text(&rec.rollback_target))?;
    crate::outln!(
        "  then checks: {}",
        if rec.post_checks.is_empty() {
            "(none)".to_string()
        } else {
            rec.post_checks.join(", ")
        }
    )?;
    crate::outln!(
        "  (re-checked first: the workspace HEAD, the branch, the diff's digest and the \
         artefacts; anything changed makes it stale)"
    )
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_are_coloured_only_when_asked() {
        assert_eq!(paint("+a", false), "+a");
        assert_eq!(paint("+a", true), "\x1b[32m+a\x1b[0m");
        assert_eq!(paint("-a", true), "\x1b[31m-a\x1b[0m");
        assert_eq!(paint("@@ -1 +1 @@", true), "\x1b[36m@@ -1 +1 @@\x1b[0m");
        assert_eq!(paint("+++ b/x", true), "\x1b[1m+++ b/x\x1b[0m");
        assert_eq!(paint(" ctx", true), " ctx");
    }

    #[test]
    fn ages_and_cut_intents() {
        assert_eq!(age(time::Duration::seconds(59)), "59s");
        assert_eq!(age(time::Duration::hours(3)), "3h");
        assert_eq!(age(time::Duration::days(9)), "9d");
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("a longer line", 4), "a lo…");
        assert_eq!(cut("one\ntwo", 10), "one…");
    }
}
