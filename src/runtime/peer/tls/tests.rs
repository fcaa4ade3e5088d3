//! Quorum TLS over loopback: certificates from a test CA (rcgen, written to a temp dir).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// Also loaded by the TLS module's own tests; each test module gets its own copy.
#[allow(clippy::duplicate_mod)]
#[path = "../../../../tests/common/certs.rs"]
mod certs;

use super::*;
use crate::core::ids::{ServerId, Zxid};
use crate::core::io::Input;
use crate::core::zab::PeerMsg;
use crate::runtime::peer::auth::tests::{sasl, PeerMember};
use crate::runtime::peer::{encode_frame, read_frame, LinkFrame, PeerSecurity};
use crate::runtime::tls::{Role, TlsContext, TlsSettings};
use certs::TestCa;

const WAIT: Duration = Duration::from_secs(20);

/// Quorum TLS for a member whose certificate `CA` signed (for 127.0.0.1), trusting `trusted`.
fn member_tls(
    dir: &std::path::Path,
    name: &str,
    ca: &TestCa,
    trusted: &TestCa,
    dial_tls: bool,
    accept_plain: bool,
) -> PeerTls {
    let key_store = ca.leaf_cn(name).write_pem(dir, &format!("{name}.pem"));
    let trust_store = trusted.write_trust_pem(dir, &format!("{name}-trust.pem"));
    let props: BTreeMap<String, String> = [
        ("ssl.quorum.keyStore.location", key_store.display().to_string()),
        ("ssl.quorum.trustStore.location", trust_store.display().to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    let settings = TlsSettings::from_properties(&props, "ssl.quorum.").expect("settings");
    let context = TlsContext::new(settings, Role::Both).expect("context");
    PeerTls { context, dial_tls, accept_plain, reload: false }
}

fn secured(tls: Option<PeerTls>, with_sasl: bool) -> PeerSecurity {
    PeerSecurity { sasl: with_sasl.then(|| sasl(true, true, "secret")), tls }
}

async fn exchange(one: &mut PeerMember, two: &mut PeerMember) {
    assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
    assert_eq!(two.input().await, Input::PeerLinkUp { peer: ServerId(1) });
    let ack = PeerMsg::Ack { zxid: Zxid(3) };
    two.links.send(ServerId(1), ack.clone(), &mut two.inputs);
    assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: ack.clone() });
    one.links.send(ServerId(2), ack.clone(), &mut one.inputs);
    assert_eq!(two.input().await, Input::PeerMessage { from: ServerId(1), msg: ack });
}

#[tokio::test]
async fn tls_only_members_with_sasl_link_up_and_exchange_messages() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("quorum CA");
    let listeners = PeerMember::listeners(2).await;
    let ports = PeerMember::ports(&listeners);
    let mut listeners = listeners.into_iter();
    let tls_one = member_tls(dir.path(), "one", &ca, &ca, true, false);
    let tls_two = member_tls(dir.path(), "two", &ca, &ca, true, false);
    let mut one =
        PeerMember::start(1, &ports, secured(Some(tls_one), true), listeners.next().unwrap());
    let mut two =
        PeerMember::start(2, &ports, secured(Some(tls_two), true), listeners.next().unwrap());
    exchange(&mut one, &mut two).await;
}

/// The middle steps of the rolling switch: a `portUnification` member takes a plain dialer
/// and a TLS dialer alike.
#[tokio::test]
async fn a_port_unification_member_takes_plain_and_tls_dialers() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("quorum CA");
    for dialer_uses_tls in [false, true] {
        let listeners = PeerMember::listeners(2).await;
        let ports = PeerMember::ports(&listeners);
        let mut listeners = listeners.into_iter();
        let unified = member_tls(dir.path(), "one", &ca, &ca, false, true);
        let dialer = member_tls(dir.path(), "two", &ca, &ca, dialer_uses_tls, true);
        let mut one =
            PeerMember::start(1, &ports, secured(Some(unified), false), listeners.next().unwrap());
        let mut two =
            PeerMember::start(2, &ports, secured(Some(dialer), false), listeners.next().unwrap());
        exchange(&mut one, &mut two).await;
    }
}

