//! Change sets (issue 12): the agent edits the infrastructure repository in a worktree of its
//! own, and steward judges the diff, validates it, binds the approval to it, applies, verifies
//! and rolls back.
//!
//! The git side: `worktree` (a worktree per run on `steward/<run-id>`, steward's commit, removal),
//! `diff` (the change against the base: files, counts, text, digest), `prune` (worktrees of
//! finished runs), all through `git` (steward's own git: no user config, code-running repository
//! settings overridden or refused). steward's judgement: `diff_check`. The record: `record` (what
//! is known about one change) and `store` (`STATE/changes/<state>/<id>.json`).
//! The operator's decision: `approve` (every re-check an approval is bound to, the rebase onto a
//! moved workspace, rejection); `diff_files` gives a diff's files as the record keeps them.

pub mod apply;
pub mod approve;
pub mod branch_retention;
pub mod diff;
pub mod diff_check;
pub mod diff_files;
pub mod git;
pub mod profile;
pub mod propose;
pub mod prune;
pub mod record;
pub mod static_phase;
pub mod store;
pub mod tree_info;
pub mod worktree;
