//! Client SASL (DIGEST-MD5) over the wire, with Ensemble's own client mechanism driving the
//! `sasl` request (opcode 102): authentication, the `sasl` ACL scheme, a wrong password, and
//! `enforce.auth`. Runs against Apache ZooKeeper too (the JAAS file is a JVM flag there).

use ensemble::core::auth::digest_md5::{DigestMd5Client, CLIENT_SERVER_NAME, CLIENT_SERVICE};
use rand::SeedableRng;

use crate::harness::{Options, Server};
use crate::raw::{self, err, op, Conn, Jute};

const SASL: i32 = 102;
const SESSION_CLOSED_REQUIRE_SASL_AUTH: i32 = -124;
const SASL_PROVIDER: &str =
    "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// A server whose JAAS `Server` section has `bob` / `bobsecret`, plus `lines`.
fn server(lines: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let jaas = dir.path().join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_bob=\"bobsecret\";\n};\n",
    )
    .expect("write jaas.conf");
    let mut extra: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    extra.push(format!("java.security.auth.login.config={}", jaas.display()));
    (Server::start_with(Options { extra, ..Options::default() }), dir)
}

/// Runs the DIGEST-MD5 exchange; returns the error code of the reply that ended it (0 when
/// the server's rspauth checked out).
async fn authenticate(conn: &mut Conn, user: &str, password: &str) -> i32 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut client = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, user, password, None);
    let mut token = client.initial_response();
    loop {
        let reply = conn.call(SASL, &Jute::new().buffer(Some(&token)).bytes()).await;
        if reply.err != 0 {
            return reply.err;
        }
        assert_eq!(reply.zxid, 0, "sasl replies carry zxid 0");
        let server_token = reply.reader().buffer().unwrap_or_default();
        match client.evaluate(&server_token, &mut rng).expect("a valid server token") {
            Some(next) => token = next,
            None => return 0,
        }
    }
}

async fn who_am_i(conn: &mut Conn) -> Vec<(String, String)> {
    let reply = conn.call(op::WHO_AM_I, &[]).await.ok("whoAmI");
    let mut r = reply.reader();
    (0..r.int()).map(|_| (r.ustring(), r.ustring())).collect()
}

#[tokio::test]
async fn digest_md5_authenticates_and_a_wrong_password_is_refused() {
    let (server, _jaas) = server(&[SASL_PROVIDER]);
    let (mut bob, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut bob, "bob", "bobsecret").await, 0);
    assert!(who_am_i(&mut bob).await.contains(&("sasl".into(), "bob".into())));
    let create = Jute::new()
        .ustring("/sasl-raw")
        .buffer(Some(b"bob's"))
        .acls(&[(31, "sasl", "bob")])
        .int(0)
        .bytes();
    bob.call(op::CREATE, &create).await.ok("create with a sasl ACL");
    bob.call(op::GET_DATA, &raw::path_watch_body("/sasl-raw", false)).await.ok("bob reads");

    let (mut anonymous, _) = Conn::session(&server.addr(), 30_000).await;
    let denied = anonymous.call(op::GET_DATA, &raw::path_watch_body("/sasl-raw", false)).await;
    assert_eq!(denied.err, err::NO_AUTH);

    let (mut eve, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut eve, "bob", "guess").await, err::AUTH_FAILED);
    eve.expect_closed_after_draining().await;
    let (mut unknown, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut unknown, "mallory", "x").await, err::AUTH_FAILED);

    anonymous.ping().await.ok("others keep being served");
    bob.call(op::EXISTS, &raw::path_watch_body("/", false)).await.ok("bob too");
}

#[tokio::test]
async fn without_the_provider_sasl_ids_cannot_be_used_in_acls() {
    let (server, _jaas) = server(&[]);
    let (mut bob, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut bob, "bob", "bobsecret").await, 0);
    // ZK compat: whoAmI names no user for a scheme without a provider.
    assert!(who_am_i(&mut bob).await.contains(&("sasl".into(), String::new())));
    let create =
        Jute::new().ustring("/n").buffer(Some(b"")).acls(&[(31, "sasl", "bob")]).int(0).bytes();
    assert_eq!(bob.call(op::CREATE, &create).await.err, err::INVALID_ACL);
}

#[tokio::test]
async fn enforce_auth_closes_unauthenticated_connections() {
    let (server, _jaas) =
        server(&[SASL_PROVIDER, "enforce.auth.enabled=true", "enforce.auth.schemes=sasl"]);
    let (mut anonymous, _) = Conn::session(&server.addr(), 30_000).await;
    let refused = anonymous.call(op::EXISTS, &raw::path_watch_body("/", false)).await;
    assert_eq!(refused.err, SESSION_CLOSED_REQUIRE_SASL_AUTH);
    anonymous.expect_closed_after_draining().await;

    let (mut bob, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut bob, "bob", "bobsecret").await, 0);
    bob.call(op::EXISTS, &raw::path_watch_body("/", false)).await.ok("authenticated");

    let (mut eve, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(authenticate(&mut eve, "bob", "guess").await, SESSION_CLOSED_REQUIRE_SASL_AUTH);
    eve.expect_closed_after_draining().await;
}

/// The `zookeeper-client` crate's own DIGEST-MD5 (rsasl): a sasl ACL it sets is enforced, and a
/// wrong password fails the connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_client_crate_authenticates_with_digest_md5() {
    use zookeeper_client as zk;
    let (server, _jaas) = server(&[SASL_PROVIDER]);
    let bob = server
        .connect(zk::Client::connector().with_sasl(zk::SaslOptions::digest_md5("bob", "bobsecret")))
        .await;
    let entries = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("sasl", "bob"))];
    let acl = zk::Acls::new(&entries);
    bob.create("/crate-sasl", b"x", &zk::CreateMode::Persistent.with_acls(acl))
        .await
        .expect("create with a sasl ACL");
    let ids = bob.list_auth_users().await.expect("whoAmI");
    assert!(ids.contains(&zk::AuthUser::new("sasl", "bob")), "{ids:?}");
    let anonymous = server.client().await;
    assert_eq!(anonymous.get_data("/crate-sasl").await.unwrap_err(), zk::Error::NoAuth);

    let addr = server.addr();
    let wrong = zk::Client::connector()
        .with_sasl(zk::SaslOptions::digest_md5("bob", "guess"))
        .with_session_timeout(std::time::Duration::from_secs(6))
        .with_fail_eagerly()
        .connect(&addr);
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), wrong).await;
    assert!(matches!(outcome, Ok(Err(_))), "a wrong password must not connect: {outcome:?}");
    anonymous.check_stat("/").await.expect("others keep being served");
}
