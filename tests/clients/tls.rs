//! Client TLS (issue #12): the secure client port, port unification, certificate reload and
//! x509 authentication, with a tokio-rustls client speaking the raw protocol. Certificates
//! are made by the test (tests/common/certs.rs). Ensemble only: the reference would need
//! `serverCnxnFactory=...NettyServerCnxnFactory` and JVM flags the harness does not pass.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::DnType;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use crate::certs::{Leaf, TestCa};
use crate::harness::{eventually, free_port, skip_unless_ensemble, Options, Server};
use crate::raw::{self, err, op, Conn, ConnectRequest, Jute};

/// A CA, the server's stores and a trust bundle, in the server's temp dir.
struct Pki {
    ca: TestCa,
    dir: tempfile::TempDir,
    server_store: PathBuf,
    trust: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("Ensemble Test CA");
        let server_store = ca.leaf_cn("server").write_pem(dir.path(), "server.pem");
        let trust = ca.write_trust_pem(dir.path(), "ca.pem");
        Pki { ca, dir, server_store, trust }
    }

    fn lines(&self, extra: &[String]) -> Vec<String> {
        let mut lines = vec![
            format!("ssl.keyStore.location={}", self.server_store.display()),
            format!("ssl.trustStore.location={}", self.trust.display()),
        ];
        lines.extend_from_slice(extra);
        lines
    }
}

fn start(lines: Vec<String>) -> Server {
    Server::start_with(Options { extra: lines, ..Options::default() })
}

/// A rustls client trusting `ca_pem`, presenting `leaf` if given.
fn client_config(ca_pem: &str, leaf: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("root");
    }
    #[allow(deprecated)] // ring's provider: see runtime/tls/settings.rs.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match leaf {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(leaf.cert_der.clone())],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    })
}

