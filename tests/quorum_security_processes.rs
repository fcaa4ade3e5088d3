//! Quorum TLS and quorum SASL between real `ensemble server --config` processes on 127.0.0.1.
//!
//! Each member gets a temp dir with `zoo.cfg`, `myid`, its key store (a certificate for
//! 127.0.0.1 signed by a test CA, made with rcgen at test time) and the CA as trust store; the
//! JAAS file with the `QuorumServer` and `QuorumLearner` sections is shared (a stranger gets
//! its own). Waits poll `srvr` every 50 ms up to a bound; nothing sleeps for a fixed time.
//!
//! With [`Quorum::SslAndSasl`] every member also has a secure client port (the same key store,
//! the same CA) and client SASL (the JAAS `Server` section, named with the SASL provider in
//! `java.env` as an operator would): the full set of docs/operations.md's "Complete example".
//! Those clients speak the raw protocol (tests/clients/raw.rs) over tokio-rustls.

#![cfg(not(madsim))]

#[path = "common/certs.rs"]
mod certs;
#[allow(dead_code)] // Only some of the raw client is used here.
#[path = "clients/raw.rs"]
mod raw;

#[path = "common/process.rs"]
mod process;
use process::{four_letter, free_ports, within, ServerProcess, POLL, WAIT};

use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble::core::auth::digest_md5::{DigestMd5Client, CLIENT_SERVER_NAME, CLIENT_SERVICE};
use rand::SeedableRng;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use zookeeper_client as zk;

use certs::{Leaf, TestCa};
use raw::{err, op, Conn, ConnectRequest, Jute};

const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

const JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob-secret";
};
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_quorum="quorum-secret";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="quorum"
    password="quorum-secret";
};
"#;

/// What a member's `zoo.cfg` asks of the quorum port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quorum {
    /// No TLS, no SASL.
    Plain,
    /// Rolling step 1: every port takes TLS and plain; members still dial plain.
    PortUnification,
    /// Rolling step 2: members dial TLS; ports still take plain.
    SslAndPortUnification,
    /// Rolling step 3 (and the target): TLS only.
    Ssl,
    /// TLS only, and SASL required both ways with the shared JAAS file.
    SslAndSasl,
    /// TLS only; SASL required, with the JAAS file of a member that has the wrong password.
    SslAndWrongSasl,
    /// TLS only; no quorum SASL at all.
    SslWithoutSasl,
}

struct Member {
    id: u64,
    client_port: u16,
    secure_client_port: u16,
    process: ServerProcess,
}

