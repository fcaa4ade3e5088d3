//! TLS for the client port and (through the quorum code) the quorum port: key and trust
//! stores, rustls configs built from ZooKeeper's `ssl.*` / `ssl.quorum.*` settings, reloading
//! them when the store files change, and the x509 identity of a verified peer.
//!
//! rustls with the ring provider; no OpenSSL. TLS lives in the runtime only: the core sees the
//! same `Input`s over TLS as over plain TCP (plus the ids the transport authenticated).
//!
//! Use: [`TlsSettings::from_properties`] (validates, reads no store), then
//! [`TlsContext::new`] (reads the stores, builds the configs), [`TlsContext::server_config`] /
//! [`TlsContext::client_config`] for each new handshake, and [`TlsContext::watch`] to reload
//! on change (handshakes already made keep the config they were made with).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme,
};
use tracing::{info, warn};

mod dn;
mod settings;
mod store;
mod stream;

pub use dn::subject_dn;
pub use settings::{cipher_suites, provider, ClientAuth, StoreSpec, StoreType, TlsSettings};
pub use store::{load_identity, load_roots, Identity};
pub use stream::{looks_like_tls, ClientStream, Rewind, ServerTlsStream, TLS_HANDSHAKE_RECORD};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A setting is missing or wrong.
    #[error("{key}: {message}")]
    Setting {
        /// The setting, with its prefix (`ssl.clientAuth`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A store file could not be used.
    #[error("{}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A JKS store: no well-kept Rust reader exists.
    #[error(
        "{}: JKS key stores are not supported; convert it to PKCS12 with `keytool -importkeystore \
         -srckeystore {} -destkeystore {} -deststoretype PKCS12` and point the setting (and \
         its .type, if set) at the new file",
        path.display(), path.display(), p12.display()
    )]
    Jks {
        /// The JKS file.
        path: PathBuf,
        /// A suggested name for the converted file.
        p12: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("{prefix}: {message}")]
    Config {
        /// The settings' prefix.
        prefix: String,
        /// rustls's reason.
        message: String,
    },
}

impl TlsError {
    pub(crate) fn setting(key: String, message: String) -> TlsError {
        TlsError::Setting { key, message }
    }
    pub(crate) fn store(path: &Path, message: String) -> TlsError {
        TlsError::Store { path: path.to_path_buf(), message }
    }
}

/// Which configs a [`TlsContext`] must build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Only accepting (the client port): needs a key store; a trust store when clients
    /// are asked for certificates.
    Server,
    /// Only connecting: needs a trust store.
    Client,
    /// Both (the quorum port).
    Both,
}

struct Loaded {
    server: Option<Arc<ServerConfig>>,
    client: Option<Arc<ClientConfig>>,
    /// The store files' contents the configs were built from.
    seen: Vec<Option<Vec<u8>>>,
}

/// rustls configs for one prefix, rebuilt when the stores change.
pub struct TlsContext {
    settings: TlsSettings,
    role: Role,
    loaded: Mutex<Loaded>,
}

impl TlsContext {
    /// Reads the stores and builds the configs `role` needs.
    pub fn new(settings: TlsSettings, role: Role) -> Result<Arc<TlsContext>, TlsError> {
        let seen = snapshot(&settings.watched_files());
        let (server, client) = build(&settings, role)?;
        Ok(Arc::new(TlsContext {
            settings,
            role,
            loaded: Mutex::new(Loaded { server, client, seen }),
        }))
    }

    /// The settings.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The config for the next accepted handshake (`None` for [`Role::Client`]).
    pub fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.lock().server.clone()
    }

    /// The config for the next outgoing handshake (`None` for [`Role::Server`]).
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.lock().client.clone()
    }

    /// Rebuilds the configs if a store file's contents changed. `Ok(true)` when they were
    /// rebuilt; on an error the old configs stay in use.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = snapshot(&self.settings.watched_files());
        if now == self.lock().seen {
            return Ok(false);
        }
        let built = build(&self.settings, self.role);
        let mut loaded = self.lock();
        // Whatever the outcome, this version of the files was looked at: an unusable file is
        // reported once, not every poll.
        loaded.seen = now;
        let (server, client) = built?;
        loaded.server = server;
        loaded.client = client;
        Ok(true)
    }

    /// Polls the store files every `every` and rebuilds the configs when they change
    /// (ZK compat: `client.certReload` / `sslQuorumReloadCertFiles`, which use a file
    /// watcher). Runs until dropped.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.reload_if_changed() {
                Ok(true) => info!(prefix = %self.settings.prefix, "TLS certificates reloaded"),
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, "TLS certificates changed but cannot be loaded; keeping the old ones")
                }
            }
        }
    }
}

