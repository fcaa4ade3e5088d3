//! [`PeerSecurity`] from the configuration: quorum SASL from `quorum.auth.*` and the JAAS
//! file, quorum TLS from `sslQuorum`, `portUnification` and `ssl.quorum.*`.

use super::{PeerError, PeerSecurity};
use crate::runtime::config::ServerConfig;

impl PeerSecurity {
    /// What `config` asks of the quorum port. Reads the files it names (JAAS, key and trust
    /// stores), so it fails at start-up, not at the first connection.
    pub fn from_config(config: &ServerConfig) -> Result<PeerSecurity, PeerError> {
        let quorum = &config.quorum_security;
        if quorum.accepts_tls() {
            return Err(PeerError::Security(
                "sslQuorum/portUnification: quorum TLS is not built yet".into(),
            ));
        }
        if quorum.sasl.enabled {
            return Err(PeerError::Security(
                "quorum.auth.enableSasl: the DIGEST-MD5 mechanism is not built yet".into(),
            ));
        }
        Ok(PeerSecurity::default())
    }
}
