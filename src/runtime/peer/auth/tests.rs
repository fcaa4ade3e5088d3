//! The authentication step on both sides, over loopback TCP, with a toy mechanism (the
//! DIGEST-MD5 one is tested with its adapter).

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::runtime::peer::{
    PeerAddress, PeerEvent, PeerLinks, PeerNetwork, PeerNetworkConfig, PeerSecurity, PeerTiming,
    PEER_EVENT_QUEUE_MAX,
};

const WAIT: Duration = Duration::from_secs(20);

/// A challenge-response toy: the server challenges with a nonce, the learner answers
/// `user:password:nonce`, the server's last challenge is `ok:user`, which the learner checks.
struct ToyLearner {
    user: String,
    password: String,
    complete: bool,
}

impl SaslLearner for ToyLearner {
    fn start(&mut self) -> Result<Vec<u8>, AuthFailure> {
        Ok(Vec::new())
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, AuthFailure> {
        if let Some(user) = challenge.strip_prefix(b"ok:") {
            if user != self.user.as_bytes() {
                return Err(AuthFailure("the server confirmed another user".into()));
            }
            self.complete = true;
            return Ok(None);
        }
        let nonce = String::from_utf8_lossy(challenge);
        Ok(Some(format!("{}:{}:{nonce}", self.user, self.password).into_bytes()))
    }

    fn is_complete(&self) -> bool {
        self.complete
    }
}

struct ToyServer {
    users: Vec<(String, String)>,
    user: Option<String>,
}

impl SaslServer for ToyServer {
    fn respond(&mut self, response: &[u8]) -> Result<Vec<u8>, AuthFailure> {
        if response.is_empty() {
            return Ok(b"n0nce".to_vec());
        }
        let text = String::from_utf8_lossy(response);
        let mut parts = text.splitn(3, ':');
        let (user, password, nonce) = (parts.next(), parts.next(), parts.next());
        let known = self
            .users
            .iter()
            .any(|(u, p)| Some(u.as_str()) == user && Some(p.as_str()) == password);
        if !known || nonce != Some("n0nce") {
            return Err(AuthFailure(format!("bad credentials for {}", user.unwrap_or(""))));
        }
        self.user = user.map(str::to_string);
        Ok(format!("ok:{}", user.unwrap_or("")).into_bytes())
    }

