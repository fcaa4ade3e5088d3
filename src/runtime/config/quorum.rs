//! The quorum port's security keys: TLS between members (`sslQuorum`, `portUnification`,
//! `ssl.quorum.*`, `sslQuorumReloadCertFiles`) and SASL between members (`quorum.auth.*`).
//!
//! ZK compat: `QuorumPeerConfig.parseProperties` reads `sslQuorum`, `portUnification`,
//! `sslQuorumReloadCertFiles` and the `quorum.auth.*` keys itself; the `ssl.quorum.*` keys are
//! unknown to it, so they become the system properties `zookeeper.ssl.quorum.*` that
//! `QuorumX509Util` reads. Both spellings are accepted here and kept under the short name
//! (`ssl.quorum.keyStore.location`). The checks of `parseProperties` on the three SASL flags are
//! made in [`QuorumSecurity::check`].

use std::collections::BTreeMap;

use super::properties::Property;
use super::{boolean, ConfigError};

/// The `ssl.quorum.` prefix of the quorum TLS keys (ZooKeeper's `QuorumX509Util`).
pub const SSL_QUORUM_PREFIX: &str = "ssl.quorum.";

/// ZK compat: `QuorumAuth.QUORUM_LEARNER_SASL_LOGIN_CONTEXT_DFAULT_VALUE`.
pub const LEARNER_LOGIN_CONTEXT_DEFAULT: &str = "QuorumLearner";
/// ZK compat: `QuorumAuth.QUORUM_SERVER_SASL_LOGIN_CONTEXT_DFAULT_VALUE`.
pub const SERVER_LOGIN_CONTEXT_DEFAULT: &str = "QuorumServer";
/// ZK compat: `QuorumAuth.QUORUM_KERBEROS_SERVICE_PRINCIPAL_DEFAULT_VALUE`.
pub const KERBEROS_SERVICE_PRINCIPAL_DEFAULT: &str = "zkquorum/localhost";

/// Security of the links between members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumSecurity {
    /// `sslQuorum`: members dial each other with TLS (and accept only TLS unless
    /// `portUnification`).
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum port accepts TLS and plain connections alike (the middle
    /// steps of the rolling switch to quorum TLS).
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`: key and trust stores are reloaded when their files change.
    pub reload_cert_files: bool,
    /// The `ssl.quorum.*` keys as given, under their short name (`ssl.quorum.keyStore.location`).
    pub ssl: BTreeMap<String, String>,
    /// `quorum.auth.*`.
    pub sasl: QuorumSasl,
}

impl QuorumSecurity {
    /// Whether the quorum port must understand TLS (it may also take plain connections).
    pub fn accepts_tls(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }

    /// Takes `p` if it is one of the quorum security keys; `Ok(false)` leaves it to the caller.
    pub(super) fn apply(&mut self, p: &Property) -> Result<bool, ConfigError> {
        let key = p.key.as_str();
        match key {
            "sslQuorum" => self.ssl_quorum = boolean(p)?,
            "portUnification" => self.port_unification = boolean(p)?,
            "sslQuorumReloadCertFiles" => self.reload_cert_files = boolean(p)?,
            "quorum.auth.enableSasl" => self.sasl.enabled = boolean(p)?,
            "quorum.auth.learnerRequireSasl" => self.sasl.learner_require = boolean(p)?,
            "quorum.auth.serverRequireSasl" => self.sasl.server_require = boolean(p)?,
            "quorum.auth.learner.saslLoginContext" => {
                self.sasl.learner_login_context = p.value.clone();
            }
            "quorum.auth.server.saslLoginContext" => {
                self.sasl.server_login_context = p.value.clone();
            }
            "quorum.auth.kerberos.servicePrincipal" => {
                self.sasl.kerberos_service_principal = p.value.clone();
            }
            _ => {
                let short = key.strip_prefix("zookeeper.").unwrap_or(key);
                if !short.starts_with(SSL_QUORUM_PREFIX) {
                    return Ok(false);
                }
                self.ssl.insert(short.to_string(), p.value.clone());
            }
        }
        Ok(true)
    }

    /// ZK compat: the checks at the end of `parseProperties`. Each would leave a member that
    /// cannot join (or cannot be joined), so each stops the server.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let sasl = &self.sasl;
        let invalid =
            |key: &'static str, message: String| ConfigError::Inconsistent { key, message };
        if !sasl.enabled && sasl.server_require {
            return Err(invalid(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"
                    .to_string(),
            ));
        }
        if !sasl.enabled && sasl.learner_require {
            return Err(invalid(
                "quorum.auth.learnerRequireSasl",
                "quorum.auth.enableSasl is disabled, so cannot enable \
                 quorum.auth.learnerRequireSasl"
                    .to_string(),
            ));
        }
        // A member that requires SASL of its learners but does not authenticate as one could
        // never join anyone else's quorum.
        if !sasl.learner_require && sasl.server_require {
            return Err(invalid(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable \
                 quorum.auth.serverRequireSasl"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// SASL between members. ZK compat: the member that dials authenticates as the learner (SASL
/// client, JAAS section `QuorumLearner`), the member that accepts as the server (SASL server,
/// JAAS section `QuorumServer`), whatever their roles in Zab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumSasl {
    /// `quorum.auth.enableSasl`: this member can authenticate and be authenticated. Without it
    /// the other two flags must be false and no JAAS file is read.
    pub enabled: bool,
    /// `quorum.auth.learnerRequireSasl`: dialing, authenticate and require success.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: accepting, refuse a member that does not authenticate
    /// (or fails to). Without it a failure is logged and the link kept.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section with this member's credentials.
    pub learner_login_context: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section with the accepted users.
    pub server_login_context: String,
    /// `quorum.auth.kerberos.servicePrincipal` (only GSSAPI uses it).
    pub kerberos_service_principal: String,
}

impl Default for QuorumSasl {
    fn default() -> QuorumSasl {
        QuorumSasl {
            enabled: false,
            learner_require: false,
            server_require: false,
            learner_login_context: LEARNER_LOGIN_CONTEXT_DEFAULT.to_string(),
            server_login_context: SERVER_LOGIN_CONTEXT_DEFAULT.to_string(),
            kerberos_service_principal: KERBEROS_SERVICE_PRINCIPAL_DEFAULT.to_string(),
        }
    }
}
