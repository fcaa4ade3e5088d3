//! The `ssl.*` (client port) and `ssl.quorum.*` (quorum port) settings, read as ZooKeeper's
//! `X509Util` reads them, validated without touching any file.
//!
//! ZK compat: `ClientX509Util` uses the prefix `zookeeper.ssl.` and `QuorumX509Util`
//! `zookeeper.ssl.quorum.`; a `zoo.cfg` line `ssl.x=y` becomes the system property
//! `zookeeper.ssl.x`. Both spellings are looked up here, the `zookeeper.` one first (a JVM flag
//! overrides `zoo.cfg` in ZooKeeper only by accident of ordering; either wins consistently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::TlsError;

/// `ssl.clientAuth`: whether the server asks TLS clients for a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Do not ask.
    None,
    /// Ask; a client without one is still let in (unauthenticated).
    Want,
    /// Ask and require one (ZooKeeper's default).
    Need,
}

/// The kind of a key or trust store file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreType {
    /// ZooKeeper's PEM type: a key store is one file holding the private key and the
    /// certificate chain; a trust store is a bundle of certificates.
    Pem,
    /// PKCS#12 (`.p12`).
    Pkcs12,
    /// Java's own format: refused with the command that converts it.
    Jks,
    /// Bouncy Castle's FIPS format: refused.
    Bcfks,
}

impl StoreType {
    /// ZK compat: `KeyStoreFileType.fromPropertyValueOrFileName`: the `.type` value
    /// (case-insensitive) when set, else the file's extension (`.pem`, `.p12`, `.jks`,
    /// `.bcfks`, case-sensitive as in ZooKeeper).
    pub fn from_value_or_file_name(value: Option<&str>, file: &Path) -> Option<StoreType> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(value) => match value.to_ascii_uppercase().as_str() {
                "PEM" => Some(StoreType::Pem),
                "PKCS12" => Some(StoreType::Pkcs12),
                "JKS" => Some(StoreType::Jks),
                "BCFKS" => Some(StoreType::Bcfks),
                _ => None,
            },
            None => match file.extension().and_then(|e| e.to_str()) {
                Some("pem") => Some(StoreType::Pem),
                Some("p12") => Some(StoreType::Pkcs12),
                Some("jks") => Some(StoreType::Jks),
                Some("bcfks") => Some(StoreType::Bcfks),
                _ => None,
            },
        }
    }
}

/// Where a key or trust store is and how to open it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// `.location`.
    pub location: PathBuf,
    /// `.password`, or the contents of `.passwordPath` (one trailing newline dropped).
    pub password: String,
    /// `.type`, or inferred from the file name.
    pub kind: StoreType,
}

/// Validated TLS settings for one prefix (`ssl.` or `ssl.quorum.`). Building rustls configs
/// from them reads the stores: see [`TlsSettings::server_config`] and
/// [`TlsSettings::client_config`], or [`super::TlsContext`] for reloading.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The prefix the settings were read with (`ssl.` or `ssl.quorum.`), for messages.
    pub prefix: String,
    /// `keyStore.*`: our certificate chain and key (required to serve TLS).
    pub key_store: Option<StoreSpec>,
    /// `trustStore.*`: the CAs peers' certificates must chain to.
    pub trust_store: Option<StoreSpec>,
    /// `clientAuth` (default `need`).
    pub client_auth: ClientAuth,
    /// From `enabledProtocols`, else `protocol`: TLS 1.3 gives 1.3 and 1.2, TLS 1.2 only 1.2
    /// (ZK compat: `SSLContextAndOptions.getEnabledProtocols`, the JDK defaults).
    pub protocols: Vec<&'static SupportedProtocolVersion>,
    /// `ciphersuites`, mapped from Java's names; `None` = rustls's defaults.
    pub cipher_suites: Option<Vec<SupportedCipherSuite>>,
    /// `hostnameVerification` (default true): a client checks the server's name.
    pub hostname_verification: bool,
    /// `clientHostnameVerification`: a server checks the client's certificate against its
    /// address. ZK compat: default false on the client port (`ClientX509Util`), true on the
    /// quorum port (`QuorumX509Util`), and never without `hostnameVerification`. The runtime
    /// applies it after the handshake with [`super::verify_peer_address`].
    pub client_hostname_verification: bool,
}

/// The crypto provider every config is built with (ring): named explicitly so a second
/// provider compiled in by a dependency never makes rustls's process default ambiguous.
pub fn provider() -> CryptoProvider {
    // ring, not aws-lc-rs: aws-lc-rs needs a C toolchain with cmake to build. rustls marks
    // ring's provider deprecated only for lacking post-quantum key exchange, which ZooKeeper's
    // Java clients do not offer either.
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
}

