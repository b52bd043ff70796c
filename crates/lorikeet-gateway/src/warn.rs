//! Rate-limited warnings: a misbehaving peer can send thousands of bad datagrams a
//! second, the log should get one line per reason per interval with a count.

use std::time::{Duration, Instant};

use crate::counters::DropReason;

/// At most one warning per reason per this interval.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    last: Option<Instant>,
    suppressed: u64,
}

/// Decides which drops are worth a log line.
#[derive(Debug, Default)]
pub(crate) struct WarnLimiter {
    slots: [Slot; DropReason::ALL.len()],
}

impl WarnLimiter {
    /// `Some(suppressed)` when a warning for `reason` should be logged now, with the
    /// number of drops of that reason not logged since the previous one.
    pub(crate) fn check(&mut self, reason: DropReason, now: Instant) -> Option<u64> {
        let slot = self.slots.get_mut(reason as usize)?;
        let due = slot
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_INTERVAL);
        if due {
            slot.last = Some(now);
            Some(std::mem::take(&mut slot.suppressed))
        } else {
            slot.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_reason_per_interval() {
        let t0 = Instant::now();
        let mut w = WarnLimiter::default();
        assert_eq!(w.check(DropReason::InvalidJson, t0), Some(0));
        assert_eq!(w.check(DropReason::InvalidJson, t0), None);
        assert_eq!(
            w.check(DropReason::InvalidJson, t0 + Duration::from_secs(9)),
            None
        );
        assert_eq!(
            w.check(DropReason::BadVersion, t0),
            Some(0),
            "reasons are independent"
        );
        assert_eq!(
            w.check(DropReason::InvalidJson, t0 + WARN_INTERVAL),
            Some(2)
        );
        assert_eq!(w.check(DropReason::InvalidJson, t0 + WARN_INTERVAL), None);
    }
}
