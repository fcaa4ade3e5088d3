//! JAAS login configuration files, as Java's `com.sun.security.auth.login.ConfigFile` reads
//! them, and the credentials ZooKeeper takes from their sections.
//!
//! ```text
//! Server {                                 // a section ("application name")
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"             // options: name=value, value quoted or bare
//!     user_bob="bobsecret";                // a login module entry ends with ';'
//! };                                       // and so does a section
//! ```
//!
//! Comments are `//` to the end of the line and `/* ... */`, as Java's tokenizer allows. Parsing
//! is pure; only [`JaasConfig::load`] reads a file.
//!
//! ZK compat: the server takes DIGEST-MD5 users from every `user_<name>` option of every entry
//! in its section (`Server` unless `zookeeper.sasl.serverconfig` names another;
//! `QuorumServer` for quorum SASL); a client (`Client`, `QuorumLearner`) takes `username` and
//! `password` from the first entry that has them (`DigestLoginModule` does exactly this).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The login module ZooKeeper uses for DIGEST-MD5 on both ends.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// Login module class names that mean Kerberos (GSSAPI), which Ensemble does not implement.
const KERBEROS_MODULES: &[&str] = &[
    "com.sun.security.auth.module.Krb5LoginModule",
    "com.ibm.security.auth.module.Krb5LoginModule",
];

/// A JAAS file that does not parse, or a section that does not give what it must.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum JaasError {
    /// The file could not be read.
    #[error("JAAS file {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A syntax error.
    #[error("JAAS line {line}: {message}")]
    Syntax {
        /// 1-based line of the offending token.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A section ZooKeeper looks up is absent.
    #[error("JAAS file has no '{0}' section")]
    MissingSection(String),
    /// A section names a Kerberos login module (GSSAPI).
    #[error(
        "JAAS line {line}: section '{section}' uses {module}: SASL GSSAPI (Kerberos) is not \
         supported by Ensemble; use DIGEST-MD5 with {DIGEST_LOGIN_MODULE}"
    )]
    Gssapi {
        /// The section.
        section: String,
        /// The Kerberos login module class.
        module: String,
        /// Its line.
        line: usize,
    },
    /// A client section without `username` and `password`.
    #[error("JAAS section '{0}' has no entry with both username and password options")]
    NoClientCredentials(String),
}

/// A login module's control flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlFlag {
    /// `required`
    Required,
    /// `requisite`
    Requisite,
    /// `sufficient`
    Sufficient,
    /// `optional`
    Optional,
}

/// One login module entry of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name.
    pub class: String,
    /// Its control flag.
    pub flag: ControlFlag,
    /// Its options in file order (a repeated name keeps its last value, as Java's map does).
    pub options: BTreeMap<String, String>,
    /// 1-based line of the class name.
    pub line: usize,
}

/// One section (JAAS "application") of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JaasSection {
    /// The section name (`Server`, `Client`, `QuorumServer`, ...).
    pub name: String,
    /// Its login module entries.
    pub modules: Vec<LoginModule>,
    /// 1-based line of the name.
    pub line: usize,
}

/// A parsed JAAS file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JaasConfig {
    /// Sections in file order. A repeated name adds entries to the first (as Java's does).
    pub sections: Vec<JaasSection>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, JaasError> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                loop {
                    match chars.next() {
                        None => {
                            return Err(JaasError::Syntax {
                                line: start,
                                message: "unterminated /* comment".into(),
                            })
                        }
                        Some('\n') => line += 1,
                        Some('*') if chars.peek() == Some(&'/') => {
                            chars.next();
                            break;
                        }
                        Some(_) => {}
                    }
                }
            }
            '"' | '\'' => {
                let start = line;
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(JaasError::Syntax {
                                line: start,
                                message: "unterminated quoted value".into(),
                            })
                        }
                        Some(q) if q == c => break,
                        Some('\\') => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(e) => {
                                if e == '\n' {
                                    line += 1;
                                }
                                value.push(e)
                            }
                            None => {}
                        },
                        Some(v) => {
                            if v == '\n' {
                                line += 1;
                            }
                            value.push(v)
                        }
                    }
                }
                out.push((Tok::Quoted(value), start));
            }
            '{' | '}' | ';' | '=' => out.push((Tok::Punct(c), line)),
            _ => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"' | '\'') {
                        break;
                    }
                    if n == '/' {
                        let mut look = chars.clone();
                        look.next();
                        if matches!(look.peek(), Some('/') | Some('*')) {
                            break;
                        }
                    }
                    word.push(n);
                    chars.next();
                }
                out.push((Tok::Word(word), line));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    last_line: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).map_or(self.last_line, |(_, l)| *l)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, JaasError> {
        Err(JaasError::Syntax { line: self.line(), message: message.into() })
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), JaasError> {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected '{c}' {what}"))
        }
    }

    fn word(&mut self, what: &str) -> Result<String, JaasError> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.err(format!("expected {what}")),
        }
    }
}

