//! The checks a `propose_action` call names (`checks`): each must be a check the run's
//! definitions hold, and the filed action carries the goal's post-action checks plus those,
//! each once, in that order; steward's executor runs them all after an approved action. A name
//! that is not a check refuses the whole proposal (nothing is filed): an action whose named
//! check could never run would be approved on a promise steward cannot keep.
//!
//! Pure: the hook (`engine/boundary.rs`) decides with the names the run wrote into its
//! `hook-context.json`, so the hook still loads no config.

use serde_json::Value;

use crate::engine::boundary::HookContext;

/// The most checks one proposal may name (the tool's schema says the same).
pub const MAX_NAMED: usize = crate::engine::tools::args::MAX_LIST;

/// How many known names an error lists before it says "…".
const KNOWN_SHOWN: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposalChecksError {
    #[error("argument `checks`: must be a list of at most {MAX_NAMED} check names")]
    Shape,
    #[error(
        "argument `checks`: `{name}` is not a defined check (known: {known}); nothing was filed"
    )]
    Unknown { name: String, known: String },
}

/// The goal's post checks, then every check `input.checks` names that is not among them yet.
pub fn with_named(ctx: &HookContext, input: &Value) -> Result<Vec<String>, ProposalChecksError> {
    let named = named(input)?;
    let mut out = ctx.checks.clone();
    for name in named {
        if !ctx.known_checks.contains(&name) {
            return Err(ProposalChecksError::Unknown {
                name,
                known: known(&ctx.known_checks),
            });
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The `checks` argument: absent is none; anything but a short list of names is refused.
fn named(input: &Value) -> Result<Vec<String>, ProposalChecksError> {
    let Some(v) = input.get("checks") else {
        return Ok(Vec::new());
    };
    let list = v.as_array().ok_or(ProposalChecksError::Shape)?;
    if list.len() > MAX_NAMED {
        return Err(ProposalChecksError::Shape);
    }
    list.iter()
        .map(|n| match n.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => Err(ProposalChecksError::Shape),
        })
        .collect()
}

fn known(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut shown = names
        .iter()
        .take(KNOWN_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > KNOWN_SHOWN {
        shown.push_str(", …");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(post: &[&str], known: &[&str]) -> HookContext {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        HookContext {
            state_dir: "/s".into(),
            run_id: "r1".into(),
            goal: "g".into(),
            subject: "host".into(),
            signal_fingerprint: None,
            state_fingerprint: "fp".into(),
            checks: strings(post),
            known_checks: strings(known),
            action_ttl_secs: 60,
            approval: Default::default(),
            approval_timeout_secs: 60,
        }
    }

    #[test]
    fn named_checks_join_the_goals_each_once() {
        let c = ctx(&["web-up"], &["web-up", "db-up", "disk"]);
        let input = json!({"argv": ["x"], "checks": ["db-up", "web-up", "db-up"]});
        assert_eq!(with_named(&c, &input).unwrap(), ["web-up", "db-up"]);
        // None named: the goal's, as before.
        assert_eq!(with_named(&c, &json!({"argv": ["x"]})).unwrap(), ["web-up"]);
    }

    #[test]
    fn an_unknown_name_refuses_the_proposal_naming_it() {
        let c = ctx(&["web-up"], &["web-up", "db-up"]);
        let e = with_named(&c, &json!({"checks": ["db-up", "no-such"]})).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("`no-such` is not a defined check"), "{text}");
        assert!(text.contains("known: web-up, db-up"), "{text}");
        // A selector is not a check's name: `*` would run every check the host has.
        assert!(with_named(&c, &json!({"checks": ["*"]})).is_err());
        assert!(with_named(&c, &json!({"checks": ["tag:web"]})).is_err());
        // An old hook context knows no checks: every name is refused (fail closed).
        let old = ctx(&["web-up"], &[]);
        let e = with_named(&old, &json!({"checks": ["web-up"]})).unwrap_err();
        assert!(e.to_string().contains("known: none"), "{e}");
    }

    #[test]
    fn a_malformed_list_is_refused() {
        let c = ctx(&[], &["a"]);
        for bad in [
            json!({"checks": "a"}),
            json!({"checks": [1]}),
            json!({"checks": [""]}),
            json!({"checks": vec!["a"; MAX_NAMED + 1]}),
        ] {
            assert_eq!(
                with_named(&c, &bad).unwrap_err(),
                ProposalChecksError::Shape,
                "{bad}"
            );
        }
    }
}
