//! Deaths per container (those not stopped on purpose) in the acute and chronic windows.

use std::collections::{HashMap, VecDeque};

use crate::config::docker::DockerConfig;
use crate::engine::incident::Flapping;

#[derive(Default)]
pub struct Deaths {
    by_container: HashMap<String, VecDeque<i64>>,
}

/// What one more death makes of a container.
pub struct Count {
    pub acute: usize,
    pub chronic: usize,
    pub flapping: Option<Flapping>,
}

const NANOS: i64 = 1_000_000_000;

impl Deaths {
    /// Records a death at `nanos` and counts the windows.
    pub fn record(&mut self, cfg: &DockerConfig, container: &str, nanos: i64) -> Count {
        let chronic_from = nanos - secs(cfg.chronic_window_secs);
        // Containers come and go (new names per deploy): those with no death left in the window
        // are forgotten, so the map holds only what the window does.
        if self.by_container.len() > 1024 {
            self.by_container
                .retain(|_, t| t.back().is_some_and(|last| *last >= chronic_from));
        }
        let times = self.by_container.entry(container.to_string()).or_default();
        times.push_back(nanos);
        while times.front().is_some_and(|t| *t < chronic_from) {
            times.pop_front();
        }
        let acute_from = nanos - secs(cfg.acute_window_secs);
        let acute = times.iter().filter(|t| **t >= acute_from).count();
        let chronic = times.len();
        let flapping = if acute >= cfg.acute_deaths.max(1) {
            Some(Flapping::Acute)
        } else if chronic >= cfg.chronic_deaths.max(1) {
            Some(Flapping::Chronic)
        } else {
            None
        };
        Count {
            acute,
            chronic,
            flapping,
        }
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / NANOS) * NANOS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acute_within_minutes_chronic_within_a_day() {
        let cfg = DockerConfig {
            acute_deaths: 3,
            acute_window_secs: 600,
            chronic_deaths: 4,
            chronic_window_secs: 86_400,
            ..DockerConfig::default()
        };
        let mut d = Deaths::default();
        let h = 3600 * NANOS;
        assert_eq!(d.record(&cfg, "web", 0).flapping, None);
        assert_eq!(d.record(&cfg, "web", h).flapping, None);
        assert_eq!(d.record(&cfg, "web", 2 * h).flapping, None);
        assert_eq!(
            d.record(&cfg, "web", 3 * h).flapping,
            Some(Flapping::Chronic)
        );
        assert_eq!(d.record(&cfg, "db", 0).acute, 1, "per container");
        let mut d = Deaths::default();
        d.record(&cfg, "web", 0);
        d.record(&cfg, "web", NANOS);
        assert_eq!(
            d.record(&cfg, "web", 2 * NANOS).flapping,
            Some(Flapping::Acute)
        );
        let later = d.record(&cfg, "web", 30 * h);
        assert_eq!((later.acute, later.chronic), (1, 1), "old deaths age out");
    }
}
