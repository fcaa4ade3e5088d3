//! Reading key stores (our chain and key) and trust stores (CA certificates) from disk.
//!
//! ZK compat: `FileKeyStoreLoaderBuilderProvider`: PEM (`PEMFileLoader`/`PemReader`: the key
//! store file holds the private key and the certificate chain, the trust store file a bundle of
//! certificates) and PKCS12. JKS has no well-kept Rust reader: it is refused with the `keytool`
//! command that converts it.

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

use super::settings::{StoreSpec, StoreType};
use super::TlsError;

/// A certificate chain (leaf first) and its private key.
pub struct Identity {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

/// Loads a key store.
pub fn load_identity(spec: &StoreSpec) -> Result<Identity, TlsError> {
    let bytes = read_supported(spec)?;
    let err = |message: String| TlsError::store(&spec.location, message);
    match spec.kind {
        StoreType::Pem => {
            if contains(&bytes, b"ENCRYPTED PRIVATE KEY") {
                return Err(err("encrypted PEM private keys are not supported; decrypt it with \
                     `openssl pkcs8 -in KEY -out KEY.pem` (and protect the file's permissions)"
                    .into()));
            }
            let chain = pem_certificates(&bytes).map_err(err)?;
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| err(format!("no private key found ({e})")))?;
            if chain.is_empty() {
                return Err(err("no certificate found next to the private key".into()));
            }
            Ok(Identity { chain, key })
        }
        StoreType::Pkcs12 => {
            let store = KeyStore::from_pkcs12(&bytes, &spec.password, Pkcs12ImportPolicy::Relaxed)
                .map_err(|e| err(format!("cannot read PKCS12 store (wrong password?): {e}")))?;
            let (_, entry) =
                store.private_key_chain().ok_or_else(|| err("no private key entry".into()))?;
            let chain: Vec<CertificateDer<'static>> = entry
                .certs()
                .iter()
                .map(|cert| CertificateDer::from(cert.as_der().to_vec()))
                .collect();
            if chain.is_empty() {
                return Err(err("the private key entry has no certificate".into()));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key().as_der().to_vec()));
            Ok(Identity { chain, key })
        }
        StoreType::Jks | StoreType::Bcfks => Err(unsupported_type(spec)),
    }
}

/// Loads a trust store as rustls roots.
pub fn load_roots(spec: &StoreSpec) -> Result<RootCertStore, TlsError> {
    let bytes = read_supported(spec)?;
    let err = |message: String| TlsError::store(&spec.location, message);
    let certs = match spec.kind {
        StoreType::Pem => pem_certificates(&bytes).map_err(err)?,
        StoreType::Pkcs12 => {
            let store = KeyStore::from_pkcs12(&bytes, &spec.password, Pkcs12ImportPolicy::Raw)
                .map_err(|e| err(format!("cannot read PKCS12 store (wrong password?): {e}")))?;
            let mut certs = Vec::new();
            for (_, entry) in store.entries() {
                match entry {
                    KeyStoreEntry::Certificate(cert) => certs.push(cert.as_der().to_vec().into()),
                    KeyStoreEntry::PrivateKeyChain(chain) => {
                        certs.extend(chain.certs().iter().map(|c| c.as_der().to_vec().into()))
                    }
                    KeyStoreEntry::Secret(_) => {}
                }
            }
            certs
        }
        StoreType::Jks | StoreType::Bcfks => return Err(unsupported_type(spec)),
    };
    if certs.is_empty() {
        return Err(err("no certificate found".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| err(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The file's bytes, once its type is known to be readable.
fn read_supported(spec: &StoreSpec) -> Result<Vec<u8>, TlsError> {
    if matches!(spec.kind, StoreType::Jks | StoreType::Bcfks) {
        return Err(unsupported_type(spec));
    }
    std::fs::read(&spec.location)
        .map_err(|error| TlsError::store(&spec.location, format!("cannot read: {error}")))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unsupported_type(spec: &StoreSpec) -> TlsError {
    match spec.kind {
        StoreType::Jks => {
            TlsError::Jks { path: spec.location.clone(), p12: spec.location.with_extension("p12") }
        }
        _ => TlsError::store(
            &spec.location,
            "BCFKS stores are not supported; use PKCS12 or PEM".to_string(),
        ),
    }
}
