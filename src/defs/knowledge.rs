//! Knowledge notes: operator-reviewed edge cases selected into prompts.
//!
//! A note is `knowledge/<name>.md`: `+++` TOML front matter (`title`, `tags`) and a Markdown
//! body. Notes are trusted text (an operator wrote or reviewed each one), so they reach the
//! prompt unfenced; agent proposals wait in a review area (`STATE/knowledge/pending/`) and are
//! not loaded from here. A proposal an operator accepted is written to
//! [`accepted_dir`] (`STATE/knowledge/notes/`: `knowledge_dir` may be read-only, e.g. in the Nix
//! store) with its provenance in the front matter, and is loaded beside `knowledge_dir`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::defs::bundled::SourceFile;
use crate::defs::frontmatter;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// Like every definition error: `FILE:LINE:COL: message`.
    #[error("{origin}:{line}:{column}: {message}")]
    Note {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub name: String,
    pub origin: String,
    pub title: String,
    pub tags: Vec<String>,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Front {
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    /// Provenance of a note accepted from a run's proposal (`steward knowledge accept`): read
    /// so that such a note loads, not used in selection.
    #[serde(default)]
    #[allow(dead_code)]
    run: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    goal: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    proposal: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    accepted_by: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    accepted_at: Option<toml::value::Datetime>,
}

/// Where accepted proposals are written as notes: steward's own, beside the operator's
/// `knowledge_dir`.
pub fn accepted_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("knowledge").join("notes")
}

pub fn load(files: &[SourceFile]) -> Result<Vec<Note>, KnowledgeError> {
    files.iter().map(parse).collect()
}

/// Parses one note.
pub fn parse(file: &SourceFile) -> Result<Note, KnowledgeError> {
    let err = |(line, column): (usize, usize), message: String| KnowledgeError::Note {
        origin: file.origin.clone(),
        line,
        column,
        message,
    };
    let split = frontmatter::split(&file.text).map_err(|(l, m)| err((l, 1), m))?;
    let front: Front = toml::from_str(split.front).map_err(|e| {
        err(
            frontmatter::toml_error_pos(&split, &e),
            e.message().trim().to_string(),
        )
    })?;
    if front.title.trim().is_empty() {
        return Err(err(
            frontmatter::key_pos(&split, "title"),
            "`title` must not be empty".into(),
        ));
    }
    if front.tags.is_empty() {
        // A note without tags could never be selected: almost certainly a mistake.
        return Err(err(
            frontmatter::key_pos(&split, "tags"),
            "`tags` must name at least one tag, or the note is never selected".into(),
        ));
    }
    if let Some(t) = front
        .tags
        .iter()
        .find(|t| t.trim().is_empty() || t.contains(char::is_whitespace))
    {
        return Err(err(
            frontmatter::key_pos(&split, "tags"),
            format!("tag `{t}` must be one word"),
        ));
    }
    Ok(Note {
        name: file.stem.clone(),
        origin: file.origin.clone(),
        title: front.title,
        tags: front.tags.iter().map(|t| t.to_lowercase()).collect(),
        body: split.body.trim().to_string(),
    })
}

/// Notes whose tags meet the goal's name, its knowledge tags, or the signal's label values
/// (an alert with `service=nfs` selects notes tagged `nfs`). Matching ignores case. A note
/// tagged `always` is always selected.
pub fn select<'a>(
    notes: &'a [Note],
    goal: &str,
    goal_tags: &[String],
    labels: &BTreeMap<String, String>,
) -> Vec<&'a Note> {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    wanted.insert("always".to_string());
    wanted.insert(goal.to_lowercase());
    wanted.extend(goal_tags.iter().map(|t| t.to_lowercase()));
    for v in labels.values() {
        let v = v.to_lowercase();
        // A unit label like `nfs-server.service` should also meet the tag `nfs-server`.
        if let Some(stem) = v.strip_suffix(".service") {
            wanted.insert(stem.to_string());
        }
        wanted.insert(v);
    }
    notes
        .iter()
        .filter(|n| n.tags.iter().any(|t| wanted.contains(t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(stem: &str, text: &str) -> SourceFile {
        SourceFile {
            origin: format!("k/{stem}.md"),
            stem: stem.into(),
            text: text.into(),
        }
    }

    #[test]
    fn parses_and_selects() {
        let notes = load(&[
            file(
                "a",
                "+++\ntitle = \"A\"\ntags = [\"NFS\", \"mount\"]\n+++\nbody a\n",
            ),
            file(
                "b",
                "+++\ntitle = \"B\"\ntags = [\"incident\"]\n+++\nbody b\n",
            ),
            file("c", "+++\ntitle = \"C\"\ntags = [\"nomad\"]\n+++\nbody c\n"),
            file(
                "d",
                "+++\ntitle = \"D\"\ntags = [\"always\"]\n+++\nbody d\n",
            ),
        ])
        .unwrap();
        assert_eq!(notes[0].tags, ["nfs", "mount"]);
        assert_eq!(notes[0].body, "body a");
        let names = |goal: &str, tags: &[&str], labels: &[(&str, &str)]| -> Vec<String> {
            let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
            let labels: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            select(&notes, goal, &tags, &labels)
                .into_iter()
                .map(|n| n.name.clone())
                .collect()
        };
        assert_eq!(names("health-check", &[], &[]), ["d"]);
        assert_eq!(names("incident", &[], &[]), ["b", "d"]);
        assert_eq!(names("x", &["nomad"], &[]), ["c", "d"]);
        assert_eq!(names("x", &[], &[("service", "nfs")]), ["a", "d"]);
        assert_eq!(names("x", &[], &[("unit", "Nomad.service")]), ["c", "d"]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = load(&[file(
            "x",
            "+++\ntitle = \"T\"\ntags = [\"a\"]\ncolour = 1\n+++\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("k/x.md:4:1:"), "{err}");
        assert!(err.contains("colour"), "{err}");
        let err = load(&[file("x", "+++\ntitle = \"T\"\n+++\nbody")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tags"), "{err}");
        let err = load(&[file("x", "no front matter")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("k/x.md:1:1:"), "{err}");
    }

    #[test]
    fn bundled_notes_load_and_cover_the_edge_cases() {
        let files =
            crate::defs::bundled::files(crate::defs::bundled::Kind::Knowledge, None, false, "md")
                .unwrap();
        let notes = load(&files).unwrap();
        let names: Vec<&str> = notes.iter().map(|n| n.name.as_str()).collect();
        for n in ["mount-options", "silent-success", "transition-states"] {
            assert!(names.contains(&n), "missing note {n}: {names:?}");
        }
        let nfs: BTreeMap<String, String> = [("service".to_string(), "nfs".to_string())].into();
        let picked = select(&notes, "incident", &[], &nfs);
        assert!(picked.iter().any(|n| n.name == "mount-options"));
    }
}
