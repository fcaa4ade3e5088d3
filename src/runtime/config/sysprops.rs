//! Java system properties as ZooKeeper would see them: the `-Dkey=value` flags that
//! `zkServer.sh` passes to the JVM from `SERVER_JVMFLAGS` and `JVMFLAGS`, which operators set in
//! the environment or in `java.env` / `zookeeper-env.sh` beside `zoo.cfg` (sourced by
//! `zkEnv.sh`).
//!
//! ZK compat: `zkServer.sh` runs `java ... $JVMFLAGS` with `JVMFLAGS="$SERVER_JVMFLAGS
//! $JVMFLAGS"`, unquoted, so the value is split on blanks without quote removal, and a later
//! `-D` of the same key wins. The files are read, not run: assignments (optionally `export`ed)
//! to `SERVER_JVMFLAGS` and `JVMFLAGS` are taken with shell quoting and `$VAR`/`${VAR}`
//! expansion; any other line is ignored with a note.
//!
//! How the properties reach the configuration: `zookeeper.<key>` and `jute.maxbuffer` are
//! applied before `zoo.cfg`, so a `zoo.cfg` line wins, as it does in ZooKeeper where
//! `QuorumPeerConfig` turns an unknown `key` into `System.setProperty("zookeeper." + key)` over
//! the JVM's value. `java.security.auth.login.config` names the JAAS file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The variables whose `-D` flags become system properties, in the order `zkServer.sh` joins
/// them (later wins).
pub const FLAG_VARIABLES: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// Files in the configuration directory that `zkEnv.sh` sources, in its order.
pub const ENV_FILES: [&str; 2] = ["zookeeper-env.sh", "java.env"];

/// One system property and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemProperty {
    /// The value (empty for a bare `-Dkey`).
    pub value: String,
    /// Where it came from, for the startup log (`SERVER_JVMFLAGS`, `java.env line 3`, ...).
    pub origin: String,
}

/// The system properties the server runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemProperties {
    entries: BTreeMap<String, SystemProperty>,
    /// Lines of the env files that were not understood (logged at startup).
    pub notes: Vec<String>,
}

