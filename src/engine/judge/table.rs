//! One test per row of the phase table in `judge.rs`.

use super::{Acts, AgentRun, Evidence, Judgement, NO_ACTS, gate, judge};
use crate::base::outcome::{ExitKind, Outcome};
use crate::defs::check::{CheckResult, CheckStatus, ModelPolicy};
use crate::engine::agent::{AgentFailure, AgentVerdict, VerdictStatus};

fn r(name: &str, status: CheckStatus) -> CheckResult {
    CheckResult {
        name: name.into(),
        description: format!("{name} holds"),
        kind: "command".into(),
        status,
        observed: serde_json::Value::Null,
        expected: "exit 0".into(),
        detail: (status != CheckStatus::Pass).then(|| format!("{name} detail")),
        duration_ms: 1,
    }
}

use CheckStatus::{Error, Fail, Pass, Unavailable};

fn verdict(status: VerdictStatus, proposed: usize) -> AgentVerdict {
    AgentVerdict {
        status,
        summary: "summary".into(),
        findings: vec![],
        actions_taken: vec![],
        proposed_actions: (0..proposed)
            .map(|i| serde_json::json!({"argv": ["systemctl", "restart", format!("u{i}")]}))
            .collect(),
        knowledge: vec![],
    }
}

fn ev<'a>(agent: AgentRun<'a>) -> Evidence<'a> {
    Evidence {
        static_: &[],
        preflight: &[],
        invariants_before: &[],
        invariants_after: &[],
        post_before: &[],
        post: &[],
        agent,
        acts: &NO_ACTS,
        model: ModelPolicy::Always,
        attention: false,
    }
}

fn check(j: &Judgement, outcome: Outcome, exit: ExitKind) {
    assert_eq!((j.outcome, j.exit), (outcome, exit), "{j:?}");
}

#[test]
fn static_failure_aborts_before_the_agent() {
    let stat = [r("flake", Fail), r("ports", Pass)];
    let e = Evidence {
        static_: &stat,
        ..ev(AgentRun::NotStarted)
    };
    let Some(j) = gate(&e) else {
        panic!("the agent would have started")
    };
    check(&j, Outcome::Aborted, ExitKind::Aborted);
    assert_eq!(j.failed_checks, ["flake"]);
    assert!(j.reason.contains("`flake` (flake detail)"), "{}", j.reason);
    assert!(!j.rollback);
    // judge agrees, whatever else it is given.
    let v = verdict(VerdictStatus::Ok, 0);
    let e = Evidence {
        static_: &stat,
        ..ev(AgentRun::Verdict(&v))
    };
    check(&judge(&e), Outcome::Aborted, ExitKind::Aborted);
}

#[test]
fn preflight_failure_or_error_aborts() {
    let pre = [r("quorum", Error), r("deps", Fail), r("other", Pass)];
    let e = Evidence {
        preflight: &pre,
        model: ModelPolicy::OnAttention,
        ..ev(AgentRun::NotStarted)
    };
    let j = judge(&e);
    check(&j, Outcome::Aborted, ExitKind::Aborted);
    assert_eq!(j.failed_checks, ["quorum", "deps"]);
    assert!(j.reason.contains("quorum") && j.reason.contains("deps"));
}

#[test]
fn unavailable_static_check_does_not_abort_but_is_reported() {
    let stat = [r("flake", Unavailable)];
    let v = verdict(VerdictStatus::Ok, 0);
    let e = Evidence {
        static_: &stat,
        ..ev(AgentRun::Verdict(&v))
    };
    assert!(gate(&e).is_none());
    let j = judge(&e);
    check(&j, Outcome::Ok, ExitKind::Ok);
    assert_eq!(j.unavailable, ["flake"]);
}

#[test]
fn agent_failure_without_verdict_fails() {
    let f = AgentFailure::Timeout { after_secs: 600 };
    let j = judge(&ev(AgentRun::Failed(&f)));
    check(&j, Outcome::Failed, ExitKind::AgentFailed);
    assert!(j.reason.starts_with("agent failed"), "{}", j.reason);
    assert!(!j.rollback);
    // If post checks were run anyway and fail, roll back what the agent may have left.
    let post = [r("svc-up", Fail)];
    let e = Evidence {
        post: &post,
        ..ev(AgentRun::Failed(&f))
    };
    let j = judge(&e);
    check(&j, Outcome::Failed, ExitKind::AgentFailed);
    // Only if the agent changed something: otherwise there is nothing of the run's to undo.
    assert!(!j.rollback, "{j:?}");
    let acts = wrote();
    let e = Evidence {
        post: &post,
        acts: &acts,
        ..ev(AgentRun::Failed(&f))
    };
    assert!(judge(&e).rollback);
}

