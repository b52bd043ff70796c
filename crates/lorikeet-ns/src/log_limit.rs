//! A throttle on the `log` events that refused uplinks produce.
//!
//! Anyone with a radio can send a frame with a real DevAddr (it travels in clear)
//! and a made-up MIC, replay a captured frame, or send a JoinRequest with a known
//! DevEUI. Each would otherwise become a stored `log` event delivered to the
//! device's integrator: a way to fill their database and webhook from outside. So
//! these events are limited per DevAddr (data frames) or DevEUI (JoinRequests) with
//! a token bucket; the rest are only counted (`Counters::log_events_suppressed`).
//! The frames themselves are dropped and counted as before either way.

use std::collections::HashMap;
use std::time::Instant;

use lorikeet_lorawan::{DevAddr, Eui64};

/// What a throttled log event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LogKey {
    /// A data frame's address (whichever device it turns out to be).
    DevAddr(DevAddr),
    /// A JoinRequest's DevEUI.
    DevEui(Eui64),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The smallest table size at which idle buckets are swept.
const SWEEP_MIN: usize = 1_024;

/// Token buckets of `per_minute` events, refilled evenly over the minute.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    per_minute: u32,
    buckets: HashMap<LogKey, Bucket>,
    /// Sweep idle buckets when the table grows past this (then double it), so the
    /// cost of a sweep is spread over as many insertions.
    sweep_at: usize,
}

impl LogLimiter {
    /// `per_minute` 0: no such log event is emitted at all (all are counted).
    pub(crate) fn new(per_minute: u32) -> Self {
        LogLimiter {
            per_minute,
            buckets: HashMap::new(),
            sweep_at: SWEEP_MIN,
        }
    }

    /// Whether an event for `key` may be emitted at `now`.
    pub(crate) fn allow(&mut self, key: LogKey, now: Instant) -> bool {
        if self.per_minute == 0 {
            return false;
        }
        let burst = f64::from(self.per_minute);
        let rate_per_s = burst / 60.0;
        if self.buckets.len() >= self.sweep_at && !self.buckets.contains_key(&key) {
            self.buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + elapsed * rate_per_s < burst
            });
            self.sweep_at = (self.buckets.len() * 2).max(SWEEP_MIN);
        }
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate_per_s).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_few_per_minute_per_key() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(3);
        let a = LogKey::DevAddr(DevAddr::from_u32(1));
        let b = LogKey::DevAddr(DevAddr::from_u32(2));
        let allowed = (0..100).filter(|_| l.allow(a, t0)).count();
        assert_eq!(allowed, 3);
        assert!(l.allow(b, t0), "another DevAddr has its own budget");
        assert!(
            l.allow(LogKey::DevEui(Eui64::from_u64(1)), t0),
            "and so does a DevEUI"
        );
        // One more every 20 s.
        assert!(!l.allow(a, t0 + Duration::from_secs(19)));
        assert!(l.allow(a, t0 + Duration::from_secs(20)));
        assert!(!l.allow(a, t0 + Duration::from_secs(20)));
        // Never more than the burst, however long it was quiet.
        let later = t0 + Duration::from_secs(3_600);
        assert_eq!((0..10).filter(|_| l.allow(a, later)).count(), 3);
    }

    #[test]
    fn zero_emits_none() {
        let mut l = LogLimiter::new(0);
        assert!(!l.allow(LogKey::DevAddr(DevAddr::from_u32(1)), Instant::now()));
    }

    #[test]
    fn idle_buckets_are_swept_as_the_table_grows() {
        let t0 = Instant::now();
        let mut l = LogLimiter::new(60);
        for i in 0..SWEEP_MIN as u32 {
            assert!(l.allow(LogKey::DevAddr(DevAddr::from_u32(i)), t0));
        }
        assert_eq!(l.tracked(), SWEEP_MIN);
        // Two seconds later every bucket has refilled (1/s): the next new key sweeps.
        let t1 = t0 + Duration::from_secs(2);
        assert!(l.allow(LogKey::DevAddr(DevAddr::from_u32(u32::MAX)), t1));
        assert_eq!(l.tracked(), 1);
    }
}