/// A TLS connection to `port`, or the handshake's error.
async fn tls_connect(
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// A session over TLS; `None` if the handshake or the session fails (with TLS 1.3 a refused
/// client certificate shows only at the first read).
async fn tls_session(port: u16, config: Arc<rustls::ClientConfig>) -> Option<Conn> {
    let stream = tls_connect(port, config).await.ok()?;
    let mut conn = Conn::over(stream);
    conn.send_frame(&ConnectRequest::new_session(30_000).encode()).await;
    conn.read_frame().await?;
    Some(conn)
}

async fn who_am_i(conn: &mut Conn) -> Vec<(String, String)> {
    let reply = conn.call(op::WHO_AM_I, &[]).await.ok("whoAmI");
    let mut r = reply.reader();
    (0..r.int()).map(|_| (r.ustring(), r.ustring())).collect()
}

fn server_log_has(server: &Server, text: &str) -> bool {
    server.log_tail().contains(text)
}

#[tokio::test]
async fn secure_port_authenticates_by_certificate_for_x509_acls_and_who_am_i() {
    if skip_unless_ensemble("TLS setup is Ensemble's zoo.cfg only") {
        return;
    }
    let pki = Pki::new();
    let secure = free_port();
    let server = start(pki.lines(&[
        format!("secureClientPort={secure}"),
        "secureClientPortAddress=127.0.0.1".into(),
        "X509AuthenticationProvider.superUser=CN=admin,O=Acme".into(),
    ]));
    let ca_pem = pki.ca.pem();
    let alice = pki.ca.leaf(&[(DnType::OrganizationName, "Acme"), (DnType::CommonName, "alice")]);
    let bob = pki.ca.leaf(&[(DnType::OrganizationName, "Acme"), (DnType::CommonName, "bob")]);
    let admin = pki.ca.leaf(&[(DnType::OrganizationName, "Acme"), (DnType::CommonName, "admin")]);

    let mut conn = tls_session(secure, client_config(&ca_pem, Some(&alice))).await.expect("alice");
    assert_eq!(
        who_am_i(&mut conn).await,
        [("ip".into(), "127.0.0.1".into()), ("x509".into(), "CN=alice,O=Acme".into())]
    );
    let acl = [(31, "x509", "CN=alice,O=Acme")];
    let create = Jute::new().ustring("/alice").buffer(Some(b"secret")).acls(&acl).int(0).bytes();
    conn.call(op::CREATE, &create).await.ok("create with an x509 ACL");
    conn.call(op::GET_DATA, &raw::path_watch_body("/alice", false)).await.ok("alice reads");
    // `auth` expands into the x509 id.
    let create = Jute::new().ustring("/mine").buffer(None).acls(&[(31, "auth", "")]).int(0).bytes();
    conn.call(op::CREATE, &create).await.ok("create with auth");
    let reply = conn.call(op::GET_ACL, &raw::path_body("/mine")).await.ok("getACL");
    assert_eq!(reply.reader().acls(), [(31, "x509".into(), "CN=alice,O=Acme".into())]);

    let mut other = tls_session(secure, client_config(&ca_pem, Some(&bob))).await.expect("bob");
    let reply = other.call(op::GET_DATA, &raw::path_watch_body("/alice", false)).await;
    assert_eq!(reply.err, err::NO_AUTH, "bob may not read alice's node");
    let (mut plain, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = plain.call(op::GET_DATA, &raw::path_watch_body("/alice", false)).await;
    assert_eq!(reply.err, err::NO_AUTH, "a plain client may not read alice's node");

    // The x509 super user gets `super` too.
    let mut root = tls_session(secure, client_config(&ca_pem, Some(&admin))).await.expect("admin");
    let ids = who_am_i(&mut root).await;
    // ZK compat: `super` has no provider, so whoAmI shows no user for it.
    assert!(ids.contains(&("super".into(), String::new())), "{ids:?}");
    assert!(ids.contains(&("x509".into(), "CN=admin,O=Acme".into())), "{ids:?}");
    root.call(op::GET_DATA, &raw::path_watch_body("/alice", false)).await.ok("super reads");
    assert!(server.four_letter("conf").contains(&format!("secureClientPort={secure}\n")));
}

#[tokio::test]
async fn plain_clients_and_wrong_certificates_are_refused_and_others_go_on() {
    if skip_unless_ensemble("TLS setup is Ensemble's zoo.cfg only") {
        return;
    }
    let pki = Pki::new();
    let secure = free_port();
    let server = start(pki.lines(&[format!("secureClientPort={secure}")]));
    let ca_pem = pki.ca.pem();
    let good = pki.ca.leaf_cn("good");
    let mut kept = tls_session(secure, client_config(&ca_pem, Some(&good))).await.expect("good");

    // Plain text on the secure port: closed without an answer.
    let mut plain = Conn::open(&format!("127.0.0.1:{secure}")).await;
    plain.send_frame(&ConnectRequest::new_session(30_000).encode()).await;
    assert!(plain.read_frame().await.is_none(), "plain client on the TLS port got an answer");
    // A certificate from another CA, and no certificate at all (clientAuth=need).
    let stranger = TestCa::new("Other CA").leaf_cn("mallory");
    assert!(tls_session(secure, client_config(&ca_pem, Some(&stranger))).await.is_none());
    assert!(tls_session(secure, client_config(&ca_pem, None)).await.is_none());

    eventually("the refusals are logged", Duration::from_secs(10), || async {
        let plain = server_log_has(&server, "plain-text client on the TLS-only port");
        let handshake = server_log_has(&server, "TLS handshake failed");
        (plain && handshake).then_some(())
    })
    .await;
    kept.ping().await.ok("the established TLS session goes on");
    let mut again = tls_session(secure, client_config(&ca_pem, Some(&good))).await.expect("new");
    again.ping().await.ok("a new TLS session works");
}

#[tokio::test]
async fn port_unification_serves_tls_and_plain_on_one_port_with_pkcs12_stores() {
    if skip_unless_ensemble("TLS setup is Ensemble's zoo.cfg only") {
        return;
    }
    let pki = Pki::new();
    let dir = pki.dir.path();
    let store = pki.ca.leaf_cn("server").write_p12(dir, "server.p12", "storepw");
    let trust = pki.ca.write_trust_p12(dir, "trust.p12", "trustpw");
    let password_file = write(dir, "trust.pw", "trustpw\n");
    let server = start(vec![
        "client.portUnification=true".into(),
        format!("ssl.keyStore.location={}", store.display()),
        "ssl.keyStore.password=storepw".into(),
        format!("ssl.trustStore.location={}", trust.display()),
        "ssl.trustStore.type=PKCS12".into(),
        format!("ssl.trustStore.passwordPath={}", password_file.display()),
    ]);
    let ca_pem = pki.ca.pem();
    let leaf = pki.ca.leaf_cn("unified");
    let mut tls =
        tls_session(server.port(), client_config(&ca_pem, Some(&leaf))).await.expect("tls");
    assert!(who_am_i(&mut tls).await.contains(&("x509".into(), "CN=unified".into())));
    let (mut plain, _) = Conn::session(&server.addr(), 30_000).await;
    assert_eq!(who_am_i(&mut plain).await, [("ip".into(), "127.0.0.1".into())]);
    assert_eq!(server.four_letter("ruok"), "imok", "four-letter words still work");
}

#[tokio::test]
async fn renewed_certificates_are_used_without_dropping_sessions() {
    if skip_unless_ensemble("TLS setup is Ensemble's zoo.cfg only") {
        return;
    }
    let pki = Pki::new();
    let secure = free_port();
    let server =
        start(pki.lines(&[format!("secureClientPort={secure}"), "client.certReload=true".into()]));
    let ca_pem = pki.ca.pem();
    let client = client_config(&ca_pem, Some(&pki.ca.leaf_cn("client")));
    let mut kept = tls_session(secure, client.clone()).await.expect("session");

    let renewed = pki.ca.leaf_cn("server renewed");
    renewed.write_pem(pki.dir.path(), "server.pem");
    eventually("new handshakes get the renewed certificate", Duration::from_secs(30), || {
        let client = client.clone();
        let expected = renewed.cert_der.clone();
        async move {
            let tls = tls_connect(secure, client).await.ok()?;
            let cert = tls.get_ref().1.peer_certificates()?.first()?.to_vec();
            (cert == expected).then_some(())
        }
    })
    .await;
    assert!(server_log_has(&server, "TLS certificates reloaded"), "{}", server.log_tail());
    kept.ping().await.ok("the session made with the old certificate goes on");
}

#[tokio::test]
async fn client_hostname_verification_checks_the_client_address() {
    if skip_unless_ensemble("TLS setup is Ensemble's zoo.cfg only") {
        return;
    }
    let pki = Pki::new();
    let secure = free_port();
    let server = start(pki.lines(&[
        format!("secureClientPort={secure}"),
        "ssl.clientHostnameVerification=true".into(),
    ]));
    let ca_pem = pki.ca.pem();
    let here = pki.ca.leaf_cn("here");
    let elsewhere = pki.ca.leaf_at(&[(DnType::CommonName, "elsewhere")], "10.9.8.7");
    let mut conn = tls_session(secure, client_config(&ca_pem, Some(&here))).await.expect("here");
    conn.ping().await.ok("a certificate for 127.0.0.1 is accepted");
    assert!(tls_session(secure, client_config(&ca_pem, Some(&elsewhere))).await.is_none());
    eventually("the refusal is logged", Duration::from_secs(10), || async {
        server_log_has(&server, "not valid for the client's address").then_some(())
    })
    .await;
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}