impl TlsSettings {
    /// Reads the settings under `prefix` (`"ssl."` or `"ssl.quorum."`) from `props`, whose keys
    /// are spelled as in `zoo.cfg` (`ssl.keyStore.location`) or as system properties
    /// (`zookeeper.ssl.keyStore.location`). Reads `.passwordPath` files; nothing else.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
        prefix: &str,
    ) -> Result<TlsSettings, TlsError> {
        let get = |name: &str| -> Option<&str> {
            props
                .get(&format!("zookeeper.{prefix}{name}"))
                .or_else(|| props.get(&format!("{prefix}{name}")))
                .map(|v| v.trim())
        };
        let key = |name: &str| format!("{prefix}{name}");
        let store = |kind: &str| -> Result<Option<StoreSpec>, TlsError> {
            let Some(location) = get(&format!("{kind}.location")).filter(|l| !l.is_empty()) else {
                return Ok(None);
            };
            let location = PathBuf::from(location);
            let mut password = get(&format!("{kind}.password")).unwrap_or("").to_string();
            if let Some(path) = get(&format!("{kind}.passwordPath")).filter(|p| !p.is_empty()) {
                password = read_secret(Path::new(path)).map_err(|message| {
                    TlsError::setting(key(&format!("{kind}.passwordPath")), message)
                })?;
            }
            let type_value = get(&format!("{kind}.type"));
            let kind_parsed = StoreType::from_value_or_file_name(type_value, &location)
                .ok_or_else(|| match type_value.filter(|v| !v.is_empty()) {
                    Some(value) => TlsError::setting(
                        key(&format!("{kind}.type")),
                        format!("unknown store type '{value}' (PEM, PKCS12 or JKS)"),
                    ),
                    None => TlsError::setting(
                        key(&format!("{kind}.location")),
                        format!(
                            "unable to auto-detect store file type from file name {} \
                             (.pem, .p12 or .jks); set {}",
                            location.display(),
                            key(&format!("{kind}.type"))
                        ),
                    ),
                })?;
            Ok(Some(StoreSpec { location, password, kind: kind_parsed }))
        };
        let key_store = store("keyStore")?;
        let trust_store = store("trustStore")?;
        let client_auth = match get("clientAuth").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("need") => ClientAuth::Need,
            Some("want") => ClientAuth::Want,
            Some("none") => ClientAuth::None,
            Some(other) => {
                return Err(TlsError::setting(
                    key("clientAuth"),
                    format!("'{other}' is not one of none, want, need"),
                ))
            }
        };
        let protocols = match get("enabledProtocols").filter(|v| !v.is_empty()) {
            Some(list) => {
                let mut versions = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let version = protocol(name).ok_or_else(|| {
                        TlsError::setting(key("enabledProtocols"), unsupported_protocol(name))
                    })?;
                    if !versions.contains(&version) {
                        versions.push(version);
                    }
                }
                versions
            }
            None => match get("protocol").filter(|v| !v.is_empty()) {
                None | Some("TLS") | Some("TLSv1.3") => {
                    vec![&rustls::version::TLS13, &rustls::version::TLS12]
                }
                Some("TLSv1.2") => vec![&rustls::version::TLS12],
                Some(other) => {
                    return Err(TlsError::setting(key("protocol"), unsupported_protocol(other)))
                }
            },
        };
        if protocols.is_empty() {
            return Err(TlsError::setting(key("enabledProtocols"), "no protocol given".into()));
        }
        let cipher_suites = match get("ciphersuites").filter(|v| !v.is_empty()) {
            None => None,
            Some(list) => {
                Some(cipher_suites(list).map_err(|m| TlsError::setting(key("ciphersuites"), m))?)
            }
        };
        if let Some(suites) = &cipher_suites {
            if !protocols.iter().any(|v| suites.iter().any(|s| s.version() == *v)) {
                return Err(TlsError::setting(
                    key("ciphersuites"),
                    "no cipher suite for any enabled protocol".into(),
                ));
            }
        }
        let hostname_verification = boolean(get("hostnameVerification"), true)
            .map_err(|m| TlsError::setting(key("hostnameVerification"), m))?;
        let quorum = prefix.contains("quorum");
        let client_hostname_verification = hostname_verification
            && boolean(get("clientHostnameVerification"), quorum)
                .map_err(|m| TlsError::setting(key("clientHostnameVerification"), m))?;
        Ok(TlsSettings {
            prefix: prefix.to_string(),
            key_store,
            trust_store,
            client_auth,
            protocols,
            cipher_suites,
            hostname_verification,
            client_hostname_verification,
        })
    }

    /// The files a reload watches: the key store and the trust store.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        [&self.key_store, &self.trust_store]
            .into_iter()
            .flatten()
            .map(|store| store.location.clone())
            .collect()
    }

    /// The provider restricted to the configured cipher suites.
    pub(super) fn provider(&self) -> CryptoProvider {
        let mut provider = provider();
        if let Some(suites) = &self.cipher_suites {
            provider.cipher_suites = suites.clone();
        }
        provider
    }
}

/// ZK compat: `SecretUtils.readSecret`: the whole file as UTF-8, one trailing line separator
/// dropped.
fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read secret from {}: {error}", path.display()))?;
    Ok(text.strip_suffix('\n').map(str::to_string).unwrap_or(text))
}

/// Java's `Boolean.parseBoolean` would take anything but "true" as false; a typo in a
/// security setting is better refused.
fn boolean(value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("'{other}' is not true or false")),
    }
}

fn protocol(name: &str) -> Option<&'static SupportedProtocolVersion> {
    match name {
        "TLSv1.3" => Some(&rustls::version::TLS13),
        "TLSv1.2" => Some(&rustls::version::TLS12),
        _ => None,
    }
}

fn unsupported_protocol(name: &str) -> String {
    format!("'{name}' is not supported (TLSv1.2 and TLSv1.3 only; older versions are insecure)")
}

/// The rustls name of a suite in Java's (IANA) spelling: rustls spells TLS 1.3 suites
/// `TLS13_...`, Java and IANA `TLS_...`.
fn java_name(suite: &SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

/// Maps a comma-separated list of Java cipher suite names to rustls's suites, in the given
/// order; a name rustls does not offer is an error that names it and lists what is offered.
pub fn cipher_suites(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let offered = provider().cipher_suites;
    let mut suites = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let suite = offered.iter().find(|s| java_name(s) == name).ok_or_else(|| {
            let names: Vec<String> = offered.iter().map(java_name).collect();
            format!("cipher suite '{name}' is not supported; supported: {}", names.join(","))
        })?;
        if !suites.contains(suite) {
            suites.push(*suite);
        }
    }
    if suites.is_empty() {
        return Err("no cipher suite given".into());
    }
    Ok(suites)
}
