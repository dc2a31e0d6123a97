//! API token secrets: 32 random bytes, shown once, stored as SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Prefix of every token secret (lets secret scanners find leaked tokens).
pub const TOKEN_PREFIX: &str = "dzt_";
const SECRET_LEN: usize = TOKEN_PREFIX.len() + 43;

/// A fresh secret and its hash.
pub(crate) fn generate() -> Result<(String, Vec<u8>), StoreError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let hash = hash(&secret);
    Ok((secret, hash))
}

/// The stored hash of a presented secret, or `None` if it cannot be a token of ours
/// (then no database lookup is needed).
pub(crate) fn hash_presented(secret: &str) -> Option<Vec<u8>> {
    let secret = secret.trim();
    if secret.len() != SECRET_LEN || !secret.starts_with(TOKEN_PREFIX) {
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
        let (a, ha) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), SECRET_LEN);
        assert_eq!(hash_presented(&a), Some(ha));
        assert_eq!(hash_presented("dzt_short"), None);
        assert_eq!(hash_presented(&a.replace("dzt_", "xyz_")), None);
    }
}
