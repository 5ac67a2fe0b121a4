//! Which existing notes a proposal may duplicate, so a reviewer sees them side by side.
//!
//! A note is a duplicate when it has the same slug (its file name, or the slug of its title) as
//! the proposal's title, or when their words overlap by at least [`MIN_OVERLAP`]: the Jaccard
//! index |A ∩ B| / |A ∪ B| of the two sets of words (title and body, lowercased, split on
//! anything not a letter or digit, words shorter than 3 characters dropped).

use std::collections::BTreeSet;

use serde::Serialize;

use super::note::slug;
use super::proposal::Proposal;
use crate::defs::knowledge::Note;

/// The overlap from which a note is shown as a likely duplicate.
pub const MIN_OVERLAP: f64 = 0.5;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Duplicate {
    pub name: String,
    pub origin: String,
    pub title: String,
    pub tags: Vec<String>,
    pub body: String,
    /// 1.0 for the same slug; else the word overlap.
    pub score: f64,
    /// `same slug` or `word overlap`.
    pub why: &'static str,
}

/// A proposal beside the notes it may duplicate: what `steward knowledge show` and the page show.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub proposal: Proposal,
    pub duplicates: Vec<Duplicate>,
}

impl Review {
    pub fn of(proposal: Proposal, notes: &[Note]) -> Review {
        let duplicates = duplicates(&proposal, notes);
        Review {
            proposal,
            duplicates,
        }
    }
}

/// The notes `p` may duplicate, most alike first.
pub fn duplicates(p: &Proposal, notes: &[Note]) -> Vec<Duplicate> {
    let p_slug = slug(&p.title);
    let p_words = words(&format!("{} {}", p.title, p.body));
    let mut out: Vec<Duplicate> = notes
        .iter()
        .filter_map(|n| {
            let same = n.name == p_slug || slug(&n.title) == p_slug;
            let score = if same {
                1.0
            } else {
                overlap(&p_words, &words(&format!("{} {}", n.title, n.body)))
            };
            (same || score >= MIN_OVERLAP).then(|| Duplicate {
                name: n.name.clone(),
                origin: n.origin.clone(),
                title: n.title.clone(),
                tags: n.tags.clone(),
                body: n.body.clone(),
                score,
                why: if same { "same slug" } else { "word overlap" },
            })
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
    out
}

/// The Jaccard index of two word sets (0 when both are empty).
pub fn overlap(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

fn words(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::knowledge::proposal::ProposalState;

    fn note(name: &str, title: &str, body: &str) -> Note {
        Note {
            name: name.into(),
            origin: format!("k/{name}.md"),
            title: title.into(),
            tags: vec!["x".into()],
            body: body.into(),
        }
    }

    fn proposal(title: &str, body: &str) -> Proposal {
        Proposal {
            id: "k-000000000000".into(),
            state: ProposalState::Pending,
            title: title.into(),
            tags: vec!["x".into()],
            body: body.into(),
            run: "r".into(),
            goal: "g".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            trimmed: vec![],
            decision: None,
        }
    }

    #[test]
    fn same_slug_and_word_overlap_are_duplicates_others_not() {
        let notes = [
            note("mount-options", "Mount options", "anything"),
            note(
                "a",
                "NFS stale handles",
                "remount the export after the server restarts",
            ),
            note("b", "Disk full", "journald vacuum frees space"),
        ];
        let p = proposal(
            "Mount Options!",
            "remount the NFS export after the server restarts: stale handles",
        );
        let d = duplicates(&p, &notes);
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["mount-options", "a"]);
        assert_eq!(d[0].why, "same slug");
        assert!(
            d[1].score >= MIN_OVERLAP && d[1].score < 1.0,
            "{}",
            d[1].score
        );
        assert!(duplicates(&proposal("Other", "unrelated words here"), &notes).is_empty());
    }

    #[test]
    fn overlap_is_the_jaccard_index() {
        let a = words("alpha beta gamma");
        let b = words("beta gamma delta");
        assert_eq!(overlap(&a, &b), 0.5);
        assert_eq!(overlap(&BTreeSet::new(), &BTreeSet::new()), 0.0);
    }
}
