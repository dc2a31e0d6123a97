//! The rustls server configuration (ring provider, TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by
//! ALPN). Client certificates issued by the built-in CA are requested but optional: agents
//! that have one (after enrollment) present it, everyone else authenticates with a token.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::pki::{CertificateAuthority, CertifiedKey, PkiError, crypto_provider};

pub fn server_config(
    server: CertifiedKey,
    ca: &CertificateAuthority,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = crypto_provider();
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(ca.root_store()?), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| PkiError::Rustls(rustls::Error::General(e.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(server.chain, server.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
