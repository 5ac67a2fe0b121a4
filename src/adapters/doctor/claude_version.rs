//! The Claude Code versions steward is tested against: the one place that names them.
//! `scripts/test.sh` reads both constants from this file and runs the real-CLI tests against
//! each; `steward doctor` names the range and warns outside it.

/// The oldest `@anthropic-ai/claude-code` version the tests run against.
pub const OLDEST_TESTED: &str = "2.1.197";
/// The newest version the tests run against (what `npm install` gave when it was last raised).
pub const NEWEST_TESTED: &str = "2.1.332";

/// Where an installed version stands against the tested range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Tested,
    Older,
    Newer,
    /// `claude --version` printed something that is not `X.Y.Z …`.
    Unknown,
}

/// `2.1.332 (Claude Code)` → `(2, 1, 332)`.
pub fn parse(text: &str) -> Option<(u64, u64, u64)> {
    let word = text.split_whitespace().next()?;
    let mut parts = word.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

pub fn fit(version_text: &str) -> Fit {
    let (Some(v), Some(lo), Some(hi)) = (
        parse(version_text),
        parse(OLDEST_TESTED),
        parse(NEWEST_TESTED),
    ) else {
        return Fit::Unknown;
    };
    if v < lo {
        Fit::Older
    } else if v > hi {
        Fit::Newer
    } else {
        Fit::Tested
    }
}

/// `2.1.197 to 2.1.332`, for messages.
pub fn range() -> String {
    format!("{OLDEST_TESTED} to {NEWEST_TESTED}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_placed_against_the_range() {
        assert_eq!(fit("2.1.197 (Claude Code)"), Fit::Tested);
        assert_eq!(fit(&format!("{NEWEST_TESTED} (Claude Code)")), Fit::Tested);
        assert_eq!(fit("2.1.250"), Fit::Tested);
        assert_eq!(fit("2.1.196 (Claude Code)"), Fit::Older);
        assert_eq!(fit("2.0.999"), Fit::Older);
        assert_eq!(fit("2.2.0 (Claude Code)"), Fit::Newer);
        assert_eq!(fit("10.0.0"), Fit::Newer);
        assert_eq!(fit("claude"), Fit::Unknown);
        assert_eq!(fit("2.1"), Fit::Unknown);
        assert_eq!(fit("2.1.3.4"), Fit::Unknown);
        assert!(parse(OLDEST_TESTED) <= parse(NEWEST_TESTED));
    }
}
