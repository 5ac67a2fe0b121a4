//! An accepted proposal as a knowledge note: Markdown with `+++` TOML front matter carrying the
//! title, the tags and the provenance (run, goal, proposal, who accepted it and when), in the
//! format `defs::knowledge::parse` loads.

use serde::Serialize;
use time::OffsetDateTime;

use super::proposal::Proposal;

/// A file-name-safe slug of `title`: lowercase letters and digits, runs of anything else one
/// `-`, at most 60 characters; `note` when nothing is left.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "note".into() } else { out }
}

#[derive(Serialize)]
struct Front<'a> {
    title: &'a str,
    tags: &'a [String],
    run: &'a str,
    goal: &'a str,
    proposal: &'a str,
    accepted_by: &'a str,
    accepted_at: toml::value::Datetime,
}

/// The note's text. TOML serialization quotes every value, so a title cannot break out of the
/// front matter; a body line `+++` could end it early, so such lines are indented.
pub fn render_note(p: &Proposal, by: &str, at: OffsetDateTime) -> Result<String, toml::ser::Error> {
    let at_text = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let accepted_at = at_text
        .parse::<toml::value::Datetime>()
        .unwrap_or(toml::value::Datetime {
            date: None,
            time: None,
            offset: None,
        });
    let front = toml::to_string(&Front {
        title: &p.title,
        tags: &p.tags,
        run: &p.run,
        goal: &p.goal,
        proposal: &p.id,
        accepted_by: by,
        accepted_at,
    })?;
    let body: Vec<String> = p
        .body
        .lines()
        .map(|l| {
            if l.trim() == "+++" {
                format!(" {l}")
            } else {
                l.to_string()
            }
        })
        .collect();
    Ok(format!("+++\n{front}+++\n{}\n", body.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::bundled::SourceFile;
    use crate::engine::knowledge::proposal::ProposalState;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(
            slug("NFS: stale handles / remount!"),
            "nfs-stale-handles-remount"
        );
        assert_eq!(slug("../.."), "note");
        assert!(slug(&"x".repeat(100)).len() <= 60);
    }

    #[test]
    fn a_rendered_note_loads_with_its_tags_and_a_hostile_title_stays_in_the_title() {
        let p = Proposal {
            id: "k-0123456789ab".into(),
            state: ProposalState::Pending,
            title: "Quote \" and\n+++".into(),
            tags: vec!["nfs".into()],
            body: "line\n+++\nafter".into(),
            run: "run-1".into(),
            goal: "incident".into(),
            created: OffsetDateTime::UNIX_EPOCH,
            trimmed: vec![],
            decision: None,
        };
        let text = render_note(&p, "cli:ops", OffsetDateTime::UNIX_EPOCH).unwrap();
        let n = crate::defs::knowledge::parse(&SourceFile {
            origin: "n.md".into(),
            stem: "n".into(),
            text: text.clone(),
        })
        .unwrap();
        assert_eq!(n.title, p.title);
        assert_eq!(n.tags, ["nfs"]);
        assert_eq!(n.body, "line\n +++\nafter");
        assert!(text.contains("run = \"run-1\""), "{text}");
        assert!(text.contains("accepted_by = \"cli:ops\""), "{text}");
        assert!(
            text.contains("accepted_at = 1970-01-01T00:00:00Z"),
            "{text}"
        );
    }
}