impl Deref for Member {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for Member {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

impl Member {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn mode(&self) -> Option<String> {
        self.child.as_ref()?;
        let srvr = four_letter(self.client_port, "srvr").ok()?;
        srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string)
    }
}

struct Ensemble {
    members: Vec<Member>,
    servers: String,
    ca_pem: PathBuf,
    /// What a TLS client presents and trusts: a certificate from the members' CA.
    client_tls: Arc<rustls::ClientConfig>,
    dir: tempfile::TempDir,
}

impl Ensemble {
    /// Three members with their certificates and the JAAS files; not started.
    fn new() -> Ensemble {
        let dir =
            tempfile::Builder::new().prefix("ensemble-quorum-security-").tempdir().expect("tmp");
        let ca = TestCa::new("Ensemble test quorum CA");
        let ca_pem = ca.write_trust_pem(dir.path(), "ca.pem");
        fs::write(dir.path().join("jaas.conf"), JAAS).expect("jaas");
        fs::write(
            dir.path().join("wrong-jaas.conf"),
            JAAS.replace("password=\"quorum-secret\"", "password=\"guess\""),
        )
        .expect("jaas");
        let ports = free_ports(12);
        let mut servers = String::new();
        for id in 1..=3usize {
            let at = 4 * (id - 1);
            servers.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                ports[at + 1],
                ports[at + 2],
                ports[at]
            ));
        }
        let mut members = Vec::new();
        for id in 1..=3u64 {
            let member_dir = dir.path().join(format!("member{id}"));
            let data = member_dir.join("data");
            fs::create_dir_all(&data).expect("mkdir");
            fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
            ca.leaf_cn(&format!("member{id}")).write_pem(&member_dir, "quorum.pem");
            let client_port = ports[4 * (id as usize - 1)];
            let secure_client_port = ports[4 * (id as usize - 1) + 3];
            let process = ServerProcess::new(&member_dir);
            members.push(Member { id, client_port, secure_client_port, process });
        }
        let client_tls = tls_client_config(&ca, &ca.leaf_cn("client"));
        Ensemble { members, servers, ca_pem, client_tls, dir }
    }

    /// Writes member `id`'s `zoo.cfg` for `quorum`.
    fn configure(&self, id: u64, quorum: Quorum) {
        let member = &self.members[id as usize - 1];
        let data = member.dir.join("data");
        let mut config = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n4lw.commands.whitelist=*\n{}",
            data.display(),
            self.servers
        );
        let stores = format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n",
            member.dir.join("quorum.pem").display(),
            self.ca_pem.display()
        );
        let sasl = |jaas: &str| {
            format!(
                "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                 quorum.auth.serverRequireSasl=true\njava.security.auth.login.config={}\n",
                self.dir.path().join(jaas).display()
            )
        };
        let security = match quorum {
            Quorum::Plain => String::new(),
            Quorum::PortUnification => format!("{stores}portUnification=true\n"),
            Quorum::SslAndPortUnification => {
                format!("{stores}sslQuorum=true\nportUnification=true\n")
            }
            Quorum::Ssl | Quorum::SslWithoutSasl => format!("{stores}sslQuorum=true\n"),
            Quorum::SslAndSasl => {
                // Client TLS from the same stores; the JAAS file and the client SASL provider
                // come from `java.env` (below), the quorum SASL keys from zoo.cfg.
                let tls = format!(
                    "secureClientPort={}\nssl.keyStore.location={}\nssl.trustStore.location={}\n",
                    member.secure_client_port,
                    member.dir.join("quorum.pem").display(),
                    self.ca_pem.display()
                );
                let quorum_sasl =
                    "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                                   quorum.auth.serverRequireSasl=true\n";
                format!("{stores}sslQuorum=true\n{quorum_sasl}{tls}")
            }
            Quorum::SslAndWrongSasl => {
                format!("{stores}sslQuorum=true\n{}", sasl("wrong-jaas.conf"))
            }
        };
        config.push_str(&security);
        fs::write(member.dir.join("zoo.cfg"), config).expect("zoo.cfg");
        let java_env = member.dir.join("java.env");
        if quorum == Quorum::SslAndSasl {
            let flags = format!(
                "SERVER_JVMFLAGS=\"-Djava.security.auth.login.config={} \
                 -Dzookeeper.authProvider.1=\
                 org.apache.zookeeper.server.auth.SASLAuthenticationProvider\"\n",
                self.dir.path().join("jaas.conf").display()
            );
            fs::write(&java_env, flags).expect("java.env");
        } else if java_env.exists() {
            fs::remove_file(&java_env).expect("remove java.env");
        }
    }

    fn member(&mut self, id: u64) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    /// Waits until every member in `ids` serves and exactly one of them leads.
    fn wait_for_leader_among(&mut self, ids: &[u64]) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let modes: Vec<(u64, Option<String>)> =
                ids.iter().map(|id| (*id, self.members[*id as usize - 1].mode())).collect();
            let leaders: Vec<u64> = modes
                .iter()
                .filter(|(_, mode)| mode.as_deref() == Some("leader"))
                .map(|(id, _)| *id)
                .collect();
            if leaders.len() == 1 && modes.iter().all(|(_, mode)| mode.is_some()) {
                return leaders[0];
            }
            for member in &mut self.members {
                if let Some(status) =
                    member.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!("member {} exited: {status}\n{}", member.id, member.latest_log());
                }
            }
            if Instant::now() > deadline {
                panic!("no leader among {ids:?} after {WAIT:?}: {modes:?}\n{}", self.logs());
            }
            std::thread::sleep(POLL);
        }
    }

    fn running(&self) -> Vec<u64> {
        self.members.iter().filter(|m| m.child.is_some()).map(|m| m.id).collect()
    }

    /// Waits until the log of a member in `ids` (any start) contains `needle`.
    fn wait_for_log(&self, ids: &[u64], needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !ids.iter().any(|id| self.members[*id as usize - 1].all_logs().contains(needle)) {
            if Instant::now() > deadline {
                panic!("no log of {ids:?} says {needle:?}\n{}", self.logs());
            }
            std::thread::sleep(POLL);
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for member in &self.members {
            out.push_str(&format!("--- member {} ---\n{}\n", member.id, member.log_tail(25)));
        }
        out
    }
}

