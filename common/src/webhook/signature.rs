//! The `Thumbq-Signature` header of a webhook, as Stripe signs its own: `t=<unix seconds>,v1=<hex>`, where `v1` is
//! HMAC-SHA256 with `THUMBQ_WEBHOOK_SECRET` over `<t>.<body>`. A receiver recomputes it and rejects old timestamps,
//! so a captured delivery cannot be replayed later. [`verify`] is what a receiver written in Rust would run.

use std::fmt::Write;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Thumbq-Signature";

/// Why a signature header does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureMismatch {
    /// No `t=` or no `v1=`.
    #[error("the header has no t= timestamp or no v1= signature")]
    Malformed,
    /// The timestamp is further from now than the tolerance: a replay, or a clock far off.
    #[error("the timestamp is outside the tolerance")]
    Stale,
    /// No `v1` matches the body.
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex = digest.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    format!("t={timestamp},v1={hex}")
}

/// Checks a header against `body`: a `v1` that matches (compared in constant time), and a timestamp within
/// `tolerance_secs` of `now`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureMismatch> {
    let pairs = || header.split(',').filter_map(|pair| pair.trim().split_once('='));
    let timestamp: i64 = pairs()
        .find(|(key, _)| *key == "t")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or(SignatureMismatch::Malformed)?;
    let signatures: Vec<Vec<u8>> = pairs().filter(|(key, _)| *key == "v1").filter_map(|(_, v)| unhex(v)).collect();
    if signatures.is_empty() {
        return Err(SignatureMismatch::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureMismatch::Stale);
    }
    let matches = signatures.iter().any(|signature| mac(secret, timestamp, body).verify_slice(signature).is_ok());
    if matches { Ok(()) } else { Err(SignatureMismatch::Mismatch) }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signature_holds_for_its_body_and_time_only() {
        let body = br#"{"id":"x","status":"SUCCESS"}"#;
        let header = sign(SECRET, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1=") && header.len() == "t=1700000000,v1=".len() + 64);
        assert_eq!(verify(SECRET, &header, body, 1_700_000_100, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, b"{}", 1_700_000_100, 300), Err(SignatureMismatch::Mismatch));
        assert_eq!(verify(b"another secret", &header, body, 1_700_000_100, 300), Err(SignatureMismatch::Mismatch));
        assert_eq!(verify(SECRET, &header, body, 1_700_001_000, 300), Err(SignatureMismatch::Stale), "a replay");
        let moved = header.replace("t=1700000000", "t=1700000900");
        assert_eq!(verify(SECRET, &moved, body, 1_700_000_900, 300), Err(SignatureMismatch::Mismatch));
        assert_eq!(verify(SECRET, "v1=abcd", body, 0, 300), Err(SignatureMismatch::Malformed));
        assert_eq!(verify(SECRET, "t=1,v1=zz", body, 1, 300), Err(SignatureMismatch::Malformed));
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body_in_hex() {
        // Computed independently: printf '1.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(sign(b"key", 1, b"{}"), "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224");
    }
}
