//! Knowledge notes: operator-reviewed edge cases selected into prompts. (Interface; the context
//! helper implements it.)

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bundled::SourceFile;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("{origin}: {message}")]
    Note { origin: String, message: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub name: String,
    pub origin: String,
    pub title: String,
    pub tags: Vec<String>,
    pub body: String,
}

pub fn load(_files: &[SourceFile]) -> Result<Vec<Note>, KnowledgeError> {
    Ok(Vec::new())
}

/// Notes whose tags meet the goal's name, its knowledge tags, or the signal's label values.
pub fn select<'a>(
    notes: &'a [Note],
    _goal: &str,
    _goal_tags: &[String],
    _labels: &BTreeMap<String, String>,
) -> Vec<&'a Note> {
    notes.iter().collect()
}
