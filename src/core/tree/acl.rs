//! ACL checks, ACL fix-up, and the `world`, `auth`, `digest`, `ip` and `super` schemes.
//!
//! ZK compat: `ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL`/`removeDuplicates`,
//! `DigestAuthenticationProvider`, `IPAuthenticationProvider`, the getACL masking of
//! `FinalRequestProcessor`, and `AuthUtil.getUser` (protocol reference §9). `digest` and `ip`
//! always have providers; `sasl` (`SASLAuthenticationProvider`) and `x509`
//! (`X509AuthenticationProvider`) only when [`AuthConfig::providers`] registers them, as
//! `authProvider.N` does: otherwise their ids are rejected by `fixup` and never match. Numbers are parsed as Java's `Integer.parseInt` does (optional sign, ASCII digits
//! only: Java would also accept other Unicode decimal digits, which no client sends).

use ::core::net::IpAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::core::auth::AuthConfig;
use crate::wire::types::{Acl, ErrorCode, Id};

/// Scheme names and the one `world` id.
pub mod schemes {
    /// Everyone; the only id is [`ANYONE`].
    pub const WORLD: &str = "world";
    /// The only valid `world` id.
    pub const ANYONE: &str = "anyone";
    /// "The ids I authenticated with": expanded by `fixup`, never stored.
    pub const AUTH: &str = "auth";
    /// `user:base64(sha1(user:password))`.
    pub const DIGEST: &str = "digest";
    /// An address, optionally with a prefix length.
    pub const IP: &str = "ip";
    /// The super user: bypasses every check.
    pub const SUPER: &str = "super";
    /// A SASL authorization id.
    pub const SASL: &str = "sasl";
    /// A client certificate's subject.
    pub const X509: &str = "x509";
}

use schemes::{ANYONE, AUTH, DIGEST, IP, SASL, SUPER, WORLD, X509};

/// Whether a caller holding `ids` may do something needing any bit of `needed` on a node with
/// `acl`. An empty ACL allows everything; any `super` id allows everything; otherwise an entry
/// with a needed bit must be `world:anyone`, or match one of the caller's ids of its scheme.
pub fn check(acl: &[Acl], needed: i32, ids: &[Id], skip_acl: bool, auth: &AuthConfig) -> bool {
    if skip_acl || acl.is_empty() || ids.iter().any(|id| id.scheme == SUPER) {
        return true;
    }
    acl.iter()
        .filter(|entry| entry.perms & needed != 0)
        .any(|entry| entry_matches(&entry.id, ids, auth))
}

