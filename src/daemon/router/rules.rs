//! The routing rules, one function each, in the order [`Router::decide`] asks them (see the
//! router's module docs for why that order). A rule returns the decision when it applies, and
//! `None` to let the next one look.

use std::borrow::Cow;

use time::OffsetDateTime;

use super::budget::day_of;
use super::forget::{StateWindow, key};
use super::{
    Flap, Matched, RateScope, Routed, Router, RouterError, RoutingDecision, is_resolved,
    withdraw_actions,
};
use crate::base::signal::Signal;
use crate::daemon::queue::Session;

/// A (goal, subject) pair's keys in the router's state (see [`key`]).
struct Keys<'a> {
    goal: Cow<'a, str>,
    subject: Cow<'a, str>,
}

/// A decision with its reason, and the route that matched (if one did).
fn routed(decision: RoutingDecision, reason: String, m: Option<&Matched>) -> Routed {
    Routed {
        decision,
        reason,
        route: m.map(|m| m.route.clone()),
    }
}

impl Router {
    /// Decides one signal: the first rule that applies, else a job is queued.
    pub(super) fn decide(
        &mut self,
        queue: &mut Session<'_>,
        s: &Signal,
        now: OffsetDateTime,
    ) -> Result<Routed, RouterError> {
        if is_resolved(s) {
            return self.resolve(queue, s, now);
        }
        if let Some(r) = self.in_maintenance(s, now) {
            return Ok(r);
        }
        let Some(m) = self.routes.find(s) else {
            return Ok(self.no_route(s));
        };
        // Counted before the merge: a unit failing again while its run is queued is failing
        // again (an alert's repeats are not new failures, see `note_failure`).
        self.note_failure(s, now.unix_timestamp());
        if let Some(r) = merged(queue, s, &m, now)? {
            return Ok(r);
        }
        if let Some(r) = self.held_for_flapping(s, &m, now)? {
            return Ok(r);
        }
        // The cooldown's keys, computed once: a long subject is hashed.
        let keys = Keys {
            goal: key(&m.goal),
            subject: key(&s.subject),
        };
        if let Some(r) = self.in_cooldown(s, &m, &keys, now) {
            return Ok(r);
        }
        if let Some(r) = self.rate_limited(s, &m, now) {
            return Ok(r);
        }
        if let Some(r) = self.over_budget(&m, now)? {
            return Ok(r);
        }
        let (job_id, reason) = self.enqueue(queue, s, &m, keys, now)?;
        Ok(Routed {
            decision: RoutingDecision::Enqueue {
                goal: m.goal,
                vars: m.vars,
                job_id,
            },
            reason,
            route: Some(m.route),
        })
    }

    /// 1. A resolved alert cancels the queued work of its fingerprint and withdraws the actions
    ///    its runs proposed; nothing else applies to it.
    fn resolve(
        &mut self,
        queue: &mut Session<'_>,
        s: &Signal,
        now: OffsetDateTime,
    ) -> Result<Routed, RouterError> {
        let jobs = queue.cancel_fingerprint(
            &s.fingerprint,
            s.source,
            &format!("alert resolved ({})", s.subject),
            now,
        )?;
        // Work that never ran should not hold a cooldown or count against the rate limits.
        for job in &jobs {
            let queued = job.enqueued.unix_timestamp();
            let subject = key(&job.signal.subject);
            if let Some(g) = self.state.last_run.get_mut(key(&job.goal).as_ref())
                && g.get(subject.as_ref()) == Some(&queued)
            {
                g.remove(subject.as_ref());
            }
            if let Some(v) = self.state.enqueued.get_mut(job.signal.source.as_str())
                && let Some(i) = v.iter().position(|&x| x == queued)
            {
                v.remove(i);
            }
        }
        // The alert's next firing is a new failure.
        let was_firing = self
            .state
            .firing
            .remove(key(&s.fingerprint).as_ref())
            .is_some();
        self.state_changed |= !jobs.is_empty() || was_firing;
        let cancelled: Vec<String> = jobs.into_iter().map(|j| j.id).collect();
        let actions = withdraw_actions(&self.ledger, s)?;
        let reason = format!(
            "alert resolved: {} queued job(s) with fingerprint {} cancelled; {} pending \
             action(s) expired, {} still needed by other subjects",
            cancelled.len(),
            s.fingerprint,
            actions.expired.len(),
            actions.narrowed.len()
        );
        let decision = RoutingDecision::Resolved {
            cancelled,
            expired_actions: actions.expired,
            narrowed_actions: actions.narrowed,
        };
        Ok(routed(decision, reason, None))
    }

