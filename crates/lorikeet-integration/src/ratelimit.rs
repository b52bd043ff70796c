//! Rate-limited logging: a broken endpoint or a flood of bad commands must not flood
//! the log. Each key logs at most once per interval; what was held back is counted and
//! reported with the next line that gets through.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Most keys remembered; past it the memory is reset (a burst of new keys then logs
/// once more each, which is harmless).
const MAX_KEYS: usize = 10_000;

/// Per-key log throttle.
#[derive(Debug)]
pub(crate) struct LogLimiter<K> {
    every: Duration,
    seen: HashMap<K, (Instant, u64)>,
}

impl<K: Hash + Eq> LogLimiter<K> {
    pub(crate) fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            seen: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a line for `key` may be written now (with how many were
    /// held back since the last one), `None` when it should be skipped.
    pub(crate) fn allow(&mut self, key: K, now: Instant) -> Option<u64> {
        if self.seen.len() >= MAX_KEYS && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        match self.seen.get_mut(&key) {
            Some((last, suppressed)) if now.saturating_duration_since(*last) < self.every => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                self.seen.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_per_key() {
        let mut l = LogLimiter::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(l.allow("a", t), Some(0));
        assert_eq!(l.allow("a", t + Duration::from_secs(1)), None);
        assert_eq!(l.allow("a", t + Duration::from_secs(2)), None);
        assert_eq!(l.allow("b", t + Duration::from_secs(2)), Some(0));
        assert_eq!(l.allow("a", t + Duration::from_secs(11)), Some(2));
        assert_eq!(l.allow("a", t + Duration::from_secs(12)), None);
    }
}
