//! The DIGEST-MD5 SASL mechanism (RFC 2831) as Java's `com.sun.security.sasl.digest` speaks it
//! for ZooKeeper: both ends, `qop=auth` only (what ZooKeeper's client and server, kazoo's
//! pure-sasl and the C client negotiate; ZooKeeper passes no SASL properties, so Java offers
//! `auth` alone), `algorithm=md5-sess`, one realm equal to the server name.
//!
//! ZK compat: ZooKeeper's client port uses service `zookeeper` and server name (= realm and
//! digest-uri host) `zk-sasl-md5` ([`CLIENT_SERVICE`], [`CLIENT_SERVER_NAME`]); quorum SASL uses
//! `zookeeper-quorum` / `zk-quorum-sasl-md5` ([`QUORUM_SERVICE`], [`QUORUM_SERVER_NAME`]).
//!
//! Both ends are pure state machines: [`DigestMd5Server::evaluate`] and
//! [`DigestMd5Client::evaluate`] take the peer's token and answer the next token. Every error
//! leaves the machine failed (a replayed or garbled token never succeeds later) and never panics.

use md5::{Digest, Md5};
use rand::RngCore;

/// SASL service name of ZooKeeper's client port.
pub const CLIENT_SERVICE: &str = "zookeeper";
/// Server name (realm) ZooKeeper hard-codes for DIGEST-MD5 on the client port.
pub const CLIENT_SERVER_NAME: &str = "zk-sasl-md5";
/// SASL service name of ZooKeeper's quorum authentication.
pub const QUORUM_SERVICE: &str = "zookeeper-quorum";
/// Server name (realm) ZooKeeper hard-codes for DIGEST-MD5 between quorum members.
pub const QUORUM_SERVER_NAME: &str = "zk-quorum-sasl-md5";

/// Largest token accepted, as Java's limits: 2048 bytes for the challenge, 4096 for the response.
const MAX_CHALLENGE: usize = 2048;
const MAX_RESPONSE: usize = 4096;

/// Why a DIGEST-MD5 exchange failed. The text is what the server logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The client's first token was not empty: DIGEST-MD5 has no initial response, but GSSAPI
    /// (Kerberos) clients send one.
    #[error(
        "DIGEST-MD5: the client sent an initial response ({0} bytes); GSSAPI (Kerberos) \
         clients do, and this server supports DIGEST-MD5 only"
    )]
    InitialResponse(usize),
    /// A token arrived in the wrong step (replay, extra token).
    #[error("DIGEST-MD5: unexpected token in step {step}")]
    UnexpectedToken {
        /// The exchange step the machine was in.
        step: &'static str,
    },
    /// The token does not parse as a directive list.
    #[error("DIGEST-MD5: malformed token: {0}")]
    Malformed(String),
    /// A required directive is missing or appears twice.
    #[error("DIGEST-MD5: directive '{0}' missing or repeated")]
    Directive(&'static str),
    /// A directive has a value this implementation refuses.
    #[error("DIGEST-MD5: bad value for '{name}': {value}")]
    BadValue {
        /// Directive name.
        name: &'static str,
        /// Offending value.
        value: String,
    },
    /// The user is not in the server's credentials.
    #[error("DIGEST-MD5: user '{0}' not found in list of authenticateable users")]
    UnknownUser(String),
    /// The digest does not match: wrong password (or tampering).
    #[error("DIGEST-MD5: mismatched response for user '{0}' (wrong password?)")]
    WrongPassword(String),
    /// The server's rspauth does not prove it knows the password.
    #[error("DIGEST-MD5: server's rspauth does not match")]
    BadRspAuth,
    /// The exchange already failed; the machine accepts nothing more.
    #[error("DIGEST-MD5: exchange already failed")]
    Failed,
}

/// One parsed directive list (`name=value` or `name="quoted"` pairs separated by commas).
#[derive(Debug, Default)]
struct Directives(Vec<(String, String)>);

