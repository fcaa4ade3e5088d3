//! [`PeerSecurity`] from the configuration: quorum SASL from `quorum.auth.*` and the JAAS
//! file, quorum TLS from `sslQuorum`, `portUnification` and `ssl.quorum.*`. Every file is read
//! here, at start-up, so a bad store or JAAS file stops the server instead of failing each
//! connection.

use std::path::Path;

use super::{digest, PeerError, PeerSasl, PeerSecurity, PeerTls};
use crate::runtime::config::jaas::JaasConfig;
use crate::runtime::config::{ServerConfig, SSL_QUORUM_PREFIX};
use crate::runtime::tls::{Role, TlsContext, TlsSettings};

impl PeerSecurity {
    /// What `config` asks of the quorum port; `jaas` is the JAAS login file
    /// (`java.security.auth.login.config`), needed only with `quorum.auth.enableSasl`.
    pub fn from_config(
        config: &ServerConfig,
        jaas: Option<&Path>,
    ) -> Result<PeerSecurity, PeerError> {
        let quorum = &config.quorum_security;
        let tls = if quorum.accepts_tls() {
            let settings = TlsSettings::from_properties(&quorum.ssl, SSL_QUORUM_PREFIX)
                .map_err(|error| PeerError::Security(error.to_string()))?;
            let context = TlsContext::new(settings, Role::Both)
                .map_err(|error| PeerError::Security(error.to_string()))?;
            Some(PeerTls {
                context,
                dial_tls: quorum.ssl_quorum,
                accept_plain: quorum.port_unification || !quorum.ssl_quorum,
                reload: quorum.reload_cert_files,
            })
        } else {
            None
        };
        let sasl = if quorum.sasl.enabled { Some(sasl(config, jaas)?) } else { None };
        Ok(PeerSecurity { sasl, tls })
    }
}

/// ZK compat: `QuorumPeer.initialize` builds `SaslQuorumAuthServer` (users of the server login
/// context) and `SaslQuorumAuthLearner` (credentials of the learner login context) whenever
/// `quorum.auth.enableSasl` is set, and fails if a section is missing.
fn sasl(config: &ServerConfig, jaas: Option<&Path>) -> Result<PeerSasl, PeerError> {
    let flags = &config.quorum_security.sasl;
    let path = jaas.ok_or_else(|| {
        PeerError::Security(
            "quorum.auth.enableSasl=true needs a JAAS file: pass \
             -Djava.security.auth.login.config=PATH in SERVER_JVMFLAGS or JVMFLAGS (or set \
             java.security.auth.login.config in zoo.cfg)"
                .into(),
        )
    })?;
    let file = JaasConfig::load(path).map_err(|error| PeerError::Security(error.to_string()))?;
    let jaas_error = |error: crate::runtime::config::jaas::JaasError| {
        PeerError::Security(format!("{}: {error}", path.display()))
    };
    let users = file.digest_users(&flags.server_login_context).map_err(jaas_error)?;
    let (user, password) = file.digest_client(&flags.learner_login_context).map_err(jaas_error)?;
    Ok(PeerSasl {
        learner_require: flags.learner_require,
        server_require: flags.server_require,
        learner: Some(digest::learner(user, password)),
        server: digest::server(users),
    })
}