/// A plain member dialing a TLS-only member is refused, and told why in plain text.
#[tokio::test]
async fn a_plain_dialer_is_refused_by_a_tls_only_member_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("quorum CA");
    let listeners = PeerMember::listeners(2).await;
    let ports = PeerMember::ports(&listeners);
    let tls_only = member_tls(dir.path(), "one", &ca, &ca, true, false);
    let mut one = PeerMember::start(
        1,
        &ports,
        secured(Some(tls_only), false),
        listeners.into_iter().next().unwrap(),
    );
    let mut stream = TcpStream::connect(("127.0.0.1", ports[0])).await.expect("connect");
    let mut out = BytesMut::new();
    encode_frame(&LinkFrame::Hello { from: ServerId(2), to: ServerId(1) }, &mut out).unwrap();
    stream.write_all(&out).await.expect("write");
    let mut buffer = BytesMut::new();
    match read_frame(&mut stream, &mut buffer, WAIT).await {
        Ok(LinkFrame::Auth { status: AuthStatus::Error, token }) => {
            let reason = String::from_utf8_lossy(&token);
            assert!(reason.contains("takes TLS only (sslQuorum=true, portUnification=false)"));
        }
        other => panic!("{other:?}"),
    }
    assert!(one.inputs.is_empty() && one.events.try_recv().is_err(), "no link came up");
}

/// The TLS handshake itself, member to member: a certificate from another CA is refused by
/// both checks (the dialer's of the acceptor, the acceptor's of the dialer).
#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake_on_both_sides() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("quorum CA");
    let stranger = TestCa::new("another CA");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let good = member_tls(dir.path(), "one", &ca, &ca, true, false);
    // Signed by another CA, but trusting ours: the acceptor refuses it.
    let bad = member_tls(dir.path(), "two", &stranger, &ca, true, false);
    let (dialed, accepted) =
        tokio::join!(TcpStream::connect(addr), async { listener.accept().await.expect("accept") });
    let (dialing, accepting) = tokio::join!(
        dial(Some(&bad), dialed.expect("connect"), "127.0.0.1", WAIT),
        accept(Some(&good), accepted.0, accepted.1, WAIT)
    );
    match accepting {
        Err(PeerError::Tls(reason)) => assert!(reason.contains("TLS handshake with"), "{reason}"),
        other => panic!("{:?}", other.map(|(_, _, tls)| tls)),
    }
    // The dialer may finish its side of a TLS 1.3 handshake before the acceptor checks its
    // certificate; its first read then fails instead. Either way no link forms.
    if let Ok((mut stream, _)) = dialing {
        let mut buffer = BytesMut::new();
        assert!(read_frame(&mut stream, &mut buffer, WAIT).await.is_err());
    }

    // Trusting only another CA, the dialer refuses the acceptor's certificate.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let wary = member_tls(dir.path(), "three", &ca, &stranger, true, false);
    let (dialed, accepted) =
        tokio::join!(TcpStream::connect(addr), async { listener.accept().await.expect("accept") });
    let (dialing, _) = tokio::join!(
        dial(Some(&wary), dialed.expect("connect"), "127.0.0.1", WAIT),
        accept(Some(&good), accepted.0, accepted.1, WAIT)
    );
    match dialing {
        Err(PeerError::Tls(reason)) => {
            assert!(reason.contains("TLS handshake with 127.0.0.1 failed"), "{reason}")
        }
        other => panic!("{:?}", other.map(|(_, tls)| tls)),
    }
}

/// `sslQuorumReloadCertFiles`: a member whose certificate the others refuse gets a good one
/// written over its key store, and its next dial succeeds without a restart.
#[tokio::test]
async fn a_replaced_key_store_is_used_for_the_next_connection() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = TestCa::new("quorum CA");
    let stranger = TestCa::new("another CA");
    let listeners = PeerMember::listeners(2).await;
    let ports = PeerMember::ports(&listeners);
    let mut listeners = listeners.into_iter();
    let tls_one = member_tls(dir.path(), "one", &ca, &ca, true, false);
    // Member 2 starts with a certificate member 1 does not trust.
    let mut tls_two = member_tls(dir.path(), "two", &stranger, &ca, true, false);
    tls_two.reload = true;
    let mut one =
        PeerMember::start(1, &ports, secured(Some(tls_one), false), listeners.next().unwrap());
    let mut two =
        PeerMember::start(2, &ports, secured(Some(tls_two), false), listeners.next().unwrap());
    ca.leaf_cn("two").write_pem(dir.path(), "two.pem");
    exchange(&mut one, &mut two).await;
}
