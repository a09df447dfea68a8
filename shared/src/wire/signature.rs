//! The webhook signature of SPEC §5: `X-Signature` over the timestamp and the raw body, and secret rotation.

use super::{WireError, SIGNATURE_TOLERANCE_SECS};
use crate::domain::ErrorCode;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Checks `X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` and the ±300 s window
/// against the real wall clock (`now_unix`).
pub fn verify_signature(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WireError> {
    let unauthorized = |m: &str| WireError::new(401, ErrorCode::Unauthorized, m);
    let ts_text = timestamp.ok_or_else(|| unauthorized("missing X-Timestamp header"))?;
    let sig = signature.ok_or_else(|| unauthorized("missing X-Signature header"))?;
    let ts: i64 = ts_text.trim().parse().map_err(|_| unauthorized("X-Timestamp is not unix seconds"))?;
    // abs_diff: a timestamp near i64::MIN or MAX would overflow `now - ts`.
    if now_unix.abs_diff(ts) > SIGNATURE_TOLERANCE_SECS.unsigned_abs() {
        return Err(unauthorized("X-Timestamp is outside the accepted window of 300 seconds"));
    }
    let hex_sig = sig.trim().strip_prefix("v1=").ok_or_else(|| unauthorized("X-Signature must be v1=<hex>"))?;
    let given = hex::decode(hex_sig).map_err(|_| unauthorized("X-Signature is not hex"))?;
    // Rotation: the setting may hold the new and the old secret, comma-separated; either verifies.
    // `verify_slice` (the hmac crate, through `subtle`) compares in constant time.
    let matches = |key: &str| {
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).is_ok_and(|mut mac| {
            mac.update(ts_text.trim().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&given).is_ok()
        })
    };
    if secrets(secret).any(matches) {
        Ok(())
    } else {
        Err(unauthorized("signature does not match"))
    }
}

/// The secrets a webhook secret setting holds: one, or two during a rotation (`new,old`).
pub fn secrets(setting: &str) -> impl Iterator<Item = &str> {
    setting.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The signature header value for a body (for clients, tests and the demo), with the first
/// secret of the setting (the new one during a rotation).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secrets(secret).next().unwrap_or(secret);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn during_a_rotation_both_secrets_verify_and_no_other() {
        let body = b"{}";
        let now = 1_772_438_400;
        for key in ["new-secret", "old-secret"] {
            let sig = sign(key, now, body);
            assert_eq!(verify_signature("new-secret,old-secret", Some(&now.to_string()), Some(&sig), body, now), Ok(()), "{key}");
            assert_eq!(verify_signature(" new-secret , old-secret ", Some(&now.to_string()), Some(&sig), body, now), Ok(()));
        }
        let stranger = sign("another", now, body);
        let e = verify_signature("new-secret,old-secret", Some(&now.to_string()), Some(&stranger), body, now).unwrap_err();
        assert_eq!((e.status, e.code), (401, ErrorCode::Unauthorized));
        // After the rotation only the new one is left.
        let old = sign("old-secret", now, body);
        assert!(verify_signature("new-secret", Some(&now.to_string()), Some(&old), body, now).is_err());
        assert_eq!(sign("new-secret,old-secret", now, body), sign("new-secret", now, body), "clients sign with the new one");
    }

    #[test]
    fn signature_round_trips_and_rejects_tampering_and_staleness() {
        let body = b"{\"a\":1}";
        let sig = sign("s3cret", 1_700_000_000, body);
        assert!(verify_signature("s3cret", Some("1700000000"), Some(&sig), body, 1_700_000_100).is_ok());
        let e = verify_signature("s3cret", Some("1700000000"), Some(&sig), b"{\"a\":2}", 1_700_000_100).unwrap_err();
        assert_eq!(e.status, 401);
        assert_eq!(verify_signature("other", Some("1700000000"), Some(&sig), body, 1_700_000_000).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", Some("1700000000"), Some(&sig), body, 1_700_000_301).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", None, Some(&sig), body, 1_700_000_000).unwrap_err().status, 401);
        assert_eq!(verify_signature("s3cret", Some("1700000000"), None, body, 1_700_000_000).unwrap_err().status, 401);
    }
}