impl JaasConfig {
    /// Parses a JAAS file's text.
    pub fn parse(text: &str) -> Result<Self, JaasError> {
        let toks = tokenize(text)?;
        let last_line = text.lines().count().max(1);
        let mut p = Parser { toks, pos: 0, last_line };
        let mut config = JaasConfig::default();
        while p.peek().is_some() {
            let line = p.line();
            let name = p.word("a section name")?;
            p.expect('{', &format!("after section name '{name}'"))?;
            let mut modules = Vec::new();
            while p.peek() != Some(&Tok::Punct('}')) {
                if p.peek().is_none() {
                    return p.err(format!("section '{name}' is not closed with '}}'"));
                }
                modules.push(parse_module(&mut p)?);
            }
            p.expect('}', "")?;
            p.expect(';', &format!("after the '}}' closing section '{name}'"))?;
            if modules.is_empty() {
                return Err(JaasError::Syntax {
                    line,
                    message: format!("section '{name}' has no login module"),
                });
            }
            match config.sections.iter_mut().find(|s| s.name == name) {
                Some(existing) => existing.modules.extend(modules),
                None => config.sections.push(JaasSection { name, modules, line }),
            }
        }
        Ok(config)
    }

    /// Reads and parses a JAAS file.
    pub fn load(path: &Path) -> Result<Self, JaasError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JaasError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::parse(&text)
    }

    /// The section called `name`, if present.
    pub fn section(&self, name: &str) -> Option<&JaasSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// DIGEST-MD5 users (name → password) of the server section `name` (`Server`,
    /// `QuorumServer`): every `user_<name>` option of every entry.
    pub fn digest_users(&self, name: &str) -> Result<BTreeMap<String, String>, JaasError> {
        let section = self.section(name).ok_or_else(|| JaasError::MissingSection(name.into()))?;
        section.check_not_kerberos()?;
        let mut users = BTreeMap::new();
        for module in &section.modules {
            for (key, value) in &module.options {
                if let Some(user) = key.strip_prefix("user_") {
                    users.insert(user.to_string(), value.clone());
                }
            }
        }
        Ok(users)
    }

    /// `(username, password)` of the client section `name` (`Client`, `QuorumLearner`).
    pub fn digest_client(&self, name: &str) -> Result<(String, String), JaasError> {
        let section = self.section(name).ok_or_else(|| JaasError::MissingSection(name.into()))?;
        section.check_not_kerberos()?;
        section
            .modules
            .iter()
            .find_map(|m| {
                Some((m.options.get("username")?.clone(), m.options.get("password")?.clone()))
            })
            .ok_or_else(|| JaasError::NoClientCredentials(name.into()))
    }
}

impl JaasSection {
    /// Fails with [`JaasError::Gssapi`] when an entry is a Kerberos login module.
    pub fn check_not_kerberos(&self) -> Result<(), JaasError> {
        match self.modules.iter().find(|m| KERBEROS_MODULES.contains(&m.class.as_str())) {
            Some(m) => Err(JaasError::Gssapi {
                section: self.name.clone(),
                module: m.class.clone(),
                line: m.line,
            }),
            None => Ok(()),
        }
    }
}

