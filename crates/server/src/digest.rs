//! Digests, hex and randomness: the low-level helpers tokens, sessions, certificates and
//! samples share. Depends on nothing else in the crate.

/// SHA-256 of `bytes` (token secrets, session secrets, certificates).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    // Without OS randomness nothing here can be secure: refuse to go on.
    if ring::rand::SystemRandom::new().fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}

/// SHA-256 (hex) of the DER of the first certificate in a PEM text — what agents pin.
pub fn pem_certificate_sha256(pem: &str) -> Option<String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    Some(hex(&sha256(der.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_of_a_known_value() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
        assert_eq!(pem_certificate_sha256("not a certificate"), None);
    }
}