/// The agent wrote a file (an allowed Write).
fn wrote() -> Acts {
    Acts {
        changed: vec!["Write `/ws/conf`".into()],
        ..Acts::default()
    }
}

fn held(queued: &[&str], rejected: &[&str], expired: &[&str], denied: usize) -> Acts {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Acts {
        changed: vec![],
        queued: ids(queued),
        rejected: ids(rejected),
        expired: ids(expired),
        denied,
    }
}

#[test]
fn boundary_not_proven_aborts() {
    let f = AgentFailure::BoundaryNotProven {
        message: "no nonce".into(),
    };
    check(
        &judge(&ev(AgentRun::Failed(&f))),
        Outcome::Aborted,
        ExitKind::Aborted,
    );
}

#[test]
fn failing_post_check_overrules_a_model_reporting_success() {
    let post = [r("svc-up", Pass), r("http-200", Fail)];
    for status in [
        VerdictStatus::Fixed,
        VerdictStatus::Ok,
        VerdictStatus::NeedsAttention,
    ] {
        let v = verdict(status.clone(), 0);
        let e = Evidence {
            post: &post,
            ..ev(AgentRun::Verdict(&v))
        };
        let j = judge(&e);
        check(&j, Outcome::Failed, ExitKind::ValidationFailed);
        // Nothing the agent ran changed state: no rollback, and the record says why.
        assert!(!j.rollback, "{status:?}");
        assert!(
            j.rollback_reason.contains("no state-changing call"),
            "{}",
            j.rollback_reason
        );
        assert_eq!(j.failed_checks, ["http-200"]);
        assert!(j.reason.contains("overrules"), "{}", j.reason);
    }
}