async fn client(member: &Member) -> zk::Client {
    let addr = member.addr();
    let connector =
        zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&addr);
    within("connect", connector).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Creates `path` (data = the path) through `member`.
async fn create(member: &Member, path: &str) {
    let client = client(member).await;
    within("create", client.create(path, path.as_bytes(), &PERSISTENT))
        .await
        .unwrap_or_else(|e| panic!("create {path} through member {}: {e}", member.id));
}

/// Every path exists on `member`, read after a `sync`.
async fn assert_all_present(member: &Member, paths: &[String]) {
    let client = client(member).await;
    within("sync", client.sync("/")).await.expect("sync");
    for path in paths {
        let (data, _) = within("get", client.get_data(path))
            .await
            .unwrap_or_else(|e| panic!("{path} on member {}: {e}", member.id));
        assert_eq!(data, path.as_bytes(), "{path} on member {}", member.id);
    }
}

/// A rustls client trusting `ca` and presenting `leaf` (the members ask for a client
/// certificate: `ssl.clientAuth` defaults to `need`).
fn tls_client_config(ca: &TestCa, leaf: &Leaf) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("root");
    }
    #[allow(deprecated)] // ring's provider: see runtime/tls/settings.rs.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(leaf.cert_der.clone())],
            PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
        )
        .expect("client cert");
    Arc::new(config)
}

/// A new session over TLS on `member`'s secure client port.
async fn tls_session(ensemble: &Ensemble, id: u64) -> Conn {
    let port = ensemble.members[id as usize - 1].secure_client_port;
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from("localhost").expect("name");
        tokio_rustls::TlsConnector::from(ensemble.client_tls.clone()).connect(name, tcp).await
    };
    let stream = within("TLS connect", connecting)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with member {id} on port {port}: {e}"));
    let mut conn = Conn::over(stream);
    let session = within("session", conn.handshake(&ConnectRequest::new_session(10_000))).await;
    assert_ne!(session.session_id, 0, "member {id} refused a TLS session: {session:?}");
    conn
}

/// Creates `path` (data = the path) through a TLS client of member `id`.
async fn tls_create(ensemble: &Ensemble, id: u64, path: &str) {
    let mut conn = tls_session(ensemble, id).await;
    let reply =
        within("create", conn.call(op::CREATE, &raw::create_body(path, Some(path.as_bytes()), 0)))
            .await;
    assert_eq!(reply.err, err::OK, "create {path} over TLS through member {id}");
}

/// Every path exists on member `id`, read by a TLS client after a `sync`.
async fn tls_assert_all_present(ensemble: &Ensemble, id: u64, paths: &[String]) {
    let mut conn = tls_session(ensemble, id).await;
    within("sync", conn.call(op::SYNC, &raw::path_body("/"))).await.ok("sync over TLS");
    for path in paths {
        let reply =
            within("get", conn.call(op::GET_DATA, &raw::path_watch_body(path, false))).await;
        assert_eq!(reply.err, err::OK, "{path} on member {id} over TLS");
        assert_eq!(
            reply.reader().buffer().as_deref(),
            Some(path.as_bytes()),
            "{path} on member {id}"
        );
    }
}

/// Client SASL (DIGEST-MD5, the JAAS `Server` section) on `conn`; returns the error code of
/// the reply that ended the exchange (0 when the server's rspauth checked out).
async fn sasl_authenticate(conn: &mut Conn, user: &str, password: &str) -> i32 {
    const SASL: i32 = 102;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut client = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, user, password, None);
    let mut token = client.initial_response();
    loop {
        let reply =
            within("sasl", conn.call(SASL, &Jute::new().buffer(Some(&token)).bytes())).await;
        if reply.err != err::OK {
            return reply.err;
        }
        let server_token = reply.reader().buffer().unwrap_or_default();
        match client.evaluate(&server_token, &mut rng).expect("a valid server token") {
            Some(next) => token = next,
            None => return err::OK,
        }
    }
}