fn parse_module(p: &mut Parser) -> Result<LoginModule, JaasError> {
    let line = p.line();
    let class = p.word("a login module class name")?;
    let flag = match p.next() {
        Some(Tok::Word(f)) => match f.to_ascii_lowercase().as_str() {
            "required" => ControlFlag::Required,
            "requisite" => ControlFlag::Requisite,
            "sufficient" => ControlFlag::Sufficient,
            "optional" => ControlFlag::Optional,
            _ => {
                p.pos -= 1;
                return p.err(format!(
                    "login module {class}: control flag must be required, requisite, \
                     sufficient or optional, got '{f}'"
                ));
            }
        },
        _ => {
            p.pos -= 1;
            return p.err(format!("login module {class}: expected a control flag"));
        }
    };
    let mut options = BTreeMap::new();
    loop {
        match p.peek() {
            Some(Tok::Punct(';')) => {
                p.pos += 1;
                break;
            }
            Some(Tok::Word(_)) => {
                let key = p.word("an option name")?;
                p.expect('=', &format!("after option '{key}'"))?;
                let value = match p.next() {
                    Some(Tok::Word(v)) | Some(Tok::Quoted(v)) => v,
                    _ => {
                        p.pos -= 1;
                        return p.err(format!("option '{key}' has no value"));
                    }
                };
                options.insert(key, value);
            }
            None => return p.err(format!("login module {class}: missing ';'")),
            _ => return p.err(format!("login module {class}: expected an option or ';'")),
        }
    }
    Ok(LoginModule { class, flag, options, line })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
// ZooKeeper server users
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="adminsecret"  /* the super user */
       user_bob="bob's \"pw\"";
};
Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password=plain;
};
QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_test="test"; };
QuorumLearner {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="test" password="test";
};
"#;

    #[test]
    fn parses_zookeeper_sections() {
        let c = JaasConfig::parse(SAMPLE).unwrap();
        let names: Vec<_> = c.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Server", "Client", "QuorumServer", "QuorumLearner"]);
        let server = c.section("Server").unwrap();
        assert_eq!(server.line, 3);
        assert_eq!(server.modules[0].class, DIGEST_LOGIN_MODULE);
        assert_eq!(server.modules[0].flag, ControlFlag::Required);
        let users = c.digest_users("Server").unwrap();
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob's \"pw\""));
        assert_eq!(c.digest_client("Client").unwrap(), ("bob".into(), "plain".into()));
        assert_eq!(c.digest_users("QuorumServer").unwrap().len(), 1);
        assert_eq!(c.digest_client("QuorumLearner").unwrap(), ("test".into(), "test".into()));
        assert_eq!(c.digest_users("Nope"), Err(JaasError::MissingSection("Nope".into())));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("Server {\n  M required\n  a=\"b\"\n};\nX", 4),
            ("Server {\n  M required\n  a=\"b\";\n};\nX", 5),
            ("Server {\n  M mandatory;\n};", 2),
            ("Server {\n  M required a=;\n};", 2),
            ("Server {\n  M required a=\"b\"\n", 2),
            ("Server {\n  M required;\n}\nClient", 4),
            ("Server {\n  M required;\n};\n/* open", 4),
            ("Server {\n};", 1),
        ];
        for (text, line) in cases {
            match JaasConfig::parse(text) {
                Err(JaasError::Syntax { line: l, message }) => {
                    assert_eq!(l, line, "{text:?}: {message}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn kerberos_is_a_clear_error() {
        let c = JaasConfig::parse(
            "Server {\n com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n};",
        )
        .unwrap();
        let e = c.digest_users("Server").unwrap_err();
        assert!(matches!(e, JaasError::Gssapi { line: 2, .. }));
        assert!(e.to_string().contains("GSSAPI"), "{e}");
    }

    #[test]
    fn client_section_needs_credentials() {
        let c = JaasConfig::parse("Client { M required username=a; };").unwrap();
        assert_eq!(c.digest_client("Client"), Err(JaasError::NoClientCredentials("Client".into())));
    }

    #[test]
    fn block_comment_with_stars_and_slashes() {
        let c = JaasConfig::parse("/* a * b / c **/ S { M optional /*x*/ k=v; };").unwrap();
        assert_eq!(c.sections[0].modules[0].flag, ControlFlag::Optional);
        assert_eq!(c.sections[0].modules[0].options.get("k").map(String::as_str), Some("v"));
    }
}
