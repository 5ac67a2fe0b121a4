//! The daily budget: today's spend from the runs' records, and the once-a-day notice.

use time::OffsetDateTime;

use super::{Router, RouterError};

pub(super) fn day_of(now: OffsetDateTime) -> String {
    let d = now.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Router {
    /// The worker cancelled a queued job because the day's budget is spent: whether the
    /// operator must be told now (once per UTC day, the same notice as the routing decisions').
    pub fn tell_budget(&mut self, now: OffsetDateTime) -> bool {
        let today = day_of(now);
        if self.state.budget_told.as_deref() == Some(today.as_str()) {
            return false;
        }
        self.state.budget_told = Some(today);
        self.state_changed = true;
        true
    }

    /// USD spent by runs started on `now`'s UTC day (see [`crate::engine::run_index::spent_on_day`]); finished runs are
    /// read once and remembered.
    pub fn spent_today(&mut self, now: OffsetDateTime) -> Result<f64, RouterError> {
        self.runs.refresh(&self.ledger, now, self.flap_window())?;
        Ok(self.runs.spent_on(now))
    }
}
