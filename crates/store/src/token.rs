//! Token secrets (API tokens and enrollment tokens): a prefix and 32 random bytes in base64url,
//! shown once, stored as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Prefix of every API token secret (lets secret scanners find leaked tokens).
pub const TOKEN_PREFIX: &str = "dzt_";
/// Prefix of every agent enrollment token secret.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "dze_";
/// Length of the base64url (no padding) text of 32 bytes.
const BODY_LEN: usize = 43;

/// A fresh secret with this prefix and its hash.
pub(crate) fn generate(prefix: &str) -> Result<(String, Vec<u8>), StoreError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw));
    let hash = hash(&secret);
    Ok((secret, hash))
}

/// The stored hash of a presented secret, or `None` if it cannot be a token with this prefix
/// (then no database lookup is needed).
pub(crate) fn hash_presented(prefix: &str, secret: &str) -> Option<Vec<u8>> {
    let secret = secret.trim();
    let body = secret.strip_prefix(prefix)?;
    if body.len() != BODY_LEN
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(hash(secret))
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_verifiable() {
        let (a, ha) = generate(TOKEN_PREFIX).unwrap();
        let (b, _) = generate(TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + BODY_LEN);
        assert_eq!(hash_presented(TOKEN_PREFIX, &a), Some(ha));
        assert_eq!(hash_presented(TOKEN_PREFIX, "dzt_short"), None);
        assert_eq!(
            hash_presented(TOKEN_PREFIX, &a.replace("dzt_", "xyz_")),
            None
        );
        let mut bad = a.clone();
        bad.replace_range(10..11, "+");
        assert_eq!(hash_presented(TOKEN_PREFIX, &bad), None);
    }

    #[test]
    fn prefixes_do_not_mix() {
        let (api, _) = generate(TOKEN_PREFIX).unwrap();
        let (enroll, he) = generate(ENROLLMENT_TOKEN_PREFIX).unwrap();
        assert!(enroll.starts_with(ENROLLMENT_TOKEN_PREFIX));
        assert_eq!(enroll.len(), ENROLLMENT_TOKEN_PREFIX.len() + BODY_LEN);
        assert_eq!(hash_presented(ENROLLMENT_TOKEN_PREFIX, &enroll), Some(he));
        assert_eq!(hash_presented(ENROLLMENT_TOKEN_PREFIX, &api), None);
        assert_eq!(hash_presented(TOKEN_PREFIX, &enroll), None);
        // Multi-byte text of the right byte length is refused, not sliced.
        let odd = format!("{ENROLLMENT_TOKEN_PREFIX}{}ж", "a".repeat(BODY_LEN - 2));
        assert_eq!(hash_presented(ENROLLMENT_TOKEN_PREFIX, &odd), None);
    }
}