impl Directives {
    fn parse(token: &[u8]) -> Result<Self, DigestError> {
        let text = std::str::from_utf8(token)
            .map_err(|_| DigestError::Malformed("not UTF-8".to_string()))?;
        let mut out = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            // Skip separators and linear white space between elements (empty elements allowed).
            while chars.peek().is_some_and(|c| *c == ',' || c.is_ascii_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c.is_ascii_whitespace() {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(DigestError::Malformed(format!("unexpected {c:?} in a name")));
                }
                name.push(c);
                chars.next();
            }
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('=') {
                return Err(DigestError::Malformed(format!("directive '{name}' has no '='")));
            }
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => {
                            return Err(DigestError::Malformed(format!(
                                "unterminated quoted value of '{name}'"
                            )))
                        }
                        Some('\\') => match chars.next() {
                            Some(c) => value.push(c),
                            None => {
                                return Err(DigestError::Malformed("dangling '\\'".to_string()))
                            }
                        },
                        Some('"') => break,
                        Some(c) => value.push(c),
                    }
                }
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| *c != ',') {
                    return Err(DigestError::Malformed(format!("junk after value of '{name}'")));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                let trimmed = value.trim_end().len();
                value.truncate(trimmed);
            }
            out.push((name.to_ascii_lowercase(), value));
        }
        Ok(Directives(out))
    }

    /// The value of a directive that may appear at most once.
    fn optional(&self, name: &'static str) -> Result<Option<&str>, DigestError> {
        let mut found = self.0.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(DigestError::Directive(name));
        }
        Ok(first)
    }

    /// The value of a directive that must appear exactly once.
    fn required(&self, name: &'static str) -> Result<&str, DigestError> {
        self.optional(name)?.ok_or(DigestError::Directive(name))
    }
}

/// Quotes a value for a quoted-string (backslash before `"` and `\`).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Encodes text as the exchange's charset says: UTF-8 when `charset=utf-8` was agreed, otherwise
/// ISO 8859-1 (characters outside it cannot be sent that way and make the digest differ).
fn encode(text: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        text.as_bytes().to_vec()
    } else {
        text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
    }
}

/// Inputs of the md5-sess digest (RFC 2831 §2.1.2.1).
struct DigestInput<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    nc: &'a str,
    qop: &'a str,
    digest_uri: &'a str,
    authzid: Option<&'a str>,
    utf8: bool,
}