fn snapshot(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

type Built = (Option<Arc<ServerConfig>>, Option<Arc<ClientConfig>>);

fn build(settings: &TlsSettings, role: Role) -> Result<Built, TlsError> {
    let server = match role {
        Role::Server | Role::Both => Some(Arc::new(server_config(settings)?)),
        Role::Client => None,
    };
    let client = match role {
        Role::Client | Role::Both => Some(Arc::new(client_config(settings)?)),
        Role::Server => None,
    };
    Ok((server, client))
}

fn config_error(settings: &TlsSettings, error: impl std::fmt::Display) -> TlsError {
    TlsError::Config { prefix: settings.prefix.clone(), message: error.to_string() }
}

fn missing(settings: &TlsSettings, what: &str, why: &str) -> TlsError {
    TlsError::setting(format!("{}{what}.location", settings.prefix), format!("not set; {why}"))
}

/// A rustls server config: our identity from the key store; client certificates checked
/// against the trust store as `clientAuth` says.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let key_store = settings
        .key_store
        .as_ref()
        .ok_or_else(|| missing(settings, "keyStore", "a key store is required to serve TLS"))?;
    let identity = load_identity(key_store)?;
    let provider = Arc::new(settings.provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.protocols)
        .map_err(|e| config_error(settings, e))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let trust = settings.trust_store.as_ref().ok_or_else(|| {
                missing(settings, "trustStore", "client certificates are asked for (clientAuth)")
            })?;
            let roots = Arc::new(load_roots(trust)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier =
                if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| config_error(settings, e))?)
        }
    };
    builder.with_single_cert(identity.chain, identity.key).map_err(|e| config_error(settings, e))
}

/// A rustls client config: servers checked against the trust store (and their name, with
/// `hostnameVerification`); our certificate from the key store, if one is set.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let trust = settings
        .trust_store
        .as_ref()
        .ok_or_else(|| missing(settings, "trustStore", "a trust store is required to connect"))?;
    let roots = Arc::new(load_roots(trust)?);
    let provider = Arc::new(settings.provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| config_error(settings, e))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&settings.protocols)
        .map_err(|e| config_error(settings, e))?;
    let builder = if settings.hostname_verification {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyNameVerifier { inner: verifier }))
    };
    match &settings.key_store {
        Some(store) => {
            let identity = load_identity(store)?;
            builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|e| config_error(settings, e))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Checks the chain as usual but accepts any name (`hostnameVerification=false`).
#[derive(Debug)]
struct AnyNameVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether a peer's (verified) certificate is valid for its address: ZK compat:
/// `ZKTrustManager.performHostVerification` with `clientHostnameVerification` (the quorum
/// port's default), which checks the address against the certificate's IP SANs (reverse DNS
/// is off by default, `ssl.allowReverseDnsLookup`, and not done here).
pub fn verify_peer_address(cert: &CertificateDer<'_>, ip: IpAddr) -> bool {
    let Ok(parsed) = ParsedCertificate::try_from(cert) else {
        return false;
    };
    let name = ServerName::IpAddress(ip.to_canonical().into());
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

/// The subject DN (RFC 2253, as Java prints it) of the peer's verified certificate, if it
/// sent one.
pub fn peer_subject(conn: &rustls::CommonState) -> Option<String> {
    conn.peer_certificates().and_then(|certs| certs.first()).and_then(|c| subject_dn(c))
}

#[cfg(all(test, not(madsim)))]
mod tests;
