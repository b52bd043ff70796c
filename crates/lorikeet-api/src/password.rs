//! Passwords of console users: argon2id hashes (PHC strings), computed off the async
//! threads, and a throttle of failed sign-ins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

/// Shortest accepted password.
pub const MIN_LEN: usize = 8;
/// Longest accepted password (hashing cost grows with it).
pub const MAX_LEN: usize = 1024;

/// 400 unless `password` is an acceptable new password.
pub fn check_new(field: &str, password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(ApiError::bad_request(format!(
            "{field} must be at least {MIN_LEN} characters long"
        )));
    }
    if password.len() > MAX_LEN {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {MAX_LEN} bytes long"
        )));
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a fresh random salt (the crate's
/// default parameters: 19 MiB, 2 passes, as OWASP recommends).
pub fn hash_blocking(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// [`hash_blocking`] on the blocking pool.
pub async fn hash(password: &str) -> Result<String, ApiError> {
    let p = zeroize::Zeroizing::new(password.to_owned());
    match tokio::task::spawn_blocking(move || hash_blocking(&p)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => {
            tracing::error!("password hashing failed: {e}");
            Err(ApiError::internal())
        }
        Err(_) => Err(ApiError::internal()),
    }
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// [`verify_blocking`] on the blocking pool.
pub async fn verify(password: &str, phc: &str) -> bool {
    let p = zeroize::Zeroizing::new(password.to_owned());
    let phc = phc.to_owned();
    tokio::task::spawn_blocking(move || verify_blocking(&p, &phc))
        .await
        .unwrap_or(false)
}

/// A hash no password matches in practice, verified for unknown emails so an
/// unknown address takes as long as a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_blocking(&crate::random_hex(16)).unwrap_or_else(|_| String::from("$argon2id$"))
    })
}

/// Failed sign-ins per email and per client address in a sliding window; past the
/// limit, sign-ins are refused (429) until the window has passed, even with the
/// right password, so guessing costs time.
#[derive(Debug)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    /// Failures allowed per email in the window.
    pub per_email: usize,
    /// Failures allowed per client address in the window.
    pub per_address: usize,
    /// The window.
    pub window: Duration,
}

/// Keys tracked at most; past it the oldest entries are dropped (a flood of
/// random emails cannot grow the map without bound).
const MAX_TRACKED: usize = 100_000;

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            failures: Mutex::new(HashMap::new()),
            per_email: 5,
            per_address: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl LoginThrottle {
    fn keys(email: &str, addr: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("e:{email}"), true),
            (
                format!("a:{}", addr.map_or_else(String::new, |a| a.to_string())),
                false,
            ),
        ]
    }

    /// `Err(seconds to wait)` when `email` or `addr` is over its limit at `now`.
    pub fn check(&self, email: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, is_email) in Self::keys(email, addr) {
            let limit = if is_email {
                self.per_email
            } else {
                self.per_address
            };
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    let left = self.window.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.unwrap_or(0).max(left.as_secs().max(1)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, email: &str, addr: Option<IpAddr>, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < window));
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        for (key, _) in Self::keys(email, addr) {
            map.entry(key).or_default().push(now);
        }
    }

    /// Forgets the failures of `email` after a successful sign-in.
    pub fn succeeded(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("e:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_blocking("correct horse").unwrap();
        let b = hash_blocking("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_blocking("correct horse", &a));
        assert!(!verify_blocking("correct horsf", &a));
        assert!(!verify_blocking("x", "not a hash"));
    }

    #[test]
    fn the_throttle_refuses_past_the_limit_and_forgets_after_the_window() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            assert!(t.check("a@example.com", Some(ip), now).is_ok());
            t.failed("a@example.com", Some(ip), now);
        }
        let wait = t.check("a@example.com", Some(ip), now).unwrap_err();
        assert!(wait > 800 && wait <= 900, "{wait}");
        // Another account from the same address is still allowed.
        assert!(t.check("b@example.com", Some(ip), now).is_ok());
        let later = now + Duration::from_secs(15 * 60 + 1);
        assert!(t.check("a@example.com", Some(ip), later).is_ok());
    }
}
