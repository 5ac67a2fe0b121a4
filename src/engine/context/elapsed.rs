//! Time passing is not a change. Probe output often says how long something has been up or how
//! long ago it happened (`Up 3 hours`, `2 seconds ago`, `37min ago`): those phrases are masked
//! before a probe's output is compared with the subject's last run, so a host where only the
//! clock moved reads as unchanged. Only the comparison masks them; the prompt shows the real
//! text. A restart that shows only as a shorter uptime is the snapshot's `restarted` change, and
//! a probe naming an item that needs attention is shown whole whatever its digest says.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Durations that say how long ago or how long up: spelled out (`Up 2 seconds`, `3 hours ago`,
/// `About a minute ago`, `Less than a second ago`) and systemd's compact ones (`37min ago`,
/// `1h 2min ago`). A bare duration (`kept for 3 days`) is not elapsed time and still counts.
static ELAPSED: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \bup\ (?:about\ |less\ than\ )?(?:an?|\d+)\ (?:second|minute|hour|day|week|month|year)s?(?:\ ago)?\b
        | \b(?:about\ |less\ than\ )?(?:an?|\d+)\ (?:second|minute|hour|day|week|month|year)s?\ ago\b
        | \b(?:\d+(?:\.\d+)?(?:us|ms|s|min|h|d|w|y)\ ?)+ago\b",
    )
    .ok()
});

/// `text` with every elapsed-time phrase replaced by one marker.
pub fn masked(text: &str) -> Cow<'_, str> {
    match ELAPSED.as_ref() {
        Some(re) => re.replace_all(text, "<elapsed>"),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_phrases_are_masked_and_nothing_else() {
        let docker = r#""Status": "Up 2 seconds ago", "CreatedAt": "About a minute ago""#;
        let later = r#""Status": "Up 41 minutes ago", "CreatedAt": "2 hours ago""#;
        assert_eq!(masked(docker), masked(later));
        let systemd = "Active: active (running) since Tue 2026-12-01 02:00:00 UTC; 37min ago";
        let systemd_later =
            "Active: active (running) since Tue 2026-12-01 02:00:00 UTC; 1h 2min ago";
        assert_eq!(masked(systemd), masked(systemd_later));
        assert_eq!(masked("Up Less than a second"), masked("Up 3 weeks"));
        // What is not elapsed time still counts: a new start time, a state, a count, a size.
        let restarted = "Active: active (running) since Tue 2026-12-01 02:40:00 UTC; 3s ago";
        assert_ne!(masked(systemd), masked(restarted));
        assert_ne!(
            masked("Exited (0) 2 minutes ago"),
            masked("Exited (137) 2 minutes ago")
        );
        assert_ne!(masked("restarts: 3"), masked("restarts: 4"));
        assert_eq!(masked("/dev/vda 10G 9.3G 93% /"), "/dev/vda 10G 9.3G 93% /");
        assert_eq!(masked("timeout 5s"), "timeout 5s");
        // A duration that is not elapsed time is kept.
        assert_ne!(
            masked("backups kept for 3 days"),
            masked("backups kept for 7 days")
        );
        assert_eq!(
            masked(" 10:00 up 3 days,  2 users"),
            " 10:00 <elapsed>,  2 users"
        );
    }
}
