//! The authentication keys: SASL (`java.security.auth.login.config`, `zookeeper.sasl.*`,
//! `zookeeper.superUser*`, `zookeeper.kerberos.*`), `zookeeper.authProvider.N` and
//! `zookeeper.enforce.auth.*`. They are system properties in ZooKeeper; each arrives here
//! from a `-D` flag (see [`super::sysprops`]) or from a `zoo.cfg` line (which ZooKeeper turns
//! into `zookeeper.<key>`), the `zoo.cfg` line winning.
//!
//! Ensemble extension: `java.security.auth.login.config=PATH` is also read from `zoo.cfg`
//! (ZooKeeper would only take it as a JVM flag).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::jaas::JaasConfig;
use super::properties::Property;
use super::{boolean, ConfigError};
use crate::core::auth::{AuthConfig, Providers, SaslServerConfig};

/// The JAAS property.
pub const JAAS_KEY: &str = "java.security.auth.login.config";
const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
const X509_PROVIDER: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
const DEFAULT_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
];

/// What the authentication keys say, before the JAAS file is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// The core's settings; `sasl` is filled by [`AuthSettings::load_jaas`].
    pub core: AuthConfig,
    /// The JAAS file and where it was named.
    pub jaas_file: Option<(PathBuf, String)>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section of the server (default `Server`).
    pub server_section: Option<String>,
    /// `SASLAuthenticationProvider.superPassword` and the kerberos name flags.
    pub sasl_base: SaslServerConfig,
    /// `authProvider.N` classes Ensemble does not have (warned about).
    pub unknown_providers: Vec<String>,
}

impl AuthSettings {
    /// The server's JAAS section name.
    pub fn server_section(&self) -> &str {
        self.server_section.as_deref().unwrap_or("Server")
    }

    /// Reads the JAAS file, if one is named, and fills in the DIGEST-MD5 users.
    ///
    /// ZK compat: `ServerCnxnFactory.configureSaslLogin`: a file without the server section
    /// means no SASL (a note), unless `zookeeper.sasl.serverconfig` named the section.
    pub fn load_jaas(&mut self, notes: &mut Vec<String>) -> Result<(), ConfigError> {
        let Some((path, origin)) = self.jaas_file.clone() else {
            return Ok(());
        };
        let jaas_error = |message: String| ConfigError::Jaas {
            path: path.clone(),
            origin: origin.clone(),
            message,
        };
        let jaas = JaasConfig::load(&path).map_err(|e| jaas_error(e.to_string()))?;
        let section = self.server_section().to_string();
        if jaas.section(&section).is_none() {
            if self.server_section.is_some() {
                return Err(jaas_error(format!(
                    "no JAAS configuration section named '{section}', but \
                     zookeeper.sasl.serverconfig names it"
                )));
            }
            notes.push(format!("{}: no '{section}' section; client SASL is off", path.display()));
            return Ok(());
        }
        let users = jaas.digest_users(&section).map_err(|e| jaas_error(e.to_string()))?;
        notes.push(format!(
            "SASL DIGEST-MD5: {} user(s) from section '{section}' of {} (named by {origin})",
            users.len(),
            path.display()
        ));
        self.core.sasl = Some(SaslServerConfig { users, ..self.sasl_base.clone() });
        Ok(())
    }
}

/// The keys as read, until `finish`.
#[derive(Default)]
pub(super) struct AuthDraft {
    jaas_file: Option<(PathBuf, String)>,
    server_section: Option<String>,
    providers: BTreeMap<String, (String, usize)>,
    super_users: BTreeMap<String, String>,
    super_password: Option<String>,
    enforce_enabled: bool,
    enforce_schemes: Option<String>,
    session_require_sasl: bool,
    allow_sasl_failed: bool,
    remove_host: bool,
    remove_realm: bool,
    let_any_sasl_user: Option<String>,
}