    fn is_complete(&self) -> bool {
        self.user.is_some()
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }
}

/// A member's quorum SASL: users `learner:secret`; this member's own password is `password`.
pub(crate) fn sasl(learner_require: bool, server_require: bool, password: &str) -> PeerSasl {
    let password = password.to_string();
    PeerSasl {
        learner_require,
        server_require,
        learner: Some(Arc::new(move || {
            Box::new(ToyLearner {
                user: "learner".into(),
                password: password.clone(),
                complete: false,
            })
        })),
        server: Arc::new(|| {
            Box::new(ToyServer { users: vec![("learner".into(), "secret".into())], user: None })
        }),
    }
}

/// Runs the dialer's and the acceptor's steps against each other on a loopback connection.
/// `None` for a side means `quorum.auth.enableSasl=false` there.
async fn handshake(
    learner: Option<PeerSasl>,
    server: Option<PeerSasl>,
) -> (Result<(), PeerError>, Result<Option<LinkFrame>, PeerError>, Option<LinkFrame>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (dialed, accepted) =
        tokio::join!(TcpStream::connect(("127.0.0.1", port)), listener.accept());
    let mut dialed: PeerStream = Box::new(dialed.expect("connect"));
    let mut accepted: PeerStream = Box::new(accepted.expect("accept").0);
    let (mut learner_buffer, mut server_buffer) = (BytesMut::new(), BytesMut::new());
    let dialer = learn(learner.as_ref(), &mut dialed, &mut learner_buffer, ServerId(1), WAIT);
    let acceptor = async {
        match &server {
            Some(sasl) => serve(sasl, &mut accepted, &mut server_buffer, ServerId(2), WAIT).await,
            None => Ok(None),
        }
    };
    let (learned, served) = tokio::join!(dialer, acceptor);
    // What the acceptor sent after the handshake, for the dialer to read once its link is up.
    drop(accepted);
    let after = read_frame(&mut dialed, &mut learner_buffer, WAIT).await.ok();
    (learned, served, after)
}

fn auth_error(result: Result<(), PeerError>) -> String {
    match result {
        Err(PeerError::Auth(reason)) => reason,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[tokio::test]
async fn right_credentials_authenticate_when_both_sides_require_it() {
    let (learned, served, _) =
        handshake(Some(sasl(true, true, "secret")), Some(sasl(true, true, "secret"))).await;
    learned.expect("the learner is accepted");
    assert_eq!(served.expect("the server accepts"), None);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_learner_is_told() {
    let (learned, served, _) =
        handshake(Some(sasl(true, true, "guess")), Some(sasl(true, true, "secret"))).await;
    let reason = auth_error(learned);
    assert!(reason.contains("server 1 refused our quorum credentials"), "{reason}");
    assert!(reason.contains("bad credentials for learner"), "{reason}");
    match served {
        Err(PeerError::Auth(reason)) => {
            assert!(reason.contains("server 2 failed quorum SASL"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// ZK compat: without `serverRequireSasl` the server keeps the connection despite a failure,
/// but the learner, which tried, drops it on the `Error` answer.
#[tokio::test]
async fn a_failure_without_server_require_is_let_through_by_the_server_but_not_the_learner() {
    let (learned, served, _) =
        handshake(Some(sasl(true, false, "guess")), Some(sasl(true, false, "secret"))).await;
    assert!(auth_error(learned).contains("refused our quorum credentials"));
    assert_eq!(served.expect("let through"), None);
}

#[tokio::test]
async fn missing_credentials_are_refused_only_where_the_server_requires_sasl() {
    // A member with quorum SASL off (or on without learnerRequireSasl) does not authenticate.
    for learner in [None, Some(sasl(false, false, "secret"))] {
        let (learned, served, after) =
            handshake(learner.clone(), Some(sasl(true, true, "secret"))).await;
        learned.expect("the learner does not try");
        match served {
            Err(PeerError::Auth(reason)) => assert!(
                reason.contains("did not authenticate and quorum.auth.serverRequireSasl=true"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // The refusal says why, for the refused member's log.
        match after {
            Some(LinkFrame::Auth { status: AuthStatus::Error, token }) => {
                assert!(String::from_utf8_lossy(&token).contains("requires quorum SASL"))
            }
            other => panic!("{other:?}"),
        }

        // The rolling switch's first two steps: the server does not insist yet.
        let (learned, served, _) = handshake(learner, Some(sasl(true, false, "secret"))).await;
        learned.expect("no SASL");
        assert_eq!(served.expect("let through"), None);
    }
}

/// Two members started with `PeerNetwork`, the given SASL each; member 2 dials member 1.
async fn pair(one: Option<PeerSasl>, two: Option<PeerSasl>) -> (PeerMember, PeerMember) {
    let listeners = PeerMember::listeners(2).await;
    let ports = PeerMember::ports(&listeners);
    let [first, second] = <[TcpListener; 2]>::try_from(listeners).expect("two");
    let one = PeerMember::start(1, &ports, PeerSecurity { sasl: one, tls: None }, first);
    let two = PeerMember::start(2, &ports, PeerSecurity { sasl: two, tls: None }, second);
    (one, two)
}

/// A member running `PeerNetwork` on loopback, and what its node loop would see.
pub(crate) struct PeerMember {
    _network: PeerNetwork,
    pub(crate) events: tokio::sync::mpsc::Receiver<PeerEvent>,
    pub(crate) links: PeerLinks,
    pub(crate) inputs: std::collections::VecDeque<crate::core::io::Input>,
}

impl PeerMember {
    pub(crate) async fn listeners(count: usize) -> Vec<TcpListener> {
        let mut listeners = Vec::new();
        for _ in 0..count {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        listeners
    }

    pub(crate) fn ports(listeners: &[TcpListener]) -> Vec<u16> {
        listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect()
    }

    /// Member `me` of the members on `ports` (ids 1, 2, ... in order).
    pub(crate) fn start(
        me: u64,
        ports: &[u16],
        security: PeerSecurity,
        listener: TcpListener,
    ) -> Self {
        let address = |port: u16| PeerAddress { host: "127.0.0.1".into(), port };
        let config = PeerNetworkConfig {
            me: ServerId(me),
            listen: address(ports[me as usize - 1]),
            peers: (1..=ports.len() as u64)
                .filter(|id| *id != me)
                .map(|id| (ServerId(id), address(ports[id as usize - 1])))
                .collect(),
            timing: PeerTiming {
                heartbeat_interval: Duration::from_millis(50),
                idle_timeout: Duration::from_secs(5),
                send_queue_max: 64,
            },
        };
        let (tx, events) = tokio::sync::mpsc::channel(PEER_EVENT_QUEUE_MAX);
        let network =
            PeerNetwork::with_listener_secured(config, security, listener, tx).expect("start");
        PeerMember {
            _network: network,
            events,
            links: PeerLinks::default(),
            inputs: Default::default(),
        }
    }

    /// The next input the node would see.
    pub(crate) async fn input(&mut self) -> crate::core::io::Input {
        loop {
            if let Some(input) = self.inputs.pop_front() {
                return input;
            }
            let event = tokio::time::timeout(WAIT, self.events.recv())
                .await
                .expect("an event in time")
                .expect("running");
            self.links.on_event(event, &mut self.inputs);
        }
    }
}

#[tokio::test]
async fn authenticated_members_link_up_and_exchange_messages() {
    use crate::core::ids::Zxid;
    use crate::core::io::Input;
    use crate::core::zab::PeerMsg;

    let (mut one, mut two) =
        pair(Some(sasl(true, true, "secret")), Some(sasl(true, true, "secret"))).await;
    assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
    assert_eq!(two.input().await, Input::PeerLinkUp { peer: ServerId(1) });
    let ack = PeerMsg::Ack { zxid: Zxid(7) };
    two.links.send(ServerId(1), ack.clone(), &mut two.inputs);
    assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: ack.clone() });
    one.links.send(ServerId(2), ack.clone(), &mut one.inputs);
    assert_eq!(two.input().await, Input::PeerMessage { from: ServerId(1), msg: ack });
}

/// Member 2 requires SASL of itself as a learner; member 1 has quorum SASL off. Member 1 sees
/// the link come up (it does not read the first frame) and go down on the unexpected token;
/// member 2 never sees it up.
#[tokio::test]
async fn a_learner_that_requires_sasl_is_refused_by_a_member_without_it() {
    use crate::core::io::Input;

    let (mut one, mut two) = pair(None, Some(sasl(true, false, "secret"))).await;
    assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
    assert_eq!(one.input().await, Input::PeerLinkDown { peer: ServerId(2) });
    assert!(two.inputs.is_empty() && two.events.try_recv().is_err());
}