    /// 2. A maintenance window suppresses everything; such signals do not count as failures.
    fn in_maintenance(&self, s: &Signal, now: OffsetDateTime) -> Option<Routed> {
        let window = self.maintenance.active(&s.subject, now)?;
        let reason = format!("maintenance window `{window}` covers `{}`", s.subject);
        Some(routed(
            RoutingDecision::Maintenance { window },
            reason,
            None,
        ))
    }

    /// 3. No route matches: nothing to do, recorded.
    fn no_route(&self, s: &Signal) -> Routed {
        let reason = format!(
            "no route in {} matches source `{}` subject `{}`",
            self.routes.origin,
            s.source.as_str(),
            s.subject
        );
        routed(RoutingDecision::NoRoute, reason, None)
    }

    /// 5. The subject keeps failing (acute, then chronic): a human must look instead of another
    ///    run; escalated once per flapping window.
    fn held_for_flapping(
        &mut self,
        s: &Signal,
        m: &Matched,
        now: OffsetDateTime,
    ) -> Result<Option<Routed>, RouterError> {
        let Some(Flap {
            kind,
            window: w,
            count,
            from_runs,
            at_least,
        }) = self.flapping(&s.subject, now)?
        else {
            return Ok(None);
        };
        let t = now.unix_timestamp();
        let window = i64::try_from(w.window_secs).unwrap_or(i64::MAX);
        let subject = key(&s.subject);
        let last = self.state.escalated.get(subject.as_ref()).copied();
        let escalate = last.is_none_or(|last| last <= t.saturating_sub(window));
        if escalate {
            if last.is_none() {
                self.remember(StateWindow::Escalated);
            }
            self.state.escalated.insert(subject.into_owned(), t);
            self.state_changed = true;
        }
        let reason = format!(
            "`{}` failed {}{count} times in {} s ({} of them runs that ended failed or \
             escalated; {kind:?} flapping, threshold {}): a human must look instead of \
             another run{}",
            s.subject,
            if at_least { "at least " } else { "" },
            w.window_secs,
            from_runs,
            w.count,
            if escalate {
                "; escalated, operator told"
            } else {
                "; already escalated"
            }
        );
        let decision = RoutingDecision::Flapping {
            kind,
            count,
            escalate,
        };
        Ok(Some(routed(decision, reason, Some(m))))
    }

    /// 6. The goal ran on the subject within its cooldown.
    fn in_cooldown(
        &self,
        s: &Signal,
        m: &Matched,
        keys: &Keys<'_>,
        now: OffsetDateTime,
    ) -> Option<Routed> {
        let t = now.unix_timestamp();
        let cooldown = i64::try_from(m.cooldown_secs.unwrap_or(self.settings.cooldown_secs))
            .unwrap_or(i64::MAX);
        let last = *self
            .state
            .last_run
            .get(keys.goal.as_ref())
            .and_then(|g| g.get(keys.subject.as_ref()))?;
        let until = last.saturating_add(cooldown);
        if until <= t {
            return None;
        }
        let until = OffsetDateTime::from_unix_timestamp(until).unwrap_or(now);
        let reason = format!(
            "`{}` on `{}` was queued {} s ago; cooldown is {cooldown} s",
            m.goal,
            s.subject,
            t - last
        );
        Some(routed(RoutingDecision::Cooldown { until }, reason, Some(m)))
    }

