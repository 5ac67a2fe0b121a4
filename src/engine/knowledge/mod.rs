//! The knowledge loop: a verdict's `knowledge` notes become proposals
//! (`STATE/knowledge/pending/<id>.json`, bounded and redacted), which an operator lists, compares
//! with the notes they may duplicate, and accepts (written as a note to
//! `STATE/knowledge/notes/`, selected into later prompts) or rejects (with the reason recorded).
//! Nothing an agent writes reaches a prompt unreviewed.

mod duplicates;
mod note;
mod proposal;
mod store;

pub use duplicates::{Duplicate, MIN_OVERLAP, Review, duplicates, overlap};
pub use note::{render_note, slug};
pub use proposal::{Decision, Limits, Proposal, ProposalState, from_verdict};
pub use store::{Filed, KnowledgeError, KnowledgeStore};