impl AuthDraft {
    /// Takes the key `name` (without a `zookeeper.` prefix) if it is an authentication key.
    pub(super) fn apply(
        &mut self,
        name: &str,
        p: &Property,
        origin: &str,
    ) -> Result<bool, ConfigError> {
        match name {
            JAAS_KEY => self.jaas_file = Some((PathBuf::from(&p.value), origin.to_string())),
            "sasl.serverconfig" => self.server_section = Some(p.value.clone()),
            "SASLAuthenticationProvider.superPassword" => {
                self.super_password = Some(p.value.clone())
            }
            "enforce.auth.enabled" => self.enforce_enabled = boolean(p)?,
            "enforce.auth.schemes" => self.enforce_schemes = Some(p.value.clone()),
            "sessionRequireClientSASLAuth" => self.session_require_sasl = boolean(p)?,
            "allowSaslFailedClients" => self.allow_sasl_failed = boolean(p)?,
            "kerberos.removeHostFromPrincipal" => self.remove_host = boolean(p)?,
            "kerberos.removeRealmFromPrincipal" => self.remove_realm = boolean(p)?,
            "letAnySaslUserDoX" => self.let_any_sasl_user = Some(p.value.clone()),
            "superUser" => {
                self.super_users.insert(name.to_string(), p.value.clone());
            }
            key if key.starts_with("superUser.") => {
                self.super_users.insert(name.to_string(), p.value.clone());
            }
            key if key.starts_with("authProvider.") => {
                self.providers.insert(key.to_string(), (p.value.clone(), p.line));
            }
            // Client-side properties a shared JVMFLAGS may carry; nothing to do on a server.
            "sasl.client" | "sasl.clientconfig" => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// ZK compat: `ProviderRegistry.initialize` and `AuthenticationHelper`'s checks.
    /// `secure_client_port`: ZooKeeper registers the x509 provider by itself then.
    pub(super) fn finish(self, secure_client_port: bool) -> Result<AuthSettings, ConfigError> {
        let mut providers = Providers { sasl: false, x509: secure_client_port };
        let mut unknown_providers = Vec::new();
        for (key, (class, _)) in &self.providers {
            match class.as_str() {
                SASL_PROVIDER => providers.sasl = true,
                X509_PROVIDER => providers.x509 = true,
                c if DEFAULT_PROVIDERS.contains(&c) => {}
                other => unknown_providers.push(format!(
                    "{key}={other}: Ensemble has no such authentication provider; ignored"
                )),
            }
        }
        let enforce_schemes: Vec<String> = if self.session_require_sasl {
            vec!["sasl".to_string()]
        } else if self.enforce_enabled {
            let schemes: Vec<String> = self
                .enforce_schemes
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if schemes.is_empty() {
                return Err(ConfigError::Inconsistent {
                    key: "enforce.auth.enabled",
                    message: "zookeeper.enforce.auth.enabled is true, so \
                              zookeeper.enforce.auth.schemes must be configured"
                        .to_string(),
                });
            }
            schemes
        } else {
            Vec::new()
        };
        if let Some(missing) = enforce_schemes.iter().find(|s| !providers.has(s)) {
            return Err(ConfigError::Inconsistent {
                key: "enforce.auth.schemes",
                message: format!(
                    "authentication scheme {missing} is not available (add its authProvider.N)"
                ),
            });
        }
        Ok(AuthSettings {
            core: AuthConfig {
                providers,
                sasl: None,
                super_users: self.super_users.into_values().collect(),
                allow_sasl_failed_clients: self.allow_sasl_failed,
                enforce_schemes,
                let_any_sasl_user: self.let_any_sasl_user,
            },
            jaas_file: self.jaas_file,
            server_section: self.server_section,
            sasl_base: SaslServerConfig {
                users: BTreeMap::new(),
                super_password: self.super_password,
                remove_host: self.remove_host,
                remove_realm: self.remove_realm,
            },
            unknown_providers,
        })
    }
}