    /// 7. Too many runs in the last hour: from the signal's source, then overall.
    fn rate_limited(&mut self, s: &Signal, m: &Matched, now: OffsetDateTime) -> Option<Routed> {
        let t = now.unix_timestamp();
        let source = s.source.as_str();
        let per_source =
            u32::try_from(self.state.enqueued.get(source).map_or(0, Vec::len)).unwrap_or(u32::MAX);
        if per_source >= self.settings.max_runs_per_hour_per_source {
            let limit = self.settings.max_runs_per_hour_per_source;
            let notify = self.tell_rate_limit(&format!("source:{source}"), t);
            let reason = format!(
                "{per_source} runs from `{source}` in the last hour (limit {limit}): signal \
                 recorded, no run{}",
                if notify { "; operator told" } else { "" }
            );
            let decision = RoutingDecision::RateLimited {
                scope: RateScope::Source,
                count: per_source,
                limit,
                notify,
            };
            return Some(routed(decision, reason, Some(m)));
        }
        let overall = u32::try_from(self.state.enqueued.values().map(Vec::len).sum::<usize>())
            .unwrap_or(u32::MAX);
        if overall < self.settings.max_runs_per_hour {
            return None;
        }
        let limit = self.settings.max_runs_per_hour;
        let notify = self.tell_rate_limit("overall", t);
        let reason = format!(
            "{overall} runs in the last hour (limit {limit}): signal recorded, no run{}",
            if notify { "; operator told" } else { "" }
        );
        let decision = RoutingDecision::RateLimited {
            scope: RateScope::Overall,
            count: overall,
            limit,
            notify,
        };
        Some(routed(decision, reason, Some(m)))
    }

    /// 8. Today's runs spent the daily budget; the operator is told once a day.
    fn over_budget(
        &mut self,
        m: &Matched,
        now: OffsetDateTime,
    ) -> Result<Option<Routed>, RouterError> {
        let spent = self.spent_today(now)?;
        let budget = self.settings.daily_budget_usd;
        if spent < budget {
            return Ok(None);
        }
        let today = day_of(now);
        let notify = self.state.budget_told.as_deref() != Some(today.as_str());
        if notify {
            self.state.budget_told = Some(today);
            self.state_changed = true;
        }
        let reason = format!(
            "today's runs cost ${spent:.4}, the daily budget is ${budget:.2}: signal recorded, \
             no run{}",
            if notify { "; operator told" } else { "" }
        );
        let decision = RoutingDecision::OverBudget {
            spent,
            budget,
            notify,
        };
        Ok(Some(routed(decision, reason, Some(m))))
    }

    /// 9. Nothing held the signal back: a job is queued, counted for the rate limits and the
    ///    cooldown. Returns its id and the reason.
    fn enqueue(
        &mut self,
        queue: &mut Session<'_>,
        s: &Signal,
        m: &Matched,
        keys: Keys<'_>,
        now: OffsetDateTime,
    ) -> Result<(String, String), RouterError> {
        let t = now.unix_timestamp();
        let job = queue.push(s.clone(), &m.goal, m.vars.clone(), now)?;
        self.state_changed = true;
        self.state
            .enqueued
            .entry(s.source.as_str().to_string())
            .or_default()
            .push(t);
        let known = self
            .state
            .last_run
            .get(keys.goal.as_ref())
            .is_some_and(|g| g.contains_key(keys.subject.as_ref()));
        if !known {
            self.remember(StateWindow::LastRun);
        }
        self.state
            .last_run
            .entry(keys.goal.into_owned())
            .or_default()
            .insert(keys.subject.into_owned(), t);
        let reason = format!(
            "route `{}` → goal `{}` for `{}`: queued as job {}",
            m.route, m.goal, s.subject, job.id
        );
        Ok((job.id, reason))
    }
}

/// 4. A fingerprint already queued or running absorbs the signal.
fn merged(
    queue: &mut Session<'_>,
    s: &Signal,
    m: &Matched,
    now: OffsetDateTime,
) -> Result<Option<Routed>, RouterError> {
    let Some(job) = queue.merge(&s.fingerprint, now)? else {
        return Ok(None);
    };
    let reason = format!(
        "fingerprint {} is already {} as job {} ({} merged)",
        s.fingerprint,
        if job.state == crate::daemon::queue::JobState::Running {
            "running"
        } else {
            "queued"
        },
        job.id,
        job.merged
    );
    Ok(Some(routed(
        RoutingDecision::Merged { into: job.id },
        reason,
        Some(m),
    )))
}