/// The `(scheme, id)` pairs `whoAmI` reports for `conn`.
async fn who_am_i(conn: &mut Conn) -> Vec<(String, String)> {
    let reply = within("whoAmI", conn.call(op::WHO_AM_I, &[])).await.ok("whoAmI");
    let mut r = reply.reader();
    (0..r.int()).map(|_| (r.ustring(), r.ustring())).collect()
}

/// Whether `log` has a `peer link up` line with `tls=<tls>` (the client listener's line also
/// says `tls=`, about the client port).
fn links_up(log: &str, tls: bool) -> bool {
    let wanted = format!("tls={tls}");
    log.lines().any(|line| line.contains("peer link up") && line.contains(&wanted))
}

fn started(quorum: Quorum) -> Ensemble {
    let mut ensemble = Ensemble::new();
    for id in 1..=3 {
        ensemble.configure(id, quorum);
        ensemble.member(id).spawn();
    }
    ensemble
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_and_sasl_quorum_forms_survives_a_leader_kill_and_serves_clients() {
    let mut ensemble = started(Quorum::SslAndSasl);
    let first_leader = ensemble.wait_for_leader_among(&[1, 2, 3]);
    let mut written = Vec::new();
    for id in 1..=3u64 {
        let path = format!("/before-{id}");
        tls_create(&ensemble, id, &path).await;
        written.push(path);
    }
    // Client SASL over TLS: bob (JAAS `Server` section) authenticates, and a znode only bob
    // may read is written through the leader-to-be-killed.
    let mut bob = tls_session(&ensemble, first_leader).await;
    assert_eq!(sasl_authenticate(&mut bob, "bob", "bob-secret").await, err::OK);
    let ids = who_am_i(&mut bob).await;
    assert!(ids.contains(&("sasl".into(), "bob".into())), "whoAmI over TLS + SASL: {ids:?}");
    let only_bob = Jute::new()
        .ustring("/bob")
        .buffer(Some(b"bob's"))
        .acls(&[(31, "sasl", "bob")])
        .int(0)
        .bytes();
    within("create /bob", bob.call(op::CREATE, &only_bob)).await.ok("create with a sasl ACL");
    drop(bob);
    // Every link is TLS and every dialer authenticated.
    for member in &ensemble.members {
        let log = member.latest_log();
        assert!(!links_up(&log, false), "member {}:\n{log}", member.id);
        assert!(links_up(&log, true), "member {}:\n{log}", member.id);
    }
    ensemble.wait_for_log(&[1, 2], "peer authenticated with quorum SASL");
    ensemble.wait_for_log(&[2, 3], "authenticated to the peer with quorum SASL");

    ensemble.member(first_leader).kill();
    let survivors = ensemble.running();
    let second_leader = ensemble.wait_for_leader_among(&survivors);
    assert_ne!(second_leader, first_leader);
    for id in &survivors {
        let path = format!("/after-{id}");
        tls_create(&ensemble, *id, &path).await;
        written.push(path);
    }
    for id in &survivors {
        tls_assert_all_present(&ensemble, *id, &written).await;
    }
    // On the new leader, bob's znode is bob's: a TLS client without SASL is refused, bob
    // (authenticated again, over TLS) reads it.
    let mut anonymous = tls_session(&ensemble, second_leader).await;
    let denied =
        within("get /bob", anonymous.call(op::GET_DATA, &raw::path_watch_body("/bob", false)))
            .await;
    assert_eq!(denied.err, err::NO_AUTH, "/bob without SASL");
    let mut bob = tls_session(&ensemble, second_leader).await;
    assert_eq!(sasl_authenticate(&mut bob, "bob", "bob-secret").await, err::OK);
    let reply =
        within("get /bob", bob.call(op::GET_DATA, &raw::path_watch_body("/bob", false))).await;
    assert_eq!(reply.ok("bob reads /bob").reader().buffer().as_deref(), Some(&b"bob's"[..]));

    // The killed leader comes back through TLS and SASL and catches up.
    ensemble.member(first_leader).spawn();
    ensemble.wait_for_leader_among(&[1, 2, 3]);
    tls_assert_all_present(&ensemble, first_leader, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_quorum_credentials_cannot_join_and_the_refusal_is_logged() {
    let mut ensemble = Ensemble::new();
    ensemble.configure(1, Quorum::SslAndSasl);
    ensemble.configure(2, Quorum::SslAndSasl);
    // Member 3 has the CA's certificate but the wrong quorum password. It has the largest
    // id, so it dials both others and authenticates to them as a learner.
    ensemble.configure(3, Quorum::SslAndWrongSasl);
    for id in 1..=3 {
        ensemble.member(id).spawn();
    }
    ensemble.wait_for_leader_among(&[1, 2]);
    ensemble.wait_for_log(&[1, 2], "failed quorum SASL");
    ensemble.wait_for_log(&[3], "refused our quorum credentials");
    create(&ensemble.members[0], "/served-1").await;
    assert_eq!(ensemble.member(3).mode(), None, "member 3 must not serve\n{}", ensemble.logs());

    // Without any quorum SASL it is refused as well, for not authenticating.
    ensemble.member(3).kill();
    ensemble.configure(3, Quorum::SslWithoutSasl);
    ensemble.member(3).spawn();
    ensemble.wait_for_log(&[1, 2], "did not authenticate and quorum.auth.serverRequireSasl=true");
    ensemble.wait_for_log(&[3], "requires quorum SASL");
    create(&ensemble.members[1], "/served-2").await;
    assert_all_present(&ensemble.members[0], &["/served-1".into(), "/served-2".into()]).await;
    assert_eq!(ensemble.member(3).mode(), None, "member 3 must not serve\n{}", ensemble.logs());
}

/// ZooKeeper's three-step switch to quorum TLS with no downtime: each step is a rolling
/// restart, and while any one member is down the other two keep a quorum that takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_switch_from_plain_to_quorum_tls_never_loses_the_quorum() {
    let mut ensemble = started(Quorum::Plain);
    ensemble.wait_for_leader_among(&[1, 2, 3]);
    let mut written = Vec::new();
    for (step, quorum) in [Quorum::PortUnification, Quorum::SslAndPortUnification, Quorum::Ssl]
        .into_iter()
        .enumerate()
    {
        for id in 1..=3u64 {
            ensemble.member(id).kill();
            let others: Vec<u64> = (1..=3).filter(|other| *other != id).collect();
            ensemble.wait_for_leader_among(&others);
            let path = format!("/step-{step}-without-{id}");
            create(&ensemble.members[others[0] as usize - 1], &path).await;
            written.push(path);
            ensemble.configure(id, quorum);
            ensemble.member(id).spawn();
            ensemble.wait_for_leader_among(&[1, 2, 3]);
        }
    }
    for id in 1..=3u64 {
        assert_all_present(&ensemble.members[id as usize - 1], &written).await;
    }
    // After the last step every link is TLS: the last restarts each saw only TLS links come up.
    for member in &ensemble.members {
        let log = member.latest_log();
        assert!(links_up(&log, true) && !links_up(&log, false), "member {}:\n{log}", member.id);
    }
}

/// The rolling steps matter: a plain member cannot join TLS-only members, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_member_cannot_join_tls_only_members_and_the_refusal_is_logged() {
    let mut ensemble = Ensemble::new();
    ensemble.configure(1, Quorum::Ssl);
    ensemble.configure(2, Quorum::Ssl);
    ensemble.configure(3, Quorum::Plain);
    for id in 1..=3 {
        ensemble.member(id).spawn();
    }
    ensemble.wait_for_leader_among(&[1, 2]);
    ensemble.wait_for_log(&[1, 2], "refused: this quorum port takes TLS only");
    ensemble.wait_for_log(&[3], "refused the connection: this quorum port takes TLS only");
    create(&ensemble.members[0], "/served").await;
    assert_eq!(ensemble.member(3).mode(), None, "member 3 must not serve\n{}", ensemble.logs());
}
