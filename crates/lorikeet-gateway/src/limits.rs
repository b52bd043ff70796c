//! Token buckets: per gateway EUI (in the registry) and per source address (here,
//! checked before anything else is looked at).
//!
//! Pure state: the caller passes `now`, so every rule is tested by stepping time by hand.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `rate_per_s`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn full(burst: f64) -> Self {
        TokenBucket {
            tokens: burst,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant, rate_per_s: f64, burst: f64) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate_per_s).min(burst);
        }
        self.last = Some(now);
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant, rate_per_s: f64, burst: f64) -> bool {
        self.refill(now, rate_per_s, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely by `now`: forgetting it then
    /// changes nothing (a new bucket starts full).
    fn is_full_at(&self, now: Instant, rate_per_s: f64, burst: f64) -> bool {
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.tokens + elapsed * rate_per_s >= burst
    }
}

/// How often a full address table is swept for idle entries, at most: a sweep
/// walks the whole table, so a flood of new addresses must not trigger one each.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The per-source-address limit: one token bucket per IPv4 address or IPv6 /64
/// (one subscriber's prefix: per-address buckets in it would be free to multiply).
///
/// At most `max_addresses` buckets are kept. When the table is full, entries that
/// have refilled completely are swept out (at most once per [`SWEEP_INTERVAL`]);
/// addresses that still find no room share one overflow bucket, so memory stays
/// bounded and the addresses already tracked (the real gateways, sending steadily)
/// keep their own budgets.
#[derive(Debug)]
pub(crate) struct AddressLimiter {
    rate_per_s: f64,
    burst: f64,
    max_addresses: usize,
    buckets: HashMap<IpAddr, TokenBucket>,
    overflow: TokenBucket,
    last_sweep: Option<Instant>,
}

impl AddressLimiter {
    /// `rate_per_s` 0 turns the limit off.
    pub(crate) fn new(rate_per_s: u32, burst: u32, max_addresses: usize) -> Self {
        let burst = f64::from(burst.max(1));
        AddressLimiter {
            rate_per_s: f64::from(rate_per_s),
            burst,
            max_addresses,
            buckets: HashMap::new(),
            overflow: TokenBucket::full(burst),
            last_sweep: None,
        }
    }

    /// Whether a datagram from `ip` may be looked at.
    pub(crate) fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.rate_per_s <= 0.0 {
            return true;
        }
        let (rate, burst) = (self.rate_per_s, self.burst);
        let key = address_key(ip);
        if let Some(b) = self.buckets.get_mut(&key) {
            return b.take(now, rate, burst);
        }
        if self.buckets.len() >= self.max_addresses {
            let due = self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_INTERVAL);
            if due {
                self.last_sweep = Some(now);
                self.buckets.retain(|_, b| !b.is_full_at(now, rate, burst));
            }
            if self.buckets.len() >= self.max_addresses {
                return self.overflow.take(now, rate, burst);
            }
        }
        let mut b = TokenBucket::full(burst);
        let ok = b.take(now, rate, burst);
        self.buckets.insert(key, b);
        ok
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// The key of an address: IPv4 as is (also when written as an IPv4-mapped IPv6
/// address), IPv6 cut to its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(2.0);
        assert!(b.take(t0, 10.0, 2.0));
        assert!(b.take(t0, 10.0, 2.0));
        assert!(!b.take(t0, 10.0, 2.0));
        assert!(b.take(t0 + Duration::from_millis(100), 10.0, 2.0));
        assert!(!b.is_full_at(t0 + Duration::from_millis(100), 10.0, 2.0));
        assert!(b.is_full_at(t0 + Duration::from_millis(300), 10.0, 2.0));
    }

    #[test]
    fn each_address_has_its_own_bucket() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(1, 3, 100);
        for _ in 0..3 {
            assert!(l.check(v4(1), t0));
        }
        assert!(!l.check(v4(1), t0), "the flooding address is limited");
        assert!(l.check(v4(2), t0), "another address is not");
        assert!(l.check(v4(1), t0 + Duration::from_secs(1)), "refilled");
    }

    #[test]
    fn zero_rate_turns_the_limit_off() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(0, 1, 1);
        for _ in 0..1_000 {
            assert!(l.check(v4(1), t0));
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(1, 1, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(a, t0));
        assert!(!l.check(b, t0), "same /64");
        assert!(l.check(c, t0), "another /64");
        assert!(l.check(v4(7), t0));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(!l.check(mapped, t0), "the same IPv4 address");
    }

    #[test]
    fn a_full_table_sweeps_idle_entries_and_shares_an_overflow_bucket() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(10, 2, 3);
        // A steady gateway, and two addresses that sent once.
        for a in 1..=3 {
            assert!(l.check(v4(a), t0));
        }
        assert!(l.check(v4(1), t0));
        assert_eq!(l.tracked(), 3);
        // Table full, nothing idle yet: newcomers share the overflow bucket (burst 2).
        assert!(l.check(v4(10), t0));
        assert!(l.check(v4(11), t0));
        assert!(!l.check(v4(12), t0), "overflow bucket spent");
        assert!(
            !l.check(v4(1), t0),
            "the tracked address keeps its own state"
        );
        assert_eq!(l.tracked(), 3);
        // A second later the idle entries have refilled and are swept; address 1 is
        // empty-then-refilled too (10/s), so all three go and newcomers get room.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check(v4(12), t1));
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn sweeps_are_spaced_out() {
        let t0 = Instant::now();
        let mut l = AddressLimiter::new(1, 1, 1);
        assert!(l.check(v4(1), t0)); // tracked, empty
        assert!(l.check(v4(2), t0)); // overflow; sweeps (nothing idle)
        let t1 = t0 + Duration::from_millis(1_500);
        // Address 1 has refilled, and the last sweep is 1.5 s old: this one sweeps.
        assert!(l.check(v4(3), t1));
        assert_eq!(l.tracked(), 1);
        // Address 3 now holds the only slot; within a second no sweep runs.
        let t2 = t1 + Duration::from_millis(500);
        assert!(l.check(v4(4), t2), "overflow refilled by then");
        assert!(
            !l.check(v4(5), t2),
            "and now spent; no sweep within the interval"
        );
    }
}
