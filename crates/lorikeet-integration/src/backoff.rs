//! Retry delays: exponential backoff with "full jitter" (a uniform random wait up to
//! the exponential bound), which spreads the retries of many failed deliveries over
//! time instead of sending them back in waves.

use std::time::Duration;

use rand::Rng;

/// The exponential bound before the retry that follows `failures` failed attempts:
/// `min(max, base * 2^(failures - 1))` (the first retry is bounded by `base`).
pub fn retry_bound(failures: u32, base: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1);
    1u32.checked_shl(exp)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |d| d.min(max))
}

/// A random delay in `[0, retry_bound(failures, base, max)]`.
pub fn retry_delay(failures: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let bound = retry_bound(failures, base, max);
    let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.gen_range(0..=micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn bound_doubles_up_to_the_max() {
        let max = Duration::from_secs(300);
        assert_eq!(retry_bound(0, S, max), S);
        assert_eq!(retry_bound(1, S, max), S);
        assert_eq!(retry_bound(2, S, max), 2 * S);
        assert_eq!(retry_bound(5, S, max), 16 * S);
        assert_eq!(retry_bound(9, S, max), 256 * S);
        assert_eq!(retry_bound(10, S, max), max);
        assert_eq!(retry_bound(u32::MAX, S, max), max);
        assert_eq!(
            retry_bound(33, Duration::from_secs(1_000), Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn delays_stay_within_the_bound_and_spread() {
        let mut rng = StdRng::seed_from_u64(7);
        let max = Duration::from_secs(300);
        let delays: Vec<Duration> = (0..1_000)
            .map(|_| retry_delay(4, S, max, &mut rng))
            .collect();
        assert!(delays.iter().all(|d| *d <= 8 * S));
        // Full jitter: both halves of the range are used.
        assert!(delays.iter().any(|d| *d < 4 * S));
        assert!(delays.iter().any(|d| *d > 4 * S));
    }
}
