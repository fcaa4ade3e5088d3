//! ZooKeeper's server-side SASL and authentication policy: which optional providers are
//! registered, the DIGEST-MD5 users, how an authenticated name becomes a `sasl` id, who is a
//! super user, and which schemes `enforce.auth` requires.
//!
//! ZK compat: `ZooKeeperServer.processSasl` / `isSaslSuperUser`, `SaslServerCallbackHandler`,
//! `SASLAuthenticationProvider`, `AuthenticationHelper`, `ProviderRegistry`.

use std::collections::BTreeMap;

use super::digest_md5::{DigestMd5Server, CLIENT_SERVER_NAME, CLIENT_SERVICE};

/// Authentication providers beyond the always-present `digest` and `ip`
/// (`zookeeper.authProvider.N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Providers {
    /// `SASLAuthenticationProvider`: the `sasl` ACL scheme.
    pub sasl: bool,
    /// `X509AuthenticationProvider`: the `x509` ACL scheme.
    pub x509: bool,
}

impl Providers {
    /// Whether ACL ids of `scheme` have a provider.
    pub fn has(&self, scheme: &str) -> bool {
        match scheme {
            "digest" | "ip" => true,
            "sasl" => self.sasl,
            "x509" => self.x509,
            _ => false,
        }
    }
}

/// The server's DIGEST-MD5 setup (present when a JAAS file with a `Server` section is given).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslServerConfig {
    /// `user_<name>="<password>"` options of the JAAS server section.
    pub users: BTreeMap<String, String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password of user `super`.
    pub super_password: Option<String>,
    /// `zookeeper.kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `zookeeper.kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
}

impl SaslServerConfig {
    /// The password a DIGEST-MD5 user must prove. ZK compat: the super password property
    /// replaces `user_super` for user `super`.
    pub fn password_of(&self, user: &str) -> Option<String> {
        if user == "super" {
            if let Some(password) = &self.super_password {
                return Some(password.clone());
            }
        }
        self.users.get(user).cloned()
    }

    /// The authorization id a successful exchange yields for `authentication_id`.
    ///
    /// ZK compat: `SaslServerCallbackHandler.handleAuthorizeCallback` authorizes every client
    /// and sets the authorized id from the *authentication* id (a requested authzid is ignored)
    /// as `KerberosName` splits it (`service/host@REALM`): the short name, then `/host` and
    /// `@REALM` unless the remove flags drop them. Deviation: the short name is the service part;
    /// Kerberos `auth_to_local` rules are not applied (there is no Kerberos here).
    pub fn authorization_id(&self, authentication_id: &str) -> String {
        let (before_realm, realm) = match authentication_id.split_once('@') {
            Some((name, realm)) => (name, Some(realm)),
            None => (authentication_id, None),
        };
        let (short, host) = match before_realm.split_once('/') {
            Some((short, host)) => (short, Some(host)),
            None => (before_realm, None),
        };
        let mut id = short.to_string();
        if let Some(host) = host.filter(|_| !self.remove_host) {
            id.push('/');
            id.push_str(host);
        }
        if let Some(realm) = realm.filter(|_| !self.remove_realm) {
            id.push('@');
            id.push_str(realm);
        }
        id
    }

    /// A fresh DIGEST-MD5 server for one client connection.
    pub fn new_exchange(&self) -> DigestMd5Server {
        DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME)
    }
}

/// Authentication settings of the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Registered optional providers.
    pub providers: Providers,
    /// DIGEST-MD5 users; `None` when the server has no JAAS `Server` section (a `sasl` request
    /// is then answered as ZooKeeper does without a SASL login: OK with no token).
    pub sasl: Option<SaslServerConfig>,
    /// `zookeeper.superUser` and `zookeeper.superUser.*`: SASL ids that also get `super`.
    pub super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`: keep a connection whose SASL exchange failed.
    pub allow_sasl_failed_clients: bool,
    /// `zookeeper.enforce.auth.schemes` when `zookeeper.enforce.auth.enabled` (or `sasl` when
    /// `zookeeper.sessionRequireClientSASLAuth`); empty = not enforced.
    pub enforce_schemes: Vec<String>,
    /// `zookeeper.letAnySaslUserDoX`: a `sasl` ACL id that every SASL user matches.
    pub let_any_sasl_user: Option<String>,
}

impl AuthConfig {
    /// Whether `enforce.auth` requires `sasl` (then a failed exchange answers
    /// `SessionClosedRequireSaslAuth` and is never tolerated).
    pub fn sasl_required(&self) -> bool {
        self.enforce_schemes.iter().any(|s| s == "sasl")
    }

    /// Whether a connection holding ids of `schemes` may send requests.
    pub fn allows(&self, mut schemes: impl Iterator<Item = impl AsRef<str>>) -> bool {
        self.enforce_schemes.is_empty()
            || schemes.any(|s| self.enforce_schemes.iter().any(|e| e == s.as_ref()))
    }

    /// ZK compat: `isSaslSuperUser`.
    pub fn is_super_user(&self, authorization_id: &str) -> bool {
        !authorization_id.is_empty() && self.super_users.iter().any(|u| u == authorization_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_ids_follow_kerberos_name_rules() {
        let mut c = SaslServerConfig::default();
        assert_eq!(c.authorization_id("bob"), "bob");
        assert_eq!(c.authorization_id("zk/host1@EXAMPLE.COM"), "zk/host1@EXAMPLE.COM");
        c.remove_host = true;
        assert_eq!(c.authorization_id("zk/host1@EXAMPLE.COM"), "zk@EXAMPLE.COM");
        c.remove_realm = true;
        assert_eq!(c.authorization_id("zk/host1@EXAMPLE.COM"), "zk");
    }

    #[test]
    fn super_password_replaces_user_super() {
        let mut c = SaslServerConfig::default();
        c.users.insert("super".into(), "a".into());
        assert_eq!(c.password_of("super").as_deref(), Some("a"));
        c.super_password = Some("b".into());
        assert_eq!(c.password_of("super").as_deref(), Some("b"));
        assert_eq!(c.password_of("bob"), None);
    }

    #[test]
    fn enforcement() {
        let mut a = AuthConfig::default();
        assert!(a.allows(std::iter::empty::<&str>()));
        a.enforce_schemes = vec!["sasl".into(), "digest".into()];
        assert!(!a.allows(["ip"].iter()));
        assert!(a.allows(["ip", "digest"].iter()));
        assert!(a.sasl_required());
    }
}