impl DigestInput<'_> {
    /// `response-value` with A2 = `AUTHENTICATE:digest-uri` (`client == true`, the client's
    /// `response`) or `:digest-uri` (the server's `rspauth`).
    fn response_value(&self, client: bool) -> String {
        let secret = md5(&[
            &encode(self.username, self.utf8),
            b":",
            &encode(self.realm, self.utf8),
            b":",
            &encode(self.password, self.utf8),
        ]);
        let mut a1 = secret.to_vec();
        a1.extend_from_slice(b":");
        a1.extend_from_slice(self.nonce.as_bytes());
        a1.extend_from_slice(b":");
        a1.extend_from_slice(self.cnonce.as_bytes());
        if let Some(authzid) = self.authzid {
            a1.extend_from_slice(b":");
            a1.extend_from_slice(&encode(authzid, self.utf8));
        }
        let ha1 = hex(&md5(&[&a1]));
        let a2_prefix: &[u8] = if client { b"AUTHENTICATE:" } else { b":" };
        let ha2 = hex(&md5(&[a2_prefix, self.digest_uri.as_bytes()]));
        hex(&md5(&[
            ha1.as_bytes(),
            b":",
            self.nonce.as_bytes(),
            b":",
            self.nc.as_bytes(),
            b":",
            self.cnonce.as_bytes(),
            b":",
            self.qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    }
}

/// A fresh nonce: 30 random bytes in base64 (40 characters, as Java's).
fn new_nonce(rng: &mut dyn RngCore) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 30];
    rng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Constant-time comparison of two digests (lengths are public).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the server answers a client token with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send this challenge and wait for the client's response.
    Challenge(Vec<u8>),
    /// Authentication succeeded: send `rspauth` (the final token); the client proved it knows
    /// the password of `authentication_id`.
    Complete {
        /// The `rspauth=...` token for the client.
        token: Vec<u8>,
        /// The user name the client authenticated as.
        authentication_id: String,
        /// The `authzid` the client asked for, if any.
        authorization_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    Start,
    Challenged { nonce: String },
    Complete,
    Failed,
}

/// The server end of DIGEST-MD5.
#[derive(Debug, Clone)]
pub struct DigestMd5Server {
    service: String,
    server_name: String,
    state: ServerState,
}

impl DigestMd5Server {
    /// A server for `service` (e.g. [`CLIENT_SERVICE`]) whose realm and digest-uri host are
    /// `server_name` (e.g. [`CLIENT_SERVER_NAME`]).
    pub fn new(service: &str, server_name: &str) -> Self {
        DigestMd5Server {
            service: service.to_string(),
            server_name: server_name.to_string(),
            state: ServerState::Start,
        }
    }

    /// True once the client has been authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == ServerState::Complete
    }

    /// Takes the client's next token. The first must be empty (DIGEST-MD5 has no initial
    /// response) and is answered with a challenge; the second is checked against
    /// `password_of(username)`. Any error fails the exchange for good.
    pub fn evaluate(
        &mut self,
        token: &[u8],
        rng: &mut dyn RngCore,
        password_of: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerStep, DigestError> {
        let state = std::mem::replace(&mut self.state, ServerState::Failed);
        let result = match state {
            ServerState::Start => {
                if !token.is_empty() {
                    Err(DigestError::InitialResponse(token.len()))
                } else {
                    let nonce = new_nonce(rng);
                    // ZK compat: Java's challenge; qop is left out because only `auth` is
                    // offered, which is the default.
                    let challenge = format!(
                        "realm={},nonce={},charset=utf-8,algorithm=md5-sess",
                        quote(&self.server_name),
                        quote(&nonce)
                    );
                    self.state = ServerState::Challenged { nonce };
                    Ok(ServerStep::Challenge(challenge.into_bytes()))
                }
            }
            ServerState::Challenged { nonce } => self.check_response(token, &nonce, password_of),
            ServerState::Complete => Err(DigestError::UnexpectedToken { step: "complete" }),
            ServerState::Failed => Err(DigestError::Failed),
        };
        if let Ok(ServerStep::Complete { .. }) = result {
            self.state = ServerState::Complete;
        }
        result
    }

    fn check_response(
        &self,
        token: &[u8],
        nonce: &str,
        password_of: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerStep, DigestError> {
        if token.len() > MAX_RESPONSE {
            return Err(DigestError::Malformed(format!("response of {} bytes", token.len())));
        }
        let d = Directives::parse(token)?;
        let utf8 = match d.optional("charset")? {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("utf-8") => true,
            Some(c) => return Err(DigestError::BadValue { name: "charset", value: c.into() }),
        };
        let username = d.required("username")?;
        let realm = d.optional("realm")?.unwrap_or("");
        if !realm.is_empty() && realm != self.server_name {
            return Err(DigestError::BadValue { name: "realm", value: realm.into() });
        }
        let client_nonce = d.required("nonce")?;
        if !same(client_nonce, nonce) {
            return Err(DigestError::BadValue { name: "nonce", value: client_nonce.into() });
        }
        let cnonce = d.required("cnonce")?;
        if cnonce.is_empty() {
            return Err(DigestError::Directive("cnonce"));
        }
        let nc = d.required("nc")?;
        if u32::from_str_radix(nc, 16) != Ok(1) {
            return Err(DigestError::BadValue { name: "nc", value: nc.into() });
        }
        let qop = d.optional("qop")?.unwrap_or("auth");
        if qop != "auth" {
            return Err(DigestError::BadValue { name: "qop", value: qop.into() });
        }
        let digest_uri = d.required("digest-uri")?;
        let expected_uri = format!("{}/{}", self.service, self.server_name);
        if !digest_uri.eq_ignore_ascii_case(&expected_uri) {
            return Err(DigestError::BadValue { name: "digest-uri", value: digest_uri.into() });
        }
        if let Some(maxbuf) = d.optional("maxbuf")? {
            if !maxbuf.parse::<u32>().is_ok_and(|m| m > 0) {
                return Err(DigestError::BadValue { name: "maxbuf", value: maxbuf.into() });
            }
        }
        let response = d.required("response")?;
        let authzid = d.optional("authzid")?.filter(|a| !a.is_empty());
        let Some(password) = password_of(username) else {
            return Err(DigestError::UnknownUser(username.to_string()));
        };
        let input = DigestInput {
            username,
            realm,
            password: &password,
            nonce,
            cnonce,
            nc,
            qop,
            digest_uri,
            authzid,
            utf8,
        };
        if !same(&input.response_value(true), &response.to_ascii_lowercase()) {
            return Err(DigestError::WrongPassword(username.to_string()));
        }
        let rspauth = input.response_value(false);
        Ok(ServerStep::Complete {
            token: format!("rspauth={rspauth}").into_bytes(),
            authentication_id: username.to_string(),
            authorization_id: authzid.map(str::to_string),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientState {
    Start,
    Responded { expected_rspauth: String },
    Complete,
    Failed,
}

/// The client end of DIGEST-MD5.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    service: String,
    server_name: String,
    username: String,
    password: String,
    authzid: Option<String>,
    state: ClientState,
}

impl DigestMd5Client {
    /// A client authenticating as `username` to `service`/`server_name`, optionally asking for
    /// authorization identity `authzid`.
    pub fn new(
        service: &str,
        server_name: &str,
        username: &str,
        password: &str,
        authzid: Option<&str>,
    ) -> Self {
        DigestMd5Client {
            service: service.to_string(),
            server_name: server_name.to_string(),
            username: username.to_string(),
            password: password.to_string(),
            authzid: authzid.map(str::to_string),
            state: ClientState::Start,
        }
    }

    /// The first token to send: empty (DIGEST-MD5 has no initial response).
    pub fn initial_response(&self) -> Vec<u8> {
        Vec::new()
    }

    /// True once the server's `rspauth` has been verified.
    pub fn is_complete(&self) -> bool {
        self.state == ClientState::Complete
    }

    /// Takes the server's next token: the challenge is answered with a response (`Some`); the
    /// final `rspauth` is verified and answered with `None` (nothing more to send).
    pub fn evaluate(
        &mut self,
        token: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<Option<Vec<u8>>, DigestError> {
        let state = std::mem::replace(&mut self.state, ClientState::Failed);
        match state {
            ClientState::Start => {
                let (response, expected_rspauth) = self.respond(token, rng)?;
                self.state = ClientState::Responded { expected_rspauth };
                Ok(Some(response))
            }
            ClientState::Responded { expected_rspauth } => {
                let d = Directives::parse(token)?;
                let rspauth = d.required("rspauth")?;
                if !same(&rspauth.to_ascii_lowercase(), &expected_rspauth) {
                    return Err(DigestError::BadRspAuth);
                }
                self.state = ClientState::Complete;
                Ok(None)
            }
            ClientState::Complete => Err(DigestError::UnexpectedToken { step: "complete" }),
            ClientState::Failed => Err(DigestError::Failed),
        }
    }

    fn respond(
        &self,
        token: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<(Vec<u8>, String), DigestError> {
        if token.len() > MAX_CHALLENGE {
            return Err(DigestError::Malformed(format!("challenge of {} bytes", token.len())));
        }
        let d = Directives::parse(token)?;
        let nonce = d.required("nonce")?;
        let algorithm = d.required("algorithm")?;
        if !algorithm.eq_ignore_ascii_case("md5-sess") {
            return Err(DigestError::BadValue { name: "algorithm", value: algorithm.into() });
        }
        if let Some(qops) = d.optional("qop")? {
            if !qops.split(',').any(|q| q.trim() == "auth") {
                return Err(DigestError::BadValue { name: "qop", value: qops.into() });
            }
        }
        let utf8 = match d.optional("charset")? {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("utf-8") => true,
            Some(c) => return Err(DigestError::BadValue { name: "charset", value: c.into() }),
        };
        // ZK compat: Java's client takes the (first) realm the server offers.
        let realm = d.0.iter().find(|(n, _)| n == "realm").map_or("", |(_, v)| v.as_str());
        let mut cnonce_bytes = [0u8; 30];
        rng.fill_bytes(&mut cnonce_bytes);
        let cnonce = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(cnonce_bytes)
        };
        let digest_uri = format!("{}/{}", self.service, self.server_name);
        let input = DigestInput {
            username: &self.username,
            realm,
            password: &self.password,
            nonce,
            cnonce: &cnonce,
            nc: "00000001",
            qop: "auth",
            digest_uri: &digest_uri,
            authzid: self.authzid.as_deref(),
            utf8,
        };
        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!("username={}", quote(&self.username)));
        if !realm.is_empty() {
            out.push_str(&format!(",realm={}", quote(realm)));
        }
        out.push_str(&format!(
            ",nonce={},nc=00000001,cnonce={},digest-uri={},maxbuf=65536,response={},qop=auth",
            quote(nonce),
            quote(&cnonce),
            quote(&digest_uri),
            input.response_value(true)
        ));
        if let Some(authzid) = &self.authzid {
            out.push_str(&format!(",authzid={}", quote(authzid)));
        }
        Ok((out.into_bytes(), input.response_value(false)))
    }
}

#[cfg(test)]
#[path = "digest_md5_tests.rs"]
mod tests;
