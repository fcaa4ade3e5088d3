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

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    fn config(lines: &str) -> ServerConfig {
        let text = format!(
            "dataDir=/tmp/ensemble-unused\ntickTime=200\ninitLimit=5\nsyncLimit=2\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n{lines}"
        );
        ServerConfig::parse(&text).expect("parse")
    }

    fn error(config: &ServerConfig, jaas: Option<&Path>) -> String {
        match PeerSecurity::from_config(config, jaas) {
            Ok(security) => panic!("accepted: {security:?}"),
            Err(error) => error.to_string(),
        }
    }

    const SASL: &str = "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true";

    #[test]
    fn nothing_asked_means_plain_links() {
        let security = PeerSecurity::from_config(&config(""), None).expect("plain");
        assert!(security.sasl.is_none() && security.tls.is_none());
    }

    #[test]
    fn quorum_sasl_needs_a_jaas_file_with_both_sections() {
        let sasl = config(SASL);
        assert!(error(&sasl, None).contains("-Djava.security.auth.login.config=PATH"));
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("jaas.conf");
        let server = "QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule \
                      required\n user_q=\"s\";\n};\n";
        std::fs::write(&path, server).expect("write");
        let message = error(&sasl, Some(&path));
        assert!(message.contains("QuorumLearner"), "{message}");
        let learner = "QuorumLearner {\n org.apache.zookeeper.server.auth.DigestLoginModule \
                       required\n username=\"q\"\n password=\"s\";\n};\n";
        std::fs::write(&path, format!("{server}{learner}")).expect("write");
        let security = PeerSecurity::from_config(&sasl, Some(&path)).expect("sasl");
        let peer_sasl = security.sasl.expect("sasl on");
        assert!(peer_sasl.learner_require && !peer_sasl.server_require);
        // The sections are the ones named by the login-context keys.
        let renamed = config(&format!("{SASL}\nquorum.auth.server.saslLoginContext=Other"));
        assert!(error(&renamed, Some(&path)).contains("Other"));
        // Kerberos is refused by name.
        let kerberos = "QuorumServer {\n com.sun.security.auth.module.Krb5LoginModule \
                        required;\n};\n";
        std::fs::write(&path, format!("{kerberos}{learner}")).expect("write");
        assert!(error(&sasl, Some(&path)).contains("GSSAPI"), "{}", error(&sasl, Some(&path)));
    }

    #[test]
    fn quorum_tls_needs_usable_stores() {
        let message = error(&config("sslQuorum=true"), None);
        assert!(message.contains("ssl.quorum.keyStore.location"), "{message}");
        let message = error(
            &config("portUnification=true\nssl.quorum.keyStore.location=/nonexistent/q.pem"),
            None,
        );
        assert!(message.contains("/nonexistent/q.pem"), "{message}");
    }
}
