//! Every definition file (goals, probes and checks, knowledge notes) as the configuration sees
//! it, loaded file by file. A broken file is recorded with its location and left out; only the
//! goals that use it fail, each with the error, and everything else still loads and runs.
//!
//! What "uses" means, since a broken file cannot say what it would have defined:
//! - a goal's own file is broken: the goal fails;
//! - a goal names a probe or check (by name) that a broken context file may define (its text
//!   holds the name as a string, or it could not be read at all): the goal fails, even if another
//!   file defines the name too (which of the two was meant cannot be known);
//! - a goal selects checks by `*` or `tag:X` and a broken context file may hold such checks: the
//!   goal fails, because a safety check must never drop out silently;
//! - a goal selects probes by `*` or `tag:X`: the goal runs without the broken file's probes.
//!   Probes only observe; the broken file is logged and recorded in the run.
//!
//! Every error reads `FILE:LINE:COL: message`. Names a goal refers to (probes, checks) are
//! resolved here, at load, so an unknown name is an error with the goal file's line and column
//! wherever goals are loaded (`goals list`, `doctor`, a run), not only when the goal runs.

use serde::Serialize;

use crate::config::Config;
use crate::defs::bundled::{self, Kind, ReadError, SourceFile};
use crate::defs::check::{CheckError, CheckSet, Phase};
use crate::defs::goal::{self, Goal, GoalError};
use crate::defs::knowledge::{self, Note};
use crate::defs::probe::{Catalog, ProbeDefaults, ProbeError};

/// One definition file that did not load, or a goal whose references do not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// `goal`, `context` (probes and checks) or `knowledge`.
    pub kind: &'static str,
    /// The file in error.
    pub file: String,
    /// `FILE:LINE:COL: message`.
    pub error: String,
}

/// A context file that did not load.
#[derive(Debug, Clone)]
struct Broken {
    origin: String,
    /// `None` when the file could not be read: it may define anything.
    text: Option<String>,
    errors: Vec<String>,
}

impl Broken {
    /// Whether this file may define a `what` (`probe` or `check`) that `selector` (a name,
    /// `tag:X` or `*`) selects. A superset by design: the text mentions the kind and, quoted, the
    /// name or tag.
    fn may_define(&self, what: &str, selector: &str) -> bool {
        let Some(text) = &self.text else {
            return true;
        };
        if !text.contains(what) {
            return false;
        }
        let word = selector.strip_prefix("tag:").unwrap_or(selector);
        word == "*" || text.contains(&format!("\"{word}\"")) || text.contains(&format!("'{word}'"))
    }

    fn describe(&self) -> String {
        self.errors.join("; ")
    }
}

/// Goals, probes, checks and notes as the config sees them (bundled plus operator directories).
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    pub goal_files: Vec<SourceFile>,
    pub catalog: Catalog,
    pub checks: CheckSet,
    pub notes: Vec<Note>,
    /// Every goal file by name, loaded or not.
    goals: Vec<(String, Result<Goal, GoalError>)>,
    /// Everything that did not load, in file order: context files, notes, then goals.
    pub errors: Vec<LoadError>,
}

impl Definitions {
    /// Loads every file. Only an unreadable directory fails the whole load; broken files are in
    /// [`Definitions::errors`] (and logged at warn), and only the goals using them fail.
    pub fn load(cfg: &Config) -> Result<Definitions, ReadError> {
        let goal_files =
            bundled::collect(Kind::Goals, cfg.goals_dir.as_deref(), cfg.no_bundled, "md")?;
        let context_files = bundled::collect(
            Kind::Context,
            cfg.context_dir.as_deref(),
            cfg.no_bundled,
            "toml",
        )?;
        let mut note_files = bundled::collect(
            Kind::Knowledge,
            cfg.knowledge_dir.as_deref(),
            cfg.no_bundled,
            "md",
        )?;
        add_accepted_notes(&mut note_files, &knowledge::accepted_dir(&cfg.state_dir))?;
        let defaults = crate::defs::probe::ProbeDefaults::from_config(cfg);
        let defs = Definitions::from_files(goal_files, context_files, note_files, defaults);
        for e in &defs.errors {
            tracing::warn!("definition not loaded: {}", e.error);
        }
        for w in defs.warnings() {
            tracing::warn!("{w}");
        }
        Ok(defs)
    }