/// Validates and expands a client's ACL for create or setACL.
///
/// Duplicates are dropped first (keeping the first occurrence). Then `world` must be `anyone`;
/// `auth` becomes one entry per authenticated id of the caller (digest ids; `ip` is not
/// authenticated) with the entry's permissions, and is invalid if there is none; `digest` ids
/// must split into exactly two parts on `:` as Java's `split` counts them; `ip` ids must parse.
/// Anything else (including an empty list) is `InvalidAcl`. Permission bits are not validated.
pub fn fixup(requested: &[Acl], ids: &[Id], auth: &AuthConfig) -> Result<Vec<Acl>, ErrorCode> {
    // ZK compat: removeDuplicates compares with List.contains; a set keeps this linear-ish on
    // a hostile list of thousands of entries while keeping the first-occurrence order.
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<&Acl> = requested.iter().filter(|acl| seen.insert(*acl)).collect();
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for acl in unique {
        match acl.id.scheme.as_str() {
            WORLD if acl.id.id == ANYONE => fixed.push(acl.clone()),
            AUTH => {
                let before = fixed.len();
                let authenticated =
                    ids.iter().filter(|id| is_authenticated_scheme(&id.scheme, auth));
                fixed.extend(authenticated.map(|id| Acl { perms: acl.perms, id: id.clone() }));
                if fixed.len() == before {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            DIGEST if is_valid_digest_id(&acl.id.id) => fixed.push(acl.clone()),
            IP if is_valid_ip_id(&acl.id.id) => fixed.push(acl.clone()),
            SASL if auth.providers.sasl && is_valid_kerberos_name(&acl.id.id) => {
                fixed.push(acl.clone())
            }
            X509 if auth.providers.x509 && !acl.id.id.is_empty() => fixed.push(acl.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    Ok(fixed)
}

/// The digest id of `user` with `password`: `user:` + base64(sha1("user:password")).
///
/// ZK compat: `DigestAuthenticationProvider.generateDigest("user:password")`, which keeps only
/// the text before the first `:` as the user, so a user name containing `:` is cut there.
pub fn digest_id(user: &str, password: &str) -> String {
    credentials_digest(&format!("{user}:{password}"))
}

/// The `digest` id an `auth` packet with scheme `digest` and these bytes yields.
///
/// Always `Some`: ZooKeeper's digest provider accepts any credentials (the password is only
/// checked when the id meets an ACL). The bytes are decoded as UTF-8 with replacement, as Java's
/// `new String(bytes)` does. The `Option` is the provider contract (`AuthFailed` on `None`).
pub fn parse_digest_auth(auth_data: &[u8]) -> Option<Id> {
    let credentials = String::from_utf8_lossy(auth_data);
    Some(Id::new(DIGEST, &credentials_digest(&credentials)))
}

/// Every id a `digest` auth packet adds to the connection: `super:""` first when the digest
/// equals the configured super digest, then the digest id itself.
pub fn digest_auth_ids(auth_data: &[u8], super_digest: Option<&str>) -> Vec<Id> {
    let Some(digest) = parse_digest_auth(auth_data) else {
        return Vec::new();
    };
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(digest.id.as_str()) {
        ids.push(Id::new(SUPER, ""));
    }
    ids.push(digest);
    ids
}

/// The ACL a getACL caller without ADMIN sees: every `digest` id masked from its first `:` to the
/// end of the line as `:x` (ZK compat: `id.replaceAll(":.*", ":x")`).
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|entry| {
            if entry.id.scheme != DIGEST {
                return entry.clone();
            }
            Acl {
                perms: entry.perms,
                id: Id { scheme: DIGEST.to_string(), id: mask(&entry.id.id) },
            }
        })
        .collect()
}

/// The user name whoAmI reports for `id`: the part of a `digest` id before the first `:`, the
/// address of an `ip` id, and `None` for schemes without a provider (such as `super`).
/// ZK compat: `AuthUtil.getUser`.
pub fn user_name(id: &Id) -> Option<&str> {
    match id.scheme.as_str() {
        DIGEST => Some(id.id.split(':').next().unwrap_or("")),
        IP => Some(id.id.as_str()),
        _ => None,
    }
}

/// Whether `id` is a well-formed `ip` ACL id: an IPv4 or IPv6 address, optionally followed by
/// `/bits` with bits within the address length. ZK compat: `IPAuthenticationProvider.isValid`.
pub fn is_valid_ip_id(id: &str) -> bool {
    parse_ip_expr(id).is_some()
}

/// Whether `id` is a well-formed `digest` ACL id. ZK compat: `DigestAuthenticationProvider.isValid`
/// (`id.split(":").length == 2`, where Java drops trailing empty parts: `a:b:` is valid,
/// `a:` and `a::b` are not).
pub fn is_valid_digest_id(id: &str) -> bool {
    java_split_len(id, ':') == 2
}

/// Whether `id` is a valid `sasl` ACL id. ZK compat: `SASLAuthenticationProvider.isValid`
/// accepts what `KerberosName` parses: a name without `@`, or `service[/host]@REALM` with no
/// further `/` or `@`.
pub fn is_valid_kerberos_name(id: &str) -> bool {
    let Some((before, realm)) = id.split_once('@') else {
        return true;
    };
    let (service, host) = before.split_once('/').unwrap_or((before, ""));
    ![service, host, realm].iter().any(|part| part.contains(['/', '@']))
}

/// Whether the ACL entry id matches one of the caller's ids.
fn entry_matches(acl_id: &Id, ids: &[Id], auth: &AuthConfig) -> bool {
    let of = |scheme: &'static str| ids.iter().filter(move |id| id.scheme == scheme);
    match acl_id.scheme.as_str() {
        WORLD => acl_id.id == ANYONE,
        DIGEST => of(DIGEST).any(|id| id.id == acl_id.id),
        IP => of(IP).any(|id| ip_matches(&id.id, &acl_id.id)),
        // ZK compat: `SASLAuthenticationProvider.matches`: a SASL user called `super` matches
        // every `sasl` entry, and `zookeeper.letAnySaslUserDoX` names an entry every SASL
        // user matches.
        SASL if auth.providers.sasl => of(SASL).any(|id| {
            id.id == "super"
                || id.id == acl_id.id
                || auth.let_any_sasl_user.as_deref() == Some(acl_id.id.as_str())
        }),
        X509 if auth.providers.x509 => of(X509).any(|id| id.id == acl_id.id),
        _ => false,
    }
}

/// Whether ids of `scheme` come from a registered provider that authenticates (expanded by
/// `auth`). ZK compat: `isAuthenticated()` is true for digest, sasl and x509, false for ip.
fn is_authenticated_scheme(scheme: &str, auth: &AuthConfig) -> bool {
    match scheme {
        DIGEST => true,
        SASL => auth.providers.sasl,
        X509 => auth.providers.x509,
        _ => false,
    }
}

/// ZK compat: `generateDigest`: the text before the first `:` (or all of it), `:`, and the
/// base64 of the SHA-1 of the whole string.
fn credentials_digest(credentials: &str) -> String {
    let user = credentials.split(':').next().unwrap_or("");
    let hash = Sha1::digest(credentials.as_bytes());
    format!("{user}:{}", BASE64.encode(hash))
}

/// Java's `s.split(String.valueOf(sep)).length`: the empty string is one part, and trailing empty
/// parts are dropped.
fn java_split_len(s: &str, sep: char) -> usize {
    if s.is_empty() {
        return 1;
    }
    let parts: Vec<&str> = s.split(sep).collect();
    parts.iter().rposition(|part| !part.is_empty()).map_or(0, |last| last + 1)
}

/// `replaceAll(":.*", ":x")`: `.` does not match Java's line terminators.
fn mask(id: &str) -> String {
    let mut masked = String::with_capacity(id.len());
    let mut rest = id;
    while let Some(colon) = rest.find(':') {
        masked.push_str(&rest[..colon]);
        masked.push_str(":x");
        let after = &rest[colon + 1..];
        let line_end = after.find(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']);
        rest = &after[line_end.unwrap_or(after.len())..];
    }
    masked.push_str(rest);
    masked
}

/// An address as ZooKeeper's IP provider sees it: 4 or 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IpBytes {
    bytes: [u8; 16],
    len: usize,
}

impl IpBytes {
    /// Clears every bit after the first `bits`. ZK compat: `IPAuthenticationProvider.mask`.
    fn mask(mut self, bits: usize) -> IpBytes {
        let start = bits / 8;
        if start < self.len {
            self.bytes[start] &= !(0xFF_u8 >> (bits % 8));
            self.bytes[start + 1..self.len].fill(0);
        }
        self
    }
}

/// Parses `address[/bits]`, returning the masked address and the prefix length.
fn parse_ip_expr(expr: &str) -> Option<(IpBytes, usize)> {
    let (address, bits) = match expr.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (expr, None),
    };
    let address = parse_ip(address)?;
    let bits = match bits {
        None => address.len * 8,
        Some(bits) => usize::try_from(java_parse_int(bits, 10)?).ok()?,
    };
    (bits <= address.len * 8).then(|| (address.mask(bits), bits))
}

/// Whether the connection's `ip` id `remote` falls in the ACL's `address[/bits]`.
/// ZK compat: `IPAuthenticationProvider.matches`.
fn ip_matches(remote: &str, acl_expr: &str) -> bool {
    let Some((acl_address, bits)) = parse_ip_expr(acl_expr) else {
        return false;
    };
    // A remote id the Java parser rejects may still be a standard address (an IPv4-mapped IPv6
    // address such as `::ffff:10.0.0.1`, which Java would have reported as `10.0.0.1`).
    let remote = parse_ip(remote).or_else(|| {
        let canonical = remote.parse::<IpAddr>().ok()?.to_canonical();
        Some(match canonical {
            IpAddr::V4(v4) => ip_bytes(&v4.octets()),
            IpAddr::V6(v6) => ip_bytes(&v6.octets()),
        })
    });
    remote.is_some_and(|remote| remote.len == acl_address.len && remote.mask(bits) == acl_address)
}

fn ip_bytes(octets: &[u8]) -> IpBytes {
    let mut bytes = [0; 16];
    bytes[..octets.len()].copy_from_slice(octets);
    IpBytes { bytes, len: octets.len() }
}

/// ZK compat: `addr2Bytes`: IPv6 if it contains `:`, else IPv4 if it contains `.`.
fn parse_ip(address: &str) -> Option<IpBytes> {
    if address.contains(':') {
        parse_v6(address)
    } else if address.contains('.') {
        parse_v4(address)
    } else {
        None
    }
}

/// ZK compat: `v4addr2Bytes`: four `Integer.parseInt` parts in 0..=255.
fn parse_v4(address: &str) -> Option<IpBytes> {
    let mut octets = [0u8; 4];
    let mut parts = address.split('.');
    for octet in &mut octets {
        *octet = u8::try_from(java_parse_int(parts.next()?, 10)?).ok()?;
    }
    parts.next().is_none().then(|| ip_bytes(&octets))
}

/// ZK compat: `parseV6addr`: at most one `::`, up to 4 hex digits (`Integer.parseInt(s, 16)`)
/// per segment, no embedded IPv4.
fn parse_v6(address: &str) -> Option<IpBytes> {
    let halves: Vec<&str> = address.split("::").collect();
    let (head, tail): (Vec<&str>, Vec<&str>) = match halves.as_slice() {
        [whole] => {
            let head: Vec<&str> = whole.split(':').collect();
            if head.len() != 8 {
                return None;
            }
            (head, Vec::new())
        }
        [first, second] => {
            let (head, tail) = (v6_segments(first), v6_segments(second));
            if head.len() + tail.len() >= 8 {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut bytes = [0u8; 16];
    let tail_start = 16 - 2 * tail.len();
    for (start, segments) in [(0, &head), (tail_start, &tail)] {
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() || segment.chars().count() > 4 {
                return None;
            }
            let value = java_parse_int(segment, 16)?;
            bytes[start + 2 * i] = (value >> 8) as u8;
            bytes[start + 2 * i + 1] = value as u8;
        }
    }
    Some(IpBytes { bytes, len: 16 })
}

/// The `:`-separated segments on one side of `::` (none if that side is empty).
fn v6_segments(half: &str) -> Vec<&str> {
    match half.is_empty() {
        true => Vec::new(),
        false => half.split(':').collect(),
    }
}

/// Java's `Integer.parseInt(s, radix)` for ASCII digits: an optional `+` or `-`, at least one
/// digit, and a value that fits in an `i32`.
fn java_parse_int(s: &str, radix: u32) -> Option<i32> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars() {
        value = value * i64::from(radix) + i64::from(c.to_digit(radix)?);
        if value > 1 << 31 {
            return None;
        }
    }
    i32::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The checks without optional providers (a default ZooKeeper).
    fn check(acl: &[Acl], needed: i32, ids: &[Id], skip_acl: bool) -> bool {
        super::check(acl, needed, ids, skip_acl, &AuthConfig::default())
    }

    fn fixup(requested: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
        super::fixup(requested, ids, &AuthConfig::default())
    }

    fn with_sasl() -> AuthConfig {
        let mut auth = AuthConfig::default();
        auth.providers.sasl = true;
        auth
    }

    #[test]
    fn sasl_scheme_needs_its_provider() {
        let bob = ids(&[("ip", "127.0.0.1"), ("sasl", "bob")]);
        let only_bob = vec![acl(perms::ALL, "sasl", "bob")];
        assert_eq!(fixup(&only_bob, &bob), Err(ErrorCode::InvalidAcl));
        assert!(!check(&only_bob, perms::READ, &bob, false));
        let auth = with_sasl();
        assert_eq!(super::fixup(&only_bob, &bob, &auth), Ok(only_bob.clone()));
        assert!(super::check(&only_bob, perms::READ, &bob, false, &auth));
        let eve = ids(&[("sasl", "eve")]);
        assert!(!super::check(&only_bob, perms::READ, &eve, false, &auth));
        // A SASL user called super matches every sasl entry.
        assert!(super::check(&only_bob, perms::READ, &ids(&[("sasl", "super")]), false, &auth));
        // `auth` expands to the sasl id once the provider is registered.
        let expanded = super::fixup(&[acl(perms::READ, "auth", "")], &bob, &auth);
        assert_eq!(expanded, Ok(vec![acl(perms::READ, "sasl", "bob")]));
        assert_eq!(fixup(&[acl(perms::READ, "auth", "")], &bob), Err(ErrorCode::InvalidAcl));
        // letAnySaslUserDoX.
        let mut any = with_sasl();
        any.let_any_sasl_user = Some("anyone-sasl".into());
        let shared = vec![acl(perms::READ, "sasl", "anyone-sasl")];
        assert!(super::check(&shared, perms::READ, &eve, false, &any));
        assert!(!super::check(&shared, perms::READ, &eve, false, &auth));
    }

    #[test]
    fn kerberos_name_validity() {
        for valid in ["bob", "zk/host@REALM", "zk@REALM", "a/b/c"] {
            assert!(is_valid_kerberos_name(valid), "{valid}");
        }
        for invalid in ["a@b@c", "a/b/c@R"] {
            assert!(!is_valid_kerberos_name(invalid), "{invalid}");
        }
        let auth = with_sasl();
        let bad = vec![acl(perms::ALL, "sasl", "a@b@c")];
        assert_eq!(super::fixup(&bad, &[], &auth), Err(ErrorCode::InvalidAcl));
    }
    use crate::wire::types::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id::new(scheme, id) }
    }

    fn ids(list: &[(&str, &str)]) -> Vec<Id> {
        list.iter().map(|(scheme, id)| Id::new(scheme, id)).collect()
    }

    #[test]
    fn digest_vectors() {
        assert_eq!(digest_id("super", "test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        // `echo -n user:password | openssl sha1 -binary | base64`
        assert_eq!(digest_id("user", "password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
        assert_eq!(
            parse_digest_auth(b"super:test"),
            Some(Id::new("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU="))
        );
        // No colon: the whole string is the user, and the hash covers it.
        let id = parse_digest_auth(b"alone").expect("digest auth always yields an id");
        assert!(id.id.starts_with("alone:"), "{}", id.id);
        assert_ne!(id.id, digest_id("alone", ""));
        // A user containing ':' is cut at the first ':' (ZK compat).
        assert!(digest_id("a:b", "c").starts_with("a:"));
    }

    #[test]
    fn digest_auth_adds_super_first_when_configured() {
        let super_digest = digest_id("super", "test");
        let granted = digest_auth_ids(b"super:test", Some(&super_digest));
        assert_eq!(granted, ids(&[("super", ""), ("digest", &super_digest)]));
        let granted = digest_auth_ids(b"super:wrong", Some(&super_digest));
        assert_eq!(granted.len(), 1);
        assert_eq!(granted[0].scheme, "digest");
        assert_eq!(digest_auth_ids(b"super:test", None).len(), 1);
    }

    #[test]
    fn check_rules() {
        let open = Acl::open_unsafe();
        let alice = digest_id("alice", "pw");
        let alice_only = vec![acl(perms::READ | perms::WRITE, "digest", &alice)];
        let anonymous = ids(&[("ip", "127.0.0.1")]);
        let as_alice = ids(&[("ip", "127.0.0.1"), ("digest", &alice)]);
        let as_super = ids(&[("super", "")]);

        assert!(check(&[], perms::ALL, &anonymous, false), "empty ACL allows");
        assert!(check(&open, perms::ADMIN, &anonymous, false));
        assert!(!check(&alice_only, perms::READ, &anonymous, false));
        assert!(check(&alice_only, perms::READ, &as_alice, false));
        assert!(check(&alice_only, perms::WRITE, &as_alice, false));
        assert!(!check(&alice_only, perms::DELETE, &as_alice, false), "bit not granted");
        assert!(check(&alice_only, perms::READ | perms::ADMIN, &as_alice, false), "any bit");
        assert!(check(&alice_only, perms::DELETE, &as_super, false), "super bypasses");
        assert!(check(&alice_only, perms::DELETE, &anonymous, true), "skipACL");
        // Same id under another scheme does not match.
        assert!(!check(&alice_only, perms::READ, &ids(&[("ip", &alice)]), false));
        // Stored `auth`, `world:other`, `super` entries never match.
        let odd = vec![
            acl(perms::ALL, "auth", ""),
            acl(perms::ALL, "world", "nobody"),
            acl(perms::ALL, "super", ""),
        ];
        let tricky = ids(&[("auth", ""), ("world", "nobody")]);
        assert!(!check(&odd, perms::READ, &tricky, false));
        // A read-only world ACL does not grant write.
        assert!(!check(&Acl::read_unsafe(), perms::WRITE, &anonymous, false));
    }

    #[test]
    fn ip_matching() {
        let cases = [
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("10.1.2.3", "10.0.0.0/8", true),
            ("11.1.2.3", "10.0.0.0/8", false),
            ("10.1.2.3", "10.1.2.0/24", true),
            ("10.1.3.3", "10.1.2.0/24", false),
            ("10.1.2.3", "10.1.2.2/31", true),
            ("10.1.2.4", "10.1.2.2/31", false),
            ("10.1.2.3", "0.0.0.0/0", true),
            ("10.1.2.3", "10.1.2.3/32", true),
            ("10.1.2.3", "10.1.2.3/33", false),
            ("10.1.2.3", "10.1.2.3/-1", false),
            ("10.1.2.3", "10.1.2.3/x", false),
            ("10.1.2.3", "010.001.2.3", true),
            ("10.1.2.3", "::1", false),
            ("::1", "::1", true),
            ("0:0:0:0:0:0:0:1", "::1", true),
            ("::1", "::/0", true),
            ("fe80::1:2", "fe80::/16", true),
            ("fe81::1:2", "fe80::/16", false),
            ("2001:db8::5", "2001:db8::/32", true),
            ("2001:db9::5", "2001:db8::/32", false),
            ("2001:db8::5", "2001:db8::/129", false),
            // A mapped address from the socket layer is treated as the IPv4 it carries.
            ("::ffff:10.1.2.3", "10.0.0.0/8", true),
            ("garbage", "10.0.0.0/8", false),
            ("10.1.2.3", "garbage", false),
        ];
        for (remote, expr, expected) in cases {
            assert_eq!(ip_matches(remote, expr), expected, "{remote} vs {expr}");
            let acl = vec![acl(perms::READ, "ip", expr)];
            assert_eq!(check(&acl, perms::READ, &ids(&[("ip", remote)]), false), expected);
        }
    }

    #[test]
    fn ip_validity() {
        for valid in [
            "1.2.3.4",
            "1.2.3.4/0",
            "1.2.3.4/32",
            "+1.-0.3.4",
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8/128",
            "1::8/64",
            "ffff::",
        ] {
            assert!(is_valid_ip_id(valid), "{valid}");
        }
        for invalid in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.256",
            "1.2.3.-1",
            "1.2.3.",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/a",
            "host",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "1:2:3:4::5:6:7:8",
            "12345::",
            "g::",
            "::ffff:1.2.3.4",
            ":::",
            "::1/129",
            "fe80::1%eth0",
        ] {
            assert!(!is_valid_ip_id(invalid), "{invalid}");
        }
    }

    #[test]
    fn digest_id_validity() {
        for valid in ["a:b", ":b", "a:b:", "a:b::"] {
            assert!(is_valid_digest_id(valid), "{valid}");
        }
        for invalid in ["", "a", "a:", ":", "::", "a::b", "a:b:c"] {
            assert!(!is_valid_digest_id(invalid), "{invalid}");
        }
    }

    #[test]
    fn fixup_rules() {
        let alice = digest_id("alice", "pw");
        let bob = digest_id("bob", "pw");
        let caller =
            ids(&[("ip", "127.0.0.1"), ("digest", &alice), ("super", ""), ("digest", &bob)]);

        assert_eq!(fixup(&[], &caller), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&Acl::open_unsafe(), &caller), Ok(Acl::open_unsafe()));
        let invalid = [
            acl(perms::ALL, "world", "someone"),
            acl(perms::ALL, "digest", "nocolon"),
            acl(perms::ALL, "ip", "300.1.1.1"),
            acl(perms::ALL, "super", ""),
            acl(perms::ALL, "sasl", "user"),
            acl(perms::ALL, "WORLD", "anyone"),
        ];
        for entry in invalid {
            let list = vec![acl(perms::READ, "world", "anyone"), entry.clone()];
            assert_eq!(fixup(&list, &caller), Err(ErrorCode::InvalidAcl), "{entry:?}");
        }
        // `auth` expands into every digest id (not ip, not super), keeping perms.
        let expanded = fixup(&[acl(perms::READ | perms::ADMIN, "auth", "ignored")], &caller);
        assert_eq!(
            expanded,
            Ok(vec![acl(perms::READ | perms::ADMIN, "digest", &alice), acl(17, "digest", &bob)])
        );
        // `auth` without an authenticated id is invalid.
        let anonymous = ids(&[("ip", "127.0.0.1")]);
        assert_eq!(fixup(&[acl(perms::ALL, "auth", "")], &anonymous), Err(ErrorCode::InvalidAcl));
        // Duplicates of the input collapse, first occurrence first; perms are not validated.
        let list = vec![
            acl(999, "ip", "10.0.0.0/8"),
            acl(perms::READ, "world", "anyone"),
            acl(999, "ip", "10.0.0.0/8"),
            acl(perms::READ, "digest", &bob),
        ];
        assert_eq!(
            fixup(&list, &caller),
            Ok(vec![list[0].clone(), list[1].clone(), list[3].clone()])
        );
    }

    #[test]
    fn masking_for_readers_without_admin() {
        let list = vec![
            acl(perms::READ, "digest", "alice:abcdef="),
            acl(perms::READ, "ip", "10.0.0.1"),
            acl(perms::READ, "digest", "bob:x:y"),
            acl(perms::READ, "digest", "a:b\nc:d"),
            acl(perms::READ, "digest", "nocolon"),
        ];
        let masked: Vec<String> = mask_digests(&list).into_iter().map(|a| a.id.id).collect();
        assert_eq!(masked, ["alice:x", "10.0.0.1", "bob:x", "a:x\nc:x", "nocolon"]);
    }

    #[test]
    fn user_names() {
        assert_eq!(user_name(&Id::new("digest", "alice:xyz=")), Some("alice"));
        assert_eq!(user_name(&Id::new("ip", "10.0.0.1")), Some("10.0.0.1"));
        assert_eq!(user_name(&Id::new("super", "")), None);
    }

    #[test]
    fn java_int_parsing() {
        assert_eq!(java_parse_int("0", 10), Some(0));
        assert_eq!(java_parse_int("-0", 10), Some(0));
        assert_eq!(java_parse_int("+17", 10), Some(17));
        assert_eq!(java_parse_int("2147483647", 10), Some(i32::MAX));
        assert_eq!(java_parse_int("-2147483648", 10), Some(i32::MIN));
        assert_eq!(java_parse_int("2147483648", 10), None);
        assert_eq!(java_parse_int("99999999999999999999", 10), None);
        assert_eq!(java_parse_int("", 10), None);
        assert_eq!(java_parse_int("-", 10), None);
        assert_eq!(java_parse_int("1 ", 10), None);
        assert_eq!(java_parse_int("fF", 16), Some(255));
        assert_eq!(java_parse_int("-1", 16), Some(-1));
    }

    proptest! {
        #[test]
        fn ipv4_prefix_matches_like_integer_math(
            remote in any::<u32>(), network in any::<u32>(), bits in 0u32..=32,
        ) {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            let expected = remote & mask == network & mask;
            let dotted = |v: u32| {
                let o = v.to_be_bytes();
                format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
            };
            let expr = format!("{}/{bits}", dotted(network));
            prop_assert_eq!(ip_matches(&dotted(remote), &expr), expected);
        }

        #[test]
        fn ipv6_parse_agrees_with_std_on_plain_forms(octets in any::<[u8; 16]>()) {
            let address = ::core::net::Ipv6Addr::from(octets);
            // std prints the compressed form unless it embeds IPv4, which ZooKeeper rejects.
            let text = address.to_string();
            if !text.contains('.') {
                prop_assert_eq!(parse_v6(&text), Some(ip_bytes(&octets)), "{}", text);
            }
        }

        #[test]
        fn never_panics_on_junk(expr in "\\PC{0,24}", remote in "\\PC{0,24}") {
            let _ = ip_matches(&remote, &expr);
            let _ = is_valid_ip_id(&expr);
            let _ = mask(&expr);
        }
    }
}
