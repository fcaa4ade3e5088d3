//! The `sasl` request, the `sasl` ACL scheme and `enforce.auth`, driven through one node.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::core::auth::digest_md5::{DigestMd5Client, CLIENT_SERVER_NAME, CLIENT_SERVICE};
use crate::core::auth::{AuthConfig, Providers, SaslServerConfig};
use crate::wire::types::{perms, Id, OpCode};

fn sasl_config(auth: AuthConfig) -> NodeConfig {
    NodeConfig { tick_time_ms: 100, session_timeout_min_ms: 200, auth, ..NodeConfig::standalone() }
}

fn users() -> AuthConfig {
    let mut users = std::collections::BTreeMap::new();
    users.insert("bob".to_string(), "secret".to_string());
    users.insert("admin".to_string(), "adminpw".to_string());
    AuthConfig {
        providers: Providers { sasl: true, x509: false },
        sasl: Some(SaslServerConfig { users, ..Default::default() }),
        super_users: vec!["admin".into()],
        ..Default::default()
    }
}

fn sasl_reply(out: &[Out], xid: i32) -> (ReplyHeader, Option<Bytes>) {
    let (header, body) = reply_of(out, xid);
    if header.err != 0 {
        return (header, None);
    }
    match wire::decode_response(OpCode::Sasl.code(), body).expect("SetSASLResponse") {
        Response::Sasl { token } => (header, token),
        other => panic!("{other:?}"),
    }
}

/// Runs a DIGEST-MD5 exchange on `conn`; returns the last reply's error code (-1 when the
/// client itself gave up on the server's token).
fn authenticate(h: &mut Harness, conn: u64, user: &str, password: &str) -> (i32, Vec<Out>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut client = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, user, password, None);
    let mut token = client.initial_response();
    for xid in 1.. {
        let out = h.call(conn, xid, &Request::Sasl { token: Bytes::from(token) });
        let (header, reply) = sasl_reply(&out, xid);
        assert_eq!(header.zxid, 0, "sasl replies carry zxid 0");
        if header.err != 0 {
            return (header.err, out);
        }
        match client.evaluate(&reply.unwrap_or_default(), &mut rng) {
            Ok(Some(next)) => token = next,
            Ok(None) => return (0, out),
            Err(_) => return (-1, out),
        }
    }
    unreachable!()
}

fn who_am_i(h: &mut Harness, conn: u64, xid: i32) -> Vec<(String, String)> {
    let out = h.call(conn, xid, &Request::WhoAmI);
    let (header, body) = reply_of(&out, xid);
    assert_eq!(header.err, 0);
    match wire::decode_response(OpCode::WhoAmI.code(), body).unwrap() {
        Response::WhoAmI(ids) => ids,
        other => panic!("{other:?}"),
    }
}

#[test]
fn digest_md5_authenticates_and_sasl_acls_apply() {
    let mut h = Harness::with(sasl_config(users()));
    h.session(1);
    h.session(2);
    let (err, out) = authenticate(&mut h, 1, "bob", "secret");
    assert_eq!(err, 0);
    assert!(!out.iter().any(|o| matches!(o, Out::Closed)));
    assert!(who_am_i(&mut h, 1, 10).contains(&("sasl".to_string(), "bob".to_string())));
    let mut private = create("/bob", b"x", 0);
    if let Request::Create(_, c) = &mut private {
        c.acl = vec![Acl { perms: perms::ALL, id: Id::new("sasl", "bob") }];
    }
    assert_eq!(reply_of(&h.call(1, 11, &private), 11).0.err, 0);
    let get = Request::GetData { path: "/bob".into(), watch: false };
    assert_eq!(reply_of(&h.call(1, 12, &get), 12).0.err, 0);
    assert_eq!(reply_of(&h.call(2, 1, &get), 1).0.err, ErrorCode::NoAuth.code());
}

#[test]
fn a_configured_super_user_gets_super() {
    let mut h = Harness::with(sasl_config(users()));
    h.session(1);
    assert_eq!(authenticate(&mut h, 1, "admin", "adminpw").0, 0);
    let ids = who_am_i(&mut h, 1, 10);
    assert!(ids.iter().any(|(scheme, _)| scheme == "super"), "{ids:?}");
}

#[test]
fn a_wrong_password_fails_with_auth_failed_and_closes_only_that_connection() {
    let mut h = Harness::with(sasl_config(users()));
    h.session(1);
    h.session(2);
    let (err, out) = authenticate(&mut h, 1, "bob", "wrong");
    assert_eq!(err, ErrorCode::AuthFailed.code());
    assert!(matches!(out.last(), Some(Out::Closed)), "{out:?}");
    let get = Request::Exists { path: "/".into(), watch: false };
    assert_eq!(reply_of(&h.call(2, 1, &get), 1).0.err, 0, "others keep working");
}

#[test]
fn allow_sasl_failed_clients_keeps_the_connection() {
    let mut auth = users();
    auth.allow_sasl_failed_clients = true;
    let mut h = Harness::with(sasl_config(auth));
    h.session(1);
    let (err, out) = authenticate(&mut h, 1, "bob", "wrong");
    // The failed step answers OK with no token; the client then fails on its own.
    assert_eq!(err, -1, "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Out::Closed)));
    assert!(!who_am_i(&mut h, 1, 10).iter().any(|(s, _)| s == "sasl"));
}

#[test]
fn enforce_auth_refuses_unauthenticated_requests() {
    let mut auth = users();
    auth.enforce_schemes = vec!["sasl".into()];
    auth.allow_sasl_failed_clients = true; // ignored when sasl is required
    let mut h = Harness::with(sasl_config(auth));
    h.session(1);
    let get = Request::Exists { path: "/".into(), watch: false };
    let out = h.call(1, 1, &get);
    assert_eq!(reply_of(&out, 1).0.err, ErrorCode::SessionClosedRequireSaslAuth.code());
    assert!(matches!(out.last(), Some(Out::Closed)));
    h.session(2);
    assert_eq!(authenticate(&mut h, 2, "bob", "secret").0, 0);
    assert_eq!(reply_of(&h.call(2, 20, &get), 20).0.err, 0);
    h.session(3);
    let (err, out) = authenticate(&mut h, 3, "bob", "nope");
    assert_eq!(err, ErrorCode::SessionClosedRequireSaslAuth.code());
    assert!(matches!(out.last(), Some(Out::Closed)));
}

#[test]
fn without_a_jaas_server_section_sasl_gets_ok_and_no_token() {
    let mut h = Harness::new();
    h.session(1);
    let out = h.call(1, 1, &Request::Sasl { token: Bytes::new() });
    assert_eq!(sasl_reply(&out, 1), (ReplyHeader { xid: 1, zxid: 0, err: 0 }, None));
}

#[test]
fn garbled_tokens_fail_without_panic() {
    let mut h = Harness::with(sasl_config(users()));
    h.session(1);
    let out = h.call(1, 1, &Request::Sasl { token: Bytes::from_static(b"\xff\x00garbage") });
    assert_eq!(reply_of(&out, 1).0.err, ErrorCode::AuthFailed.code());
    assert!(matches!(out.last(), Some(Out::Closed)));
}
