//! `X-Lorikeet-Signature`: lets a receiver check that a webhook came from us, was not
//! altered, and is recent.
//!
//! - **v1** (the default): `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!   The timestamp is taken when the request is sent (every retry gets a fresh
//!   one), so a receiver that rejects a `t` older than [`REPLAY_WINDOW_S`] (5
//!   minutes) cannot be fed a captured request later.
//! - **legacy** (`[webhook] signature_version = "legacy"`, for receivers written
//!   before v1): `sha256=<hex HMAC-SHA256(secret, body)>`, with no timestamp, so a
//!   captured request verifies forever.
//!
//! Sign and verify over the exact bytes of the body, before any JSON parsing.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Lorikeet-Signature";

/// How old a v1 timestamp a receiver should still accept, in seconds (and how far
/// in the future, for clock skew).
pub const REPLAY_WINDOW_S: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Which form of the signature header is sent (`[webhook] signature_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// `t=<unix>,v1=<hex HMAC of "t.body">`.
    #[default]
    V1,
    /// `sha256=<hex HMAC of body>`.
    Legacy,
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

/// The header value for `body` sent at `unix_s`, in the form `version` asks for.
pub fn sign_header(version: SignatureVersion, secret: &[u8], unix_s: i64, body: &[u8]) -> String {
    match version {
        SignatureVersion::V1 => sign_v1(secret, unix_s, body),
        SignatureVersion::Legacy => sign(secret, body),
    }
}

/// `t=<unix_s>,v1=<lower-case hex HMAC-SHA256(secret, "<unix_s>.<body>")>`.
pub fn sign_v1(secret: &[u8], unix_s: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(unix_s.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("t={unix_s},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// The legacy header value: `sha256=` and the lower-case hex HMAC-SHA256 of `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Why a v1 signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not `t=<digits>,v1=<hex>`.
    #[error("the signature header is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    /// No `v1` value matches the body and timestamp.
    #[error("the signature does not match")]
    Mismatch,
    /// The timestamp is outside the replay window.
    #[error("the timestamp is {age_s} s from now, outside the replay window")]
    Stale {
        /// `now - t` in seconds (negative: in the future).
        age_s: i64,
    },
}

/// Checks a v1 header: a `v1` entry must be the HMAC of `"<t>.<body>"` (compared in
/// constant time) and `t` within `window_s` of `now_s`. Unknown entries are
/// ignored, so a later version can be added beside `v1`.
pub fn verify_v1(
    secret: &[u8],
    body: &[u8],
    header: &str,
    now_s: i64,
    window_s: u64,
) -> Result<i64, VerifyError> {
    let mut t: Option<(&str, i64)> = None;
    let mut sigs = Vec::new();
    for part in header.trim().split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match k {
            "t" if t.is_none() => {
                if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VerifyError::Malformed);
                }
                let n = v.parse().map_err(|_| VerifyError::Malformed)?;
                t = Some((v, n));
            }
            "t" => return Err(VerifyError::Malformed),
            "v1" => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let (t_text, t) = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let ok = sigs.iter().any(|expected| {
        let mut m = mac(secret);
        m.update(t_text.as_bytes());
        m.update(b".");
        m.update(body);
        m.verify_slice(expected).is_ok()
    });
    if !ok {
        return Err(VerifyError::Mismatch);
    }
    let age_s = now_s.saturating_sub(t);
    if age_s.unsigned_abs() > window_s {
        return Err(VerifyError::Stale { age_s });
    }
    Ok(t)
}

/// Whether `header` is the valid legacy signature of `body` (compared in constant time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // v1 is the HMAC of "<t>.<body>".
        assert_eq!(
            sign_v1(b"Jefe", 0, b"do ya want for nothing?"),
            format!(
                "t=0,v1={}",
                &sign(b"Jefe", b"0.do ya want for nothing?")[7..]
            )
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let body = br#"{"deduplicationId":"x"}"#;
        let s = sign(b"secret", body);
        assert!(verify(b"secret", body, &s));
        assert!(!verify(b"secret", body, &sign_v1(b"secret", 1, body)));
        assert!(!verify(b"other", body, &s));
        assert!(!verify(b"secret", b"{}", &s));
        assert!(!verify(b"secret", body, s.trim_start_matches("sha256=")));
        assert!(!verify(b"secret", body, "sha256=zz"));
        assert!(!verify(b"secret", body, "sha256="));
    }

    #[test]
    fn v1_checks_signature_and_freshness() {
        let body = br#"{"deduplicationId":"x"}"#;
        let now = 1_700_000_000;
        let h = sign_v1(b"secret", now, body);
        assert!(h.starts_with("t=1700000000,v1="), "{h}");
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        assert_eq!(verify_v1(b"secret", body, &h, now + 10, 300), Ok(now));
        assert_eq!(
            verify_v1(b"secret", body, &h, now + 301, 300),
            Err(VerifyError::Stale { age_s: 301 })
        );
        assert_eq!(
            verify_v1(b"secret", body, &h, now - 400, 300),
            Err(VerifyError::Stale { age_s: -400 })
        );
        assert_eq!(
            verify_v1(b"other", body, &h, now, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_v1(b"secret", b"{}", &h, now, 300),
            Err(VerifyError::Mismatch)
        );
        // Moving the timestamp breaks the signature.
        let moved = h.replace("t=1700000000", "t=1700000100");
        assert_eq!(
            verify_v1(b"secret", body, &moved, now + 100, 300),
            Err(VerifyError::Mismatch)
        );
        // A second (rotated) v1 entry and unknown entries are fine.
        let two = format!("{h},v1={},v0=abc", "00".repeat(32));
        assert_eq!(verify_v1(b"secret", body, &two, now, 300), Ok(now));
        for bad in [
            "",
            "sha256=00",
            "t=,v1=00",
            "t=-5,v1=00",
            "t=1,t=2,v1=00",
            "t=1",
            "v1=00",
            "t=1,v1=zz",
            &s_legacy(body),
        ] {
            assert_eq!(
                verify_v1(b"secret", body, bad, now, 300),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
    }

    fn s_legacy(body: &[u8]) -> String {
        sign(b"secret", body)
    }

    #[test]
    fn sign_header_follows_the_version() {
        let body = b"{}";
        assert!(sign_header(SignatureVersion::Legacy, b"k", 5, body).starts_with("sha256="));
        assert!(sign_header(SignatureVersion::V1, b"k", 5, body).starts_with("t=5,v1="));
        assert_eq!(SignatureVersion::default(), SignatureVersion::V1);
    }
}
