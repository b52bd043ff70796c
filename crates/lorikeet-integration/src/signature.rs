//! `X-Lorikeet-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`: lets a receiver
//! check that a webhook came from us and was not altered. Sign and verify over the
//! exact bytes of the body, before any JSON parsing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Lorikeet-Signature";

type HmacSha256 = Hmac<Sha256>;

/// The header value for `body`: `sha256=` and the lower-case hex HMAC-SHA256.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is the valid signature of `body` (compared in constant time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
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
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let body = br#"{"deduplicationId":"x"}"#;
        let s = sign(b"secret", body);
        assert!(verify(b"secret", body, &s));
        assert!(!verify(b"other", body, &s));
        assert!(!verify(b"secret", b"{}", &s));
        assert!(!verify(b"secret", body, s.trim_start_matches("sha256=")));
        assert!(!verify(b"secret", body, "sha256=zz"));
        assert!(!verify(b"secret", body, "sha256="));
    }
}