impl SystemProperties {
    /// Reads `SERVER_JVMFLAGS` and `JVMFLAGS` from the process environment, as overridden by
    /// `zookeeper-env.sh` and `java.env` in `config_dir` when present.
    pub fn from_environment(config_dir: Option<&Path>) -> Result<SystemProperties, String> {
        let mut files = Vec::new();
        if let Some(dir) = config_dir {
            for name in ENV_FILES {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => files.push((path, text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
        }
        Ok(Self::gather(&|name| std::env::var(name).ok(), &files))
    }

    /// Pure form of [`SystemProperties::from_environment`]: `env` looks up variables, `files`
    /// are the env files' paths and texts in sourcing order.
    pub fn gather(env: &dyn Fn(&str) -> Option<String>, files: &[(PathBuf, String)]) -> Self {
        // Each variable's value and where its last assignment was.
        let mut vars: BTreeMap<&str, (String, String)> = BTreeMap::new();
        for name in FLAG_VARIABLES {
            if let Some(value) = env(name) {
                vars.insert(name, (value, format!("${name}")));
            }
        }
        let mut notes = Vec::new();
        for (path, text) in files {
            let file = path
                .file_name()
                .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            for (index, raw) in text.lines().enumerate() {
                let line = raw.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let assignment = line.strip_prefix("export ").map_or(line, str::trim_start);
                let Some((name, rest)) = assignment.split_once('=') else {
                    if !assignment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        notes
                            .push(format!("{file} line {}: not an assignment; ignored", index + 1));
                    }
                    continue;
                };
                let Some(var) = FLAG_VARIABLES.iter().find(|v| **v == name) else {
                    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        notes
                            .push(format!("{file} line {}: not an assignment; ignored", index + 1));
                    }
                    continue;
                };
                let lookup =
                    |v: &str| vars.get(v).map(|(value, _)| value.clone()).or_else(|| env(v));
                match shell_value(rest, &lookup) {
                    Some(value) => {
                        vars.insert(var, (value, format!("{file} line {}", index + 1)));
                    }
                    None => notes.push(format!(
                        "{file} line {}: cannot read the value of {var} (unbalanced quotes?); \
                         ignored",
                        index + 1
                    )),
                }
            }
        }
        let mut entries = BTreeMap::new();
        for name in FLAG_VARIABLES {
            let Some((value, origin)) = vars.get(name) else { continue };
            for word in value.split_ascii_whitespace() {
                if let Some(flag) = word.strip_prefix("-D") {
                    let (key, value) = flag.split_once('=').unwrap_or((flag, ""));
                    if key.is_empty() {
                        continue;
                    }
                    let origin = if origin.starts_with('$') {
                        name.to_string()
                    } else {
                        format!("{name} in {origin}")
                    };
                    entries.insert(key.to_string(), SystemProperty { value: value.into(), origin });
                }
            }
        }
        SystemProperties { entries, notes }
    }

    /// Sets a property (tests; and `zoo.cfg`'s `java.security.auth.login.config` line).
    pub fn insert(&mut self, key: &str, value: &str, origin: &str) {
        self.entries.insert(
            key.to_string(),
            SystemProperty { value: value.to_string(), origin: origin.to_string() },
        );
    }

    /// The property `key`.
    pub fn get(&self, key: &str) -> Option<&SystemProperty> {
        self.entries.get(key)
    }

    /// Every property, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SystemProperty)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// The value of a shell assignment's right-hand side: quotes removed, `$VAR` and `${VAR}`
/// expanded (not inside single quotes), a trailing ` # comment` dropped. `None` on an
/// unbalanced quote.
fn shell_value(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut in_double = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' if !in_double => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => in_double = !in_double,
            '\\' => {
                if let Some(n) = chars.next() {
                    if in_double && !matches!(n, '"' | '\\' | '$' | '`') {
                        out.push('\\');
                    }
                    out.push(n);
                }
            }
            '$' => {
                let name: String = if chars.peek() == Some(&'{') {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next()? {
                            '}' => break,
                            c => name.push(c),
                        }
                    }
                    name
                } else {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if !(n.is_ascii_alphanumeric() || n == '_') {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    if name.is_empty() {
                        out.push('$');
                        continue;
                    }
                    name
                };
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            c if c.is_whitespace() && !in_double => {
                // An unquoted blank ends the assignment (what follows is a command or comment).
                break;
            }
            c => out.push(c),
        }
    }
    (!in_double).then_some(out)
}

/// Applies the properties that configure the server to `draft` (before `zoo.cfg`, which
/// wins) and returns the startup log lines saying which were taken from where.
pub(super) fn apply(
    draft: &mut super::Draft,
    system: &SystemProperties,
) -> Result<Vec<String>, super::ConfigError> {
    let mut log = Vec::new();
    for (key, property) in system.iter() {
        let origin = &property.origin;
        let used = key.starts_with("zookeeper.")
            || key == "jute.maxbuffer"
            || key == super::auth::JAAS_KEY;
        if !used {
            log.push(format!("system property {key} from {origin}: not used by Ensemble"));
            continue;
        }
        let p = super::properties::Property {
            key: key.to_string(),
            value: property.value.clone(),
            line: 0,
        };
        let warnings_before = draft.warnings.len();
        draft.sysprop_origin = Some(origin.clone());
        let applied = draft.apply_system_property(&p);
        draft.sysprop_origin = None;
        applied.map_err(|e| super::ConfigError::SystemProperty {
            origin: origin.clone(),
            message: e.to_string().trim_start_matches("line 0: ").to_string(),
        })?;
        for warning in &mut draft.warnings[warnings_before..] {
            let rest = warning.trim_start_matches("line 0: ").to_string();
            *warning = format!("-D{key} from {origin}: {rest}");
        }
        let shown = if key.to_ascii_lowercase().contains("password") {
            "********"
        } else {
            property.value.as_str()
        };
        log.push(format!("system property {key}={shown} from {origin}"));
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn flags_from_the_environment_later_wins() {
        let p = SystemProperties::gather(
            &env(&[
                ("SERVER_JVMFLAGS", "-Xmx1g -Dzookeeper.snapCount=5 -Da=1 -Dbare"),
                ("JVMFLAGS", "-Da=2 -Djava.security.auth.login.config=/etc/jaas.conf"),
            ]),
            &[],
        );
        assert_eq!(p.get("zookeeper.snapCount").unwrap().value, "5");
        assert_eq!(p.get("zookeeper.snapCount").unwrap().origin, "SERVER_JVMFLAGS");
        assert_eq!(p.get("a").unwrap().value, "2");
        assert_eq!(p.get("bare").unwrap().value, "");
        assert_eq!(p.get("java.security.auth.login.config").unwrap().origin, "JVMFLAGS");
        assert!(p.get("Xmx1g").is_none());
    }

    #[test]
    fn java_env_assignments_override_and_expand() {
        let java_env = r#"
# ZooKeeper JVM settings
export SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Djava.security.auth.login.config=/conf/jaas.conf"
JVMFLAGS='-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider'
JVMFLAGS="${JVMFLAGS} -Dzookeeper.superUser=admin" # trailing comment
if [ -x /bin/true ]; then
OTHER=1
"#;
        let p = SystemProperties::gather(
            &env(&[("SERVER_JVMFLAGS", "-Dfrom.env=yes"), ("JVMFLAGS", "-Dlost=1")]),
            &[(PathBuf::from("/conf/java.env"), java_env.to_string())],
        );
        assert_eq!(p.get("from.env").unwrap().value, "yes");
        assert_eq!(p.get("java.security.auth.login.config").unwrap().value, "/conf/jaas.conf");
        assert_eq!(
            p.get("java.security.auth.login.config").unwrap().origin,
            "SERVER_JVMFLAGS in java.env line 3"
        );
        assert_eq!(p.get("zookeeper.superUser").unwrap().value, "admin");
        assert!(p.get("zookeeper.authProvider.1").is_some());
        // java.env replaced JVMFLAGS without referring to it.
        assert!(p.get("lost").is_none());
        assert_eq!(p.notes, ["java.env line 6: not an assignment; ignored"]);
    }

    #[test]
    fn unbalanced_quotes_are_noted() {
        let p = SystemProperties::gather(
            &env(&[]),
            &[(PathBuf::from("java.env"), "JVMFLAGS=\"-Da=1\n".to_string())],
        );
        assert!(p.get("a").is_none());
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    }
}