    /// The same from files already collected (tests use it directly).
    pub fn from_files(
        goal_files: bundled::Collected,
        context_files: bundled::Collected,
        note_files: bundled::Collected,
        defaults: ProbeDefaults,
    ) -> Definitions {
        let mut errors = Vec::new();
        let (catalog, checks, broken) = load_context(&context_files, defaults);
        for b in &broken {
            for e in &b.errors {
                errors.push(LoadError {
                    kind: "context",
                    file: b.origin.clone(),
                    error: e.clone(),
                });
            }
        }
        let mut notes = Vec::new();
        for f in &note_files.files {
            match knowledge::parse(f) {
                Ok(n) => notes.push(n),
                Err(e) => errors.push(LoadError {
                    kind: "knowledge",
                    file: f.origin.clone(),
                    error: e.to_string(),
                }),
            }
        }
        for u in &note_files.unreadable {
            errors.push(LoadError {
                kind: "knowledge",
                file: u.origin.clone(),
                error: unreadable(u),
            });
        }
        let mut goals: Vec<(String, Result<Goal, GoalError>)> = Vec::new();
        for f in &goal_files.files {
            let loaded =
                goal::parse(f).and_then(|g| resolve(&g, &catalog, &checks, &broken).map(|()| g));
            goals.push((f.stem.clone(), loaded));
        }
        for u in &goal_files.unreadable {
            goals.push((
                u.stem.clone(),
                Err(GoalError::Definition {
                    origin: u.origin.clone(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {}", u.error.source),
                }),
            ));
        }
        goals.sort_by(|a, b| a.0.cmp(&b.0));
        for (stem, g) in &goals {
            if let Err(e) = g {
                let file = match e {
                    GoalError::Definition { origin, .. } | GoalError::Template { origin, .. } => {
                        origin.clone()
                    }
                    _ => stem.clone(),
                };
                errors.push(LoadError {
                    kind: "goal",
                    file,
                    error: e.to_string(),
                });
            }
        }
        Definitions {
            goal_files: goal_files.files,
            catalog,
            checks,
            notes,
            goals,
            errors,
        }
    }

    /// The goal of this name, or the error that keeps it from loading.
    pub fn goal(&self, name: &str) -> Result<Goal, GoalError> {
        match self.goals.iter().find(|(n, _)| n == name) {
            Some((_, Ok(g))) => Ok(g.clone()),
            Some((_, Err(e))) => Err(e.clone()),
            None => Err(GoalError::Unknown {
                name: name.to_string(),
                known: self
                    .goals
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The goals that loaded.
    pub fn goals(&self) -> Vec<Goal> {
        self.goals
            .iter()
            .filter_map(|(_, g)| g.as_ref().ok().cloned())
            .collect()
    }

    /// Every goal by name, loaded or not, in name order.
    pub fn goal_entries(&self) -> impl Iterator<Item = (&str, Result<&Goal, &GoalError>)> {
        self.goals.iter().map(|(n, g)| (n.as_str(), g.as_ref()))
    }

    /// Warnings of the goals that loaded (`FILE:LINE:COL: message`).
    pub fn warnings(&self) -> Vec<String> {
        self.goals
            .iter()
            .filter_map(|(_, g)| g.as_ref().ok())
            .flat_map(|g| g.warnings.iter().cloned())
            .collect()
    }

    /// The context files that did not load, as errors (for commands that use every check).
    pub fn context_errors(&self) -> Vec<&LoadError> {
        self.errors.iter().filter(|e| e.kind == "context").collect()
    }
}

fn unreadable(u: &bundled::Unreadable) -> String {
    format!("{}:1:1: cannot read: {}", u.origin, u.error.source)
}

/// Loads each context file on its own, then the good ones together; a name defined in two files
/// breaks the later file. Returns the probes and checks of the good files and the broken files.
fn load_context(
    files: &bundled::Collected,
    defaults: ProbeDefaults,
) -> (Catalog, CheckSet, Vec<Broken>) {
    let mut broken: Vec<Broken> = files
        .unreadable
        .iter()
        .map(|u| Broken {
            origin: u.origin.clone(),
            text: None,
            errors: vec![unreadable(u)],
        })
        .collect();
    let mut good: Vec<SourceFile> = Vec::new();
    for f in &files.files {
        let mut errors = Vec::new();
        if let Err(e) = Catalog::load(std::slice::from_ref(f), defaults) {
            errors.push(e.to_string());
        }
        if let Err(e) = CheckSet::load(std::slice::from_ref(f)) {
            let e = e.to_string();
            // A TOML syntax error reads the same from both parsers.
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            good.push(f.clone());
        } else {
            broken.push(Broken {
                origin: f.origin.clone(),
                text: Some(f.text.clone()),
                errors,
            });
        }
    }
    // Each file loads alone, so what is left are names defined twice: the later file is broken.
    loop {
        let probes = Catalog::load(&good, defaults);
        let checks = CheckSet::load(&good);
        let (error, file) = match (probes, checks) {
            (Ok(p), Ok(c)) => {
                broken.sort_by(|a, b| a.origin.cmp(&b.origin));
                return (p, c, broken);
            }
            (Err(e @ ProbeError::Definition { .. }), _) => {
                let file = match &e {
                    ProbeError::Definition { origin, .. } => origin.clone(),
                    ProbeError::Unknown(_) => String::new(),
                };
                (e.to_string(), file)
            }
            (_, Err(e @ CheckError::Duplicate { .. })) => {
                let file = match &e {
                    CheckError::Duplicate { file, .. } => file.clone(),
                    _ => String::new(),
                };
                (e.to_string(), file)
            }
            (Err(e), _) => (e.to_string(), String::new()),
            (_, Err(e)) => (e.to_string(), String::new()),
        };
        // An error no single file can be blamed for cannot happen; if it did, trusting none of
        // the files is the safe answer.
        let (out, keep): (Vec<SourceFile>, Vec<SourceFile>) = good
            .into_iter()
            .partition(|f| file.is_empty() || f.origin == file);
        for f in out {
            broken.push(Broken {
                origin: f.origin.clone(),
                text: Some(f.text.clone()),
                errors: vec![error.clone()],
            });
        }
        good = keep;
    }
}

/// Resolves the probes and checks a goal names; an error points at the name in the goal file.
fn resolve(
    goal: &Goal,
    catalog: &Catalog,
    checks: &CheckSet,
    broken: &[Broken],
) -> Result<(), GoalError> {
    let at = |(line, column): (usize, usize), message: String| GoalError::Definition {
        origin: goal.origin.clone(),
        line,
        column,
        message,
    };
    // A name that loaded may still be defined again in a broken file (which one was meant is
    // unknown); a file that could not be read is only suspected of names that did not load, or
    // it would break every goal.
    let broken_for = |what: &str, sel: &str, loaded: bool| {
        broken
            .iter()
            .find(|b| !(loaded && b.text.is_none()) && b.may_define(what, sel))
    };
    for (i, sel) in goal.probes.iter().enumerate() {
        let sel = sel.trim();
        // Probes by pattern only observe: a broken file's probes are left out, not fatal.
        if sel == "*" || sel.starts_with("tag:") {
            continue;
        }
        let loaded = catalog.probes.iter().any(|p| p.name == sel);
        if let Some(b) = broken_for("probe", sel, loaded) {
            return Err(at(
                goal.positions.probe(i),
                format!(
                    "probe `{sel}` is not usable: a context file that names it failed to load: {}",
                    b.describe()
                ),
            ));
        }
        if !loaded {
            return Err(at(
                goal.positions.probe(i),
                format!(
                    "unknown probe `{sel}` (known: {})",
                    catalog
                        .probes
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    for phase in Phase::ALL {
        for (i, sel) in goal.checks.names(phase).iter().enumerate() {
            let sel = sel.trim();
            let by_pattern = sel == "*" || sel.starts_with("tag:");
            let loaded = !by_pattern && checks.get(sel).is_some();
            if let Some(b) = broken_for("check", sel, loaded) {
                let what = if by_pattern {
                    format!("checks selected by `{sel}` may include ones from a context file")
                } else {
                    format!("check `{sel}` is not usable: a context file that names it")
                };
                return Err(at(
                    goal.positions.check(phase, i),
                    format!("{what} that failed to load: {}", b.describe()),
                ));
            }
            if !by_pattern && !loaded {
                return Err(at(
                    goal.positions.check(phase, i),
                    format!(
                        "unknown check `{sel}` in `{phase}` (known: {})",
                        checks
                            .checks
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Adds the notes accepted from proposals (`STATE/knowledge/notes/`, absent until the first is
/// accepted). They come after the operator's and never replace one of the same name: both load.
fn add_accepted_notes(
    notes: &mut bundled::Collected,
    dir: &std::path::Path,
) -> Result<(), ReadError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let accepted = bundled::collect(Kind::Knowledge, Some(dir), true, "md")?;
    notes.files.extend(accepted.files);
    notes.unreadable.extend(accepted.unreadable);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::defs::bundled::{Collected, Unreadable};

    const DEFAULTS: ProbeDefaults = ProbeDefaults {
        timeout: Duration::from_secs(5),
        max_bytes: 4096,
    };

    fn file(origin: &str, text: &str) -> SourceFile {
        SourceFile {
            origin: origin.into(),
            stem: origin
                .rsplit('/')
                .next()
                .and_then(|n| n.split('.').next())
                .unwrap_or_default()
                .into(),
            text: text.into(),
        }
    }

    fn check(name: &str, tags: &str) -> String {
        format!(
            "[[check]]\nname = \"{name}\"\ndescription = \"d\"\nkind = \"file\"\npath = \"/\"\ntags = [{tags}]\n"
        )
    }

    fn goal(name: &str, checks: &str) -> SourceFile {
        file(
            &format!("g/{name}.md"),
            &format!("+++\ndescription = \"d\"\n[checks]\n{checks}\n+++\nbody\n"),
        )
    }

    fn unreadable(origin: &str) -> Unreadable {
        Unreadable {
            origin: origin.into(),
            stem: "x".into(),
            error: ReadError {
                path: origin.into(),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            },
        }
    }

    fn load(goals: Vec<SourceFile>, context: Collected, notes: Vec<SourceFile>) -> Definitions {
        Definitions::from_files(
            Collected {
                files: goals,
                unreadable: vec![],
            },
            context,
            Collected {
                files: notes,
                unreadable: vec![],
            },
            DEFAULTS,
        )
    }

    fn err(d: &Definitions, goal: &str) -> String {
        d.goal(goal).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn a_name_defined_twice_breaks_the_later_file_and_its_users() {
        let a = file(
            "c/a.toml",
            &format!("{}{}", check("x", "\"inv\""), check("y", "")),
        );
        let b = file("c/b.toml", &check("x", ""));
        let d = load(
            vec![
                goal("uses-x", "post = [\"x\"]"),
                goal("uses-y", "post = [\"y\"]"),
            ],
            Collected {
                files: vec![a, b],
                unreadable: vec![],
            },
            vec![],
        );
        assert_eq!(d.errors[0].file, "c/b.toml");
        assert!(
            d.errors[0]
                .error
                .starts_with("c/b.toml:1:1: check `x` is already defined at c/a.toml:1:1"),
            "{:?}",
            d.errors
        );
        let e = err(&d, "uses-x");
        assert!(
            e.starts_with("g/uses-x.md:4:9: check `x` is not usable"),
            "{e}"
        );
        assert!(e.contains("c/b.toml:1:1:"), "{e}");
        assert!(d.goal("uses-y").is_ok());
    }

    #[test]
    fn an_unreadable_file_fails_only_names_that_did_not_load_and_patterns() {
        let d = load(
            vec![
                goal("known", "post = [\"x\"]"),
                goal("missing", "post = [\"z\"]"),
                goal("by-tag", "invariants = [\"tag:inv\"]"),
            ],
            Collected {
                files: vec![file("c/a.toml", &check("x", "\"inv\""))],
                unreadable: vec![unreadable("c/secret.toml")],
            },
            vec![],
        );
        assert!(d.goal("known").is_ok());
        let e = err(&d, "missing");
        assert!(
            e.contains("check `z` is not usable") && e.contains("c/secret.toml:1:1: cannot read"),
            "{e}"
        );
        let e = err(&d, "by-tag");
        assert!(e.contains("checks selected by `tag:inv`"), "{e}");
        assert_eq!(d.context_errors().len(), 1);
    }

    #[test]
    fn broken_notes_and_goals_are_listed_and_left_out() {
        let d = load(
            vec![
                goal("fine", "post = []"),
                file("g/bad.md", "+++\ndescription = 1\n+++\n"),
            ],
            Collected::default(),
            vec![
                file("k/ok.md", "+++\ntitle = \"t\"\ntags = [\"a\"]\n+++\nbody"),
                file("k/bad.md", "+++\ntitle = \"t\"\n+++\nbody"),
            ],
        );
        assert_eq!(d.notes.len(), 1);
        let kinds: Vec<(&str, &str)> = d.errors.iter().map(|e| (e.kind, e.file.as_str())).collect();
        assert_eq!(kinds, [("knowledge", "k/bad.md"), ("goal", "g/bad.md")]);
        assert!(
            d.errors[1].error.starts_with("g/bad.md:2:15:"),
            "{:?}",
            d.errors
        );
        assert_eq!(d.goals().len(), 1);
        assert!(matches!(d.goal("nope"), Err(GoalError::Unknown { .. })));
    }

    #[test]
    fn probes_by_pattern_survive_a_broken_file_but_named_ones_do_not() {
        let broken = file(
            "c/web.toml",
            "[[probe]]\nname = \"web\"\nkind = \"comand\"\ntags = [\"host\"]\n",
        );
        let d = load(
            vec![
                file(
                    "g/all.md",
                    "+++\ndescription = \"d\"\nprobes = [\"*\", \"tag:host\"]\n+++\n",
                ),
                file(
                    "g/web.md",
                    "+++\ndescription = \"d\"\nprobes = [\"web\"]\n+++\n",
                ),
            ],
            Collected {
                files: vec![broken],
                unreadable: vec![],
            },
            vec![],
        );
        assert!(d.goal("all").is_ok());
        let e = err(&d, "web");
        assert!(
            e.starts_with("g/web.md:3:11: probe `web` is not usable"),
            "{e}"
        );
        assert!(e.contains("c/web.toml:3:8:"), "{e}");
    }
}