#[test]
fn invariant_regression_fails() {
    let before = [r("disk", Pass), r("members", Pass)];
    let after = [r("disk", Pass), r("members", Fail)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let acts = wrote();
    let e = Evidence {
        invariants_before: &before,
        invariants_after: &after,
        acts: &acts,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Failed, ExitKind::ValidationFailed);
    assert_eq!(j.regressions, ["members"]);
    assert!(j.rollback);
    assert!(
        j.rollback_reason.contains("`members`"),
        "{}",
        j.rollback_reason
    );
    assert!(j.reason.contains("regression"));
    // Something else broke it while the agent only looked: still a failure, no rollback.
    let e = Evidence {
        acts: &NO_ACTS,
        ..e
    };
    let j = judge(&e);
    check(&j, Outcome::Failed, ExitKind::ValidationFailed);
    assert!(!j.rollback);
}

#[test]
fn invariant_already_failing_is_not_a_regression_but_not_ok() {
    let before = [r("disk", Fail)];
    let after = [r("disk", Fail)];
    let v = verdict(VerdictStatus::Ok, 0);
    let e = Evidence {
        invariants_before: &before,
        invariants_after: &after,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Escalated, ExitKind::NeedsHuman);
    assert!(j.regressions.is_empty());
    assert_eq!(j.still_failing, ["disk"]);
    assert!(!j.rollback);
    // `fixed` stays fixed (the goal's own criteria hold), with the old failure in the reason.
    let v = verdict(VerdictStatus::Fixed, 0);
    let e = Evidence {
        invariants_before: &before,
        invariants_after: &after,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Fixed, ExitKind::Ok);
    assert!(j.reason.contains("already failed before"), "{}", j.reason);
}

#[test]
fn invariant_repaired_by_the_run_is_fine() {
    let before = [r("disk", Fail)];
    let after = [r("disk", Pass)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let e = Evidence {
        invariants_before: &before,
        invariants_after: &after,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Fixed, ExitKind::Ok);
    assert!(j.still_failing.is_empty() && j.regressions.is_empty());
}

#[test]
fn fixed_with_post_checks_passing_is_fixed() {
    let post = [r("svc-up", Pass), r("unused", Unavailable)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let e = Evidence {
        post: &post,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Fixed, ExitKind::Ok);
    assert_eq!(j.unavailable, ["unused"]);
}

#[test]
fn ok_with_nothing_proposed_is_ok() {
    let inv = [r("disk", Pass)];
    let v = verdict(VerdictStatus::Ok, 0);
    let e = Evidence {
        invariants_before: &inv,
        invariants_after: &inv,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Ok, ExitKind::Ok);
    assert_eq!(j.reason, "summary");
}

#[test]
fn proposals_in_the_verdict_are_not_said_to_await_approval() {
    let v = verdict(VerdictStatus::Ok, 1);
    let j = judge(&ev(AgentRun::Verdict(&v)));
    check(&j, Outcome::Escalated, ExitKind::NeedsHuman);
    assert!(!j.reason.contains("await approval"), "{}", j.reason);
    assert!(
        j.reason
            .contains("proposes 1 action(s) in its verdict, none filed"),
        "{}",
        j.reason
    );
}

#[test]
fn fixed_when_the_only_attempt_to_act_was_queued_escalates() {
    let post = [r("svc-up", Pass)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let acts = held(&["a1b2"], &[], &[], 0);
    let e = Evidence {
        post_before: &post,
        post: &post,
        acts: &acts,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Escalated, ExitKind::NeedsHuman);
    assert!(
        j.reason
            .starts_with("1 action(s) wait for approval (`steward actions list`): a1b2"),
        "{}",
        j.reason
    );
    assert!(!j.rollback);
    // Whatever the verdict: an action waits for a human.
    let v = verdict(VerdictStatus::Ok, 0);
    let e = Evidence {
        agent: AgentRun::Verdict(&v),
        ..e
    };
    check(&judge(&e), Outcome::Escalated, ExitKind::NeedsHuman);
}

#[test]
fn fixed_when_the_only_attempt_was_rejected_expired_or_denied_escalates() {
    let post = [r("svc-up", Pass)];
    let v = verdict(VerdictStatus::Fixed, 0);
    for (acts, says) in [
        (held(&[], &["b2"], &[], 0), "1 rejected by an operator (b2)"),
        (held(&[], &[], &["c3"], 0), "1 not approved in time (c3)"),
        (held(&[], &[], &[], 2), "2 denied by policy"),
    ] {
        let e = Evidence {
            post_before: &post,
            post: &post,
            acts: &acts,
            ..ev(AgentRun::Verdict(&v))
        };
        let j = judge(&e);
        check(&j, Outcome::Escalated, ExitKind::NeedsHuman);
        assert!(
            j.reason.starts_with(
                "not fixed: the agent reported `fixed`, but no state-changing call ran"
            ) && j.reason.contains(says),
            "{}",
            j.reason
        );
        // An `ok` verdict with a denied call stays ok: nothing claims a fix.
        let ok = verdict(VerdictStatus::Ok, 0);
        let e = Evidence {
            agent: AgentRun::Verdict(&ok),
            ..e
        };
        check(&judge(&e), Outcome::Ok, ExitKind::Ok);
    }
    // A change that ran makes the fix, even beside a denied call.
    let acts = Acts {
        denied: 1,
        ..wrote()
    };
    let e = Evidence {
        post_before: &post,
        post: &post,
        acts: &acts,
        ..ev(AgentRun::Verdict(&v))
    };
    check(&judge(&e), Outcome::Fixed, ExitKind::Ok);
}

#[test]
fn rollback_only_when_the_agent_changed_state_and_a_check_regressed() {
    let pass = [r("svc-up", Pass)];
    let fail = [r("svc-up", Fail)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let changed = wrote();
    let denied = held(&[], &[], &[], 1);
    // (post before, acts, rollback?, reason contains)
    let cases: [(&[CheckResult], &Acts, bool, &str); 4] = [
        (
            &pass,
            &changed,
            true,
            "passed before the run and failed after it",
        ),
        (
            &pass,
            &denied,
            false,
            "no state-changing call (held back: 1 denied by policy)",
        ),
        (&fail, &changed, false, "already failed before the run"),
        (&fail, &denied, false, "already failed before the run"),
    ];
    for (before, acts, rollback, says) in cases {
        let e = Evidence {
            post_before: before,
            post: &fail,
            acts,
            ..ev(AgentRun::Verdict(&v))
        };
        let j = judge(&e);
        check(&j, Outcome::Failed, ExitKind::ValidationFailed);
        assert_eq!(j.rollback, rollback, "{before:?} {acts:?}: {j:?}");
        assert!(j.rollback_reason.contains(says), "{}", j.rollback_reason);
    }
    // Nothing fails: nothing to roll back.
    let e = Evidence {
        post_before: &pass,
        post: &pass,
        acts: &changed,
        ..ev(AgentRun::Verdict(&v))
    };
    let j = judge(&e);
    check(&j, Outcome::Fixed, ExitKind::Ok);
    assert!(!j.rollback);
    assert!(
        j.rollback_reason
            .starts_with("no post-action check or invariant fails"),
        "{}",
        j.rollback_reason
    );
}

#[test]
fn needs_attention_failed_or_proposals_escalate() {
    for (status, proposed) in [
        (VerdictStatus::NeedsAttention, 0),
        (VerdictStatus::Failed, 0),
        (VerdictStatus::Ok, 1),
        (VerdictStatus::Fixed, 2),
    ] {
        let v = verdict(status.clone(), proposed);
        let j = judge(&ev(AgentRun::Verdict(&v)));
        check(&j, Outcome::Escalated, ExitKind::NeedsHuman);
        assert!(!j.rollback, "{status:?}");
    }
}

#[test]
fn on_attention_with_everything_green_makes_no_model_call() {
    let stat = [r("flake", Pass)];
    let pre = [r("quorum", Pass)];
    let inv = [r("disk", Pass), r("consul", Unavailable)];
    let post = [r("svc-up", Pass)];
    let e = Evidence {
        static_: &stat,
        preflight: &pre,
        invariants_before: &inv,
        post: &post,
        model: ModelPolicy::OnAttention,
        ..ev(AgentRun::NotStarted)
    };
    let Some(j) = gate(&e) else {
        panic!("the model would have been called")
    };
    check(&j, Outcome::NoAction, ExitKind::Ok);
    // Passed and unavailable are counted apart: 4 passed, 1 (consul) could not be observed.
    assert!(
        j.reason
            .starts_with("no action: 4 check(s) passed, 1 unavailable here (consul), none failed"),
        "{}",
        j.reason
    );
    assert!(j.reason.contains("not called"), "{}", j.reason);
    assert_eq!(j.unavailable, ["consul"]);
    check(&judge(&e), Outcome::NoAction, ExitKind::Ok);
    // Three of four unavailable is not "all 4 green".
    let inv = [
        r("disk", Pass),
        r("consul", Unavailable),
        r("nomad", Unavailable),
        r("units", Unavailable),
    ];
    let e = Evidence {
        invariants_before: &inv,
        model: ModelPolicy::OnAttention,
        ..ev(AgentRun::NotStarted)
    };
    let j = gate(&e).unwrap();
    assert!(
        j.reason.starts_with(
            "no action: 1 check(s) passed, 3 unavailable here (consul, nomad, units), none failed"
        ),
        "{}",
        j.reason
    );
    let inv = [r("disk", Pass)];
    let e = Evidence {
        invariants_before: &inv,
        model: ModelPolicy::OnAttention,
        ..ev(AgentRun::NotStarted)
    };
    let j = gate(&e).unwrap();
    assert!(
        j.reason
            .starts_with("no action: all 1 check(s) passed, no probe needs attention and the host"),
        "{}",
        j.reason
    );
}

#[test]
fn on_attention_calls_the_model_when_something_needs_it() {
    let inv_bad = [r("disk", Fail)];
    let post_bad = [r("svc-up", Fail)];
    let cases = [
        // A probe signals attention.
        Evidence {
            model: ModelPolicy::OnAttention,
            attention: true,
            ..ev(AgentRun::NotStarted)
        },
        // An invariant fails before the run.
        Evidence {
            model: ModelPolicy::OnAttention,
            invariants_before: &inv_bad,
            ..ev(AgentRun::NotStarted)
        },
        // The goal's success criteria do not hold yet.
        Evidence {
            model: ModelPolicy::OnAttention,
            post: &post_bad,
            ..ev(AgentRun::NotStarted)
        },
        // The default policy always calls the model.
        ev(AgentRun::NotStarted),
    ];
    for e in cases {
        assert!(gate(&e).is_none(), "{e:?}");
        // Not started although allowed: the pipeline broke its side of the contract.
        check(&judge(&e), Outcome::Failed, ExitKind::AgentFailed);
    }
}

#[test]
fn on_attention_run_that_fixed_things_is_fixed_not_no_action() {
    // The model was called because the post checks failed up front; now they pass.
    let post_after = [r("svc-up", Pass)];
    let v = verdict(VerdictStatus::Fixed, 0);
    let e = Evidence {
        model: ModelPolicy::OnAttention,
        post: &post_after,
        ..ev(AgentRun::Verdict(&v))
    };
    assert!(gate(&e).is_none());
    check(&judge(&e), Outcome::Fixed, ExitKind::Ok);
}

#[test]
fn judgement_serialises_with_snake_case_outcome() {
    let v = verdict(VerdictStatus::Ok, 0);
    let j = judge(&ev(AgentRun::Verdict(&v)));
    let s = serde_json::to_value(&j).unwrap_or_default();
    assert_eq!(s["outcome"], "ok");
    assert_eq!(s["exit"], "ok");
}
