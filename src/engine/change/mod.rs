//! Change sets (issue 12), being built in steps: the agent edits the infrastructure repository in
//! a worktree of its own, and steward judges the diff, validates it, binds the approval to it,
//! applies, verifies and rolls back. Not wired into runs yet: goals cannot declare `[change]`
//! until the whole path (validation, record, approval, apply) exists.

pub mod diff_check;
