//! Mutual TLS (real world only): credentials from PEM, the rustls configurations both
//! sides use, the identity a verified certificate names, and a development CA.
//!
//! ## Model
//! One CA signs every certificate of a cluster. A certificate names its identity in
//! exactly one DNS subject-alternative name, `node-<id>` or `client-<name>`
//! ([`Identity::from_name`]); node certificates may act as TLS server and client,
//! client certificates only as TLS client (extended key usage). The connector verifies
//! that the server's certificate names `node-<dialled id>` (rustls' server-name check);
//! the acceptor requires a client certificate from the CA (rustls'
//! `WebPkiClientVerifier`), then reads its name. Both then hand the identity to
//! [`authorize`](crate::auth::authorize).
//!
//! Cryptography is rustls on the `ring` provider: no OpenSSL, no aws-lc.
//!
//! ## Invariants
//! - No connection completes without a certificate chain to the configured CA on both
//!   sides; the key must match the certificate (checked when loading).
//! - PEM input from files is parsed without panicking; every failure is a
//!   [`TlsError`] naming what was wrong.
//!
//! ## Non-goals
//! - Revocation (CRL/OCSP), certificate reload without restart, intermediate CAs in
//!   `seedbank certs` (chains from files are accepted).

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::auth::{AuthError, Identity};

/// Why TLS credentials could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input held no item of the expected kind, or did not parse.
    #[error("{what}: {why}")]
    Pem {
        /// Which input (certificate, key, CA).
        what: &'static str,
        /// What was wrong.
        why: String,
    },
    /// The certificate does not name exactly one valid identity.
    #[error("the certificate's identity: {0}")]
    Identity(AuthError),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client verifier could not be built (e.g. an unusable CA certificate).
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// Generating a development certificate failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The `ring` provider. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange; we keep it on purpose: aws-lc needs cmake and a long C build (D49).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's or client's TLS credentials, ready for both sides of a connection.
#[derive(Clone)]
pub struct TlsAuth {
    identity: Identity,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAuth")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl TlsAuth {
    /// Loads credentials from PEM text: `cert_pem` (the certificate, then any
    /// intermediates), `key_pem` (its private key) and `ca_pem` (the CA certificates
    /// trusted for peers).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<TlsAuth, TlsError> {
        let pem = |what: &'static str| {
            move |e: rustls::pki_types::pem::Error| TlsError::Pem {
                what,
                why: e.to_string(),
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(pem("certificate"))?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::Pem {
                what: "certificate",
                why: "no CERTIFICATE in the PEM input".into(),
            });
        };
        let identity = identity_of(leaf).map_err(TlsError::Identity)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem("private key"))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(ca.map_err(pem("CA certificate"))?)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Pem {
                what: "CA certificate",
                why: "no CERTIFICATE in the PEM input".into(),
            });
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(TlsAuth {
            identity,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The identity these credentials' certificate names.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether both are the same loaded credentials.
    pub(crate) fn same(&self, other: &TlsAuth) -> bool {
        Arc::ptr_eq(&self.server, &other.server) && Arc::ptr_eq(&self.client, &other.client)
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.clone())
    }
}

/// The server name a connector expects on node `id`'s certificate.
pub(crate) fn server_name_of(id: u64) -> Result<ServerName<'static>, AuthError> {
    ServerName::try_from(Identity::Node(id).name())
        .map_err(|e| AuthError::Tls(format!("server name for node {id}: {e}")))
}

/// The identity a certificate names: its only DNS subject-alternative name, parsed.
/// (The chain has been verified by rustls before this is called on a peer's
/// certificate.)
pub fn identity_of(cert: &CertificateDer<'_>) -> Result<Identity, AuthError> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| AuthError::Untrusted(format!("unparsable certificate: {e}")))?;
    let names: Vec<&str> = parsed.valid_dns_names().collect();
    match names.as_slice() {
        [one] => Identity::from_name(one),
        other => Err(AuthError::IdentityCount(other.len())),
    }
}

/// PEM files of a development CA and the certificates it signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertFile {
    /// File name (`ca.pem`, `node-1.pem`, `node-1.key`, …).
    pub name: String,
    /// Its PEM text.
    pub pem: String,
    /// Whether it is a private key (the caller writes it readable by its owner only).
    pub secret: bool,
}

/// Makes a development CA and one certificate per identity, returning the files in
/// the layout `seedbank certs` writes: `ca.pem`, `ca.key`, then `<name>.pem` and
/// `<name>.key` per identity. Node certificates are valid as TLS server and client,
/// client certificates as TLS client only. Keys are ECDSA P-256 from the OS's entropy.
pub fn generate_dev_certs(identities: &[Identity]) -> Result<Vec<DevCertFile>, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let file = |name: String, pem: String, secret: bool| DevCertFile { name, pem, secret };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "seedbank development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    let mut files = vec![
        file("ca.pem".into(), ca.pem(), false),
        file("ca.key".into(), ca_key.serialize_pem(), true),
    ];
    for identity in identities {
        let name = identity.name();
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.clone()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, &name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match identity {
            Identity::Node(_) => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Identity::Client(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        files.push(file(format!("{name}.pem"), cert.pem(), false));
        files.push(file(format!("{name}.key"), key.serialize_pem(), true));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(files: &'a [DevCertFile], name: &str) -> &'a [u8] {
        files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.pem.as_bytes())
            .unwrap_or_default()
    }

    #[test]
    fn dev_certs_load_and_name_their_identity() {
        let ids = [Identity::Node(1), Identity::Client("ops".into())];
        let files = generate_dev_certs(&ids).expect("generate");
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ca.pem",
                "ca.key",
                "node-1.pem",
                "node-1.key",
                "client-ops.pem",
                "client-ops.key"
            ]
        );
        assert!(files
            .iter()
            .filter(|f| f.secret)
            .all(|f| f.name.ends_with(".key")));
        let ca = find(&files, "ca.pem");
        for id in ids {
            let name = id.name();
            let auth = TlsAuth::from_pem(
                find(&files, &format!("{name}.pem")),
                find(&files, &format!("{name}.key")),
                ca,
            )
            .expect("load");
            assert_eq!(auth.identity(), &id);
        }
    }

    #[test]
    fn mismatched_key_and_bad_pem_are_typed_errors() {
        let files = generate_dev_certs(&[Identity::Node(1), Identity::Node(2)]).expect("gen");
        let ca = find(&files, "ca.pem");
        let wrong_key =
            TlsAuth::from_pem(find(&files, "node-1.pem"), find(&files, "node-2.key"), ca);
        assert!(
            wrong_key.is_err(),
            "a key of another certificate was accepted"
        );
        let garbage = TlsAuth::from_pem(b"not pem", find(&files, "node-1.key"), ca);
        assert!(matches!(garbage, Err(TlsError::Pem { .. })), "{garbage:?}");
        let no_ca = TlsAuth::from_pem(find(&files, "node-1.pem"), find(&files, "node-1.key"), b"");
        assert!(matches!(no_ca, Err(TlsError::Pem { .. })), "{no_ca:?}");
        // The CA certificate names no identity: it cannot serve as a node's.
        let ca_as_node = TlsAuth::from_pem(ca, find(&files, "ca.key"), ca);
        assert!(
            matches!(ca_as_node, Err(TlsError::Identity(_))),
            "{ca_as_node:?}"
        );
    }
}
