//! The client port's TLS keys: `secureClientPortAddress`, `client.portUnification`,
//! `client.certReload`, the `ssl.*` family (not `ssl.quorum.*`, which the quorum settings
//! read), `serverCnxnFactory`, and the x509 auth provider's keys.
//!
//! ZK compat: in `zoo.cfg` these are system properties (`zookeeper.` + key), read by
//! `ClientX509Util`, `NettyServerCnxnFactory` and `X509AuthenticationProvider`; both spellings
//! are accepted here, as for the other system properties.

use std::collections::BTreeMap;

use super::properties::Property;
use super::{bad, ConfigError};
use crate::runtime::tls::TlsSettings;

/// The class name that turns the x509 provider on through `authProvider.N`.
const X509_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";

/// Client TLS and x509 authentication, as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// `client.portUnification`: the plain client port also accepts TLS.
    pub port_unification: bool,
    /// `client.certReload`: reload the key and trust stores when their files change.
    pub cert_reload: bool,
    /// The `ssl.*` keys (not `ssl.quorum.*`), spelled `ssl.<name>`.
    pub ssl: BTreeMap<String, String>,
    /// `X509AuthenticationProvider.superUser`: the subject DN that is also `super`.
    pub x509_super_user: Option<String>,
    /// An `authProvider.N` line names `X509AuthenticationProvider`.
    pub x509_provider_listed: bool,
}

impl ClientTls {
    /// Takes a system property (`name` without the `zookeeper.` prefix); false if it is not
    /// one of ours.
    pub(super) fn apply(
        &mut self,
        name: &str,
        p: &Property,
        notes: &mut Vec<String>,
    ) -> Result<bool, ConfigError> {
        match name {
            "client.portUnification" => self.port_unification = flag(p)?,
            "client.certReload" => self.cert_reload = flag(p)?,
            "X509AuthenticationProvider.superUser" => {
                self.x509_super_user = Some(p.value.clone());
            }
            "serverCnxnFactory" => notes.push(format!(
                "line {}: {} is accepted and ignored (one connection layer serves plain and \
                 TLS clients)",
                p.line, p.key
            )),
            key if key.starts_with("authProvider.") && p.value.trim() == X509_PROVIDER_CLASS => {
                self.x509_provider_listed = true;
            }
            "ssl.authProvider" => {
                // ZK compat: names the scheme whose provider authenticates TLS clients; only
                // the built-in x509 provider exists here (ZooKeeper would load a class).
                if p.value.trim() != "x509" {
                    return Err(bad(p, "'x509' (custom TLS auth providers are Java classes)"));
                }
            }
            key if key.starts_with("ssl.") && !key.starts_with("ssl.quorum.") => {
                self.ssl.insert(key.to_string(), p.value.clone());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The validated `ssl.` settings (stores are read when the server starts).
    pub fn settings(&self) -> Result<TlsSettings, crate::runtime::tls::TlsError> {
        TlsSettings::from_properties(&self.ssl, "ssl.")
    }

    /// Whether the x509 provider is on. ZK compat: `QuorumPeerConfig.configureSSLAuth`
    /// registers it whenever a secure client port is configured or the client port is
    /// unified, and an `authProvider.N` line can register it explicitly.
    pub fn x509_provider(&self, secure_client_port: bool) -> bool {
        secure_client_port || self.port_unification || self.x509_provider_listed
    }
}

fn flag(p: &Property) -> Result<bool, ConfigError> {
    match p.value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(p, "true or false")),
    }
}
