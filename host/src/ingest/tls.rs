//! HTTPS on the ingest listener: `[server.tls]` names a certificate chain
//! and its key, read when the live set is built — so a renewed certificate
//! is served from the next reload on, without a restart.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ConfigError};
use crate::files;

/// The acceptor `[server.tls]` asks for, or `None` for plain HTTP.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, ConfigError> {
    let Some(tls) = &config.server.tls else {
        return Ok(None);
    };
    let cert_file = config.resolve(&tls.cert_file);
    let read = |key: &str, file: &std::path::Path| {
        files::read(file, files::PEM_LIMIT).map_err(|e| config.error(key, format!("{}: {e}", file.display())))
    };
    let certs = CertificateDer::pem_slice_iter(&read("server.tls.cert_file", &cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config.error("server.tls.cert_file", format!("{}: {e}", cert_file.display())))?;
    if certs.is_empty() {
        return Err(config.error(
            "server.tls.cert_file",
            format!("{}: no PEM certificate in it", cert_file.display()),
        ));
    }
    let key_file = config.resolve(&tls.key_file);
    // The error never quotes the key.
    let key_pem = read("server.tls.key_file", &key_file)?;
    files::warn_if_exposed(&key_file);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        config.error(
            "server.tls.key_file",
            format!("{}: not a PEM private key ({e})", key_file.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| config.error("server.tls.key_file", format!("does not fit the certificate: {e}")))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}
