//! Tests of the peer links: the frame codec (round trips, bounds, arbitrary bytes), the node
//! loop's link table, and real links between members on 127.0.0.1 (handshake, refusal of
//! strangers, a restart seen as down then up).

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::core::ids::{SessionId, Zxid};
use crate::core::zab::{PeerState, Vote};

fn sample_messages() -> Vec<PeerMsg> {
    vec![
        PeerMsg::Notification {
            vote: Vote { leader: ServerId(3), zxid: Zxid::new(2, 7), epoch: 2 },
            round: 4,
            state: PeerState::Looking,
        },
        PeerMsg::Ack { zxid: Zxid::new(1, 1) },
        PeerMsg::Ping { sessions: vec![SessionId(1), SessionId(-5)] },
        PeerMsg::Snap {
            zxid: Zxid::new(1, 2),
            body: SnapBody::Encoded(Bytes::from(vec![7u8; 5_000])),
            txns: Vec::new(),
            committed: Zxid::new(1, 2),
        },
    ]
}

fn encoded(frame: &LinkFrame) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out).expect("encodes");
    out
}

#[test]
fn frames_round_trip_one_at_a_time_and_back_to_back() {
    let mut frames =
        vec![LinkFrame::Hello { from: ServerId(2), to: ServerId(1) }, LinkFrame::Heartbeat];
    frames.extend(sample_messages().into_iter().map(LinkFrame::Message));
    let mut stream = BytesMut::new();
    for frame in &frames {
        let mut one = encoded(frame);
        assert_eq!(one[4], PEER_PROTOCOL_VERSION);
        let len = u32::from_be_bytes([one[0], one[1], one[2], one[3]]) as usize;
        assert_eq!(len, one.len() - 4);
        stream.extend_from_slice(&one);
        assert_eq!(decode_frame(&mut one), Ok(Some(frame.clone())));
        assert!(one.is_empty());
    }
    for frame in &frames {
        assert_eq!(decode_frame(&mut stream), Ok(Some(frame.clone())));
    }
    assert_eq!(decode_frame(&mut stream), Ok(None));
}

#[test]
fn a_partial_frame_waits_for_the_rest() {
    let whole = encoded(&LinkFrame::Message(PeerMsg::Commit { zxid: Zxid::new(3, 9) }));
    let mut buffer = BytesMut::new();
    for byte in &whole[..whole.len() - 1] {
        buffer.extend_from_slice(&[*byte]);
        assert_eq!(decode_frame(&mut buffer), Ok(None));
    }
    buffer.extend_from_slice(&whole[whole.len() - 1..]);
    assert_eq!(
        decode_frame(&mut buffer),
        Ok(Some(LinkFrame::Message(PeerMsg::Commit { zxid: Zxid::new(3, 9) })))
    );
}

#[test]
fn bad_lengths_versions_and_payloads_are_refused() {
    let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert_eq!(decode_frame(&mut empty), Err(FrameError::Empty));

    let huge = (PEER_FRAME_MAX_BYTES as u32 + 1).to_be_bytes();
    let mut too_large = BytesMut::from(&huge[..]);
    let max = PEER_FRAME_MAX_BYTES;
    assert_eq!(decode_frame(&mut too_large), Err(FrameError::TooLarge { len: max + 1, max }));

    let mut other_version = encoded(&LinkFrame::Heartbeat);
    other_version[4] = PEER_PROTOCOL_VERSION + 1;
    assert_eq!(
        decode_frame(&mut other_version),
        Err(FrameError::Version(PEER_PROTOCOL_VERSION + 1))
    );

    // A valid frame with one byte of garbage appended inside the length.
    let mut trailing = encoded(&LinkFrame::Heartbeat);
    trailing.extend_from_slice(&[0]);
    let len = (trailing.len() - 4) as u32;
    trailing[..4].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(decode_frame(&mut trailing), Err(FrameError::Decode(_))));

    // A handshake frame larger than a hello is refused before it is buffered.
    let mut big = encoded(&LinkFrame::Message(sample_messages().pop().expect("snap")));
    assert!(matches!(
        decode_frame_within(&mut big, HELLO_FRAME_MAX_BYTES),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn a_snap_body_goes_in_chunks_and_comes_back_whole() {
    let body = Bytes::from((0..20u8).collect::<Vec<u8>>());
    let pieces: Vec<Bytes> = chunks(&body, 8).collect();
    assert_eq!(pieces.iter().map(Bytes::len).collect::<Vec<_>>(), [8, 8, 4]);
    let mut assembly = SnapAssembly::default();
    let snap = |body| PeerMsg::Snap { zxid: Zxid(5), body, txns: Vec::new(), committed: Zxid(5) };
    // Other messages pass through untouched, chunks or not.
    assert_eq!(assembly.complete(ping_message()), ping_message());
    for piece in &pieces {
        assembly.add(piece).expect("within the limit");
    }
    assert_eq!(assembly.complete(ping_message()), ping_message());
    let whole = assembly.complete(snap(SnapBody::Encoded(Bytes::new())));
    assert_eq!(whole, snap(SnapBody::Encoded(body)));
    // The parts are used up: a later empty SNAP stays empty.
    let empty = snap(SnapBody::Encoded(Bytes::new()));
    assert_eq!(assembly.complete(empty.clone()), empty);
}

fn ping_message() -> PeerMsg {
    PeerMsg::Ping { sessions: vec![SessionId(3)] }
}

#[test]
fn an_oversized_message_is_not_encoded() {
    let body = SnapBody::Encoded(Bytes::from(vec![0u8; PEER_FRAME_MAX_BYTES]));
    let snap = PeerMsg::Snap { zxid: Zxid::ZERO, body, txns: Vec::new(), committed: Zxid::ZERO };
    let mut out = BytesMut::new();
    assert!(matches!(
        encode_frame(&LinkFrame::Message(snap), &mut out),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(out.is_empty(), "nothing half-written");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut buffer = BytesMut::from(&bytes[..]);
        // Decode until the bytes run out or are refused; either way, no panic.
        for _ in 0..bytes.len() + 1 {
            match decode_frame(&mut buffer) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn acks_and_pings_round_trip(counter in any::<u32>(), epoch in any::<u32>(), sessions in proptest::collection::vec(any::<i64>(), 0..20)) {
        for msg in [
            PeerMsg::Ack { zxid: Zxid::new(epoch, counter) },
            PeerMsg::Ping { sessions: sessions.iter().copied().map(SessionId).collect() },
        ] {
            let frame = LinkFrame::Message(msg);
            let mut buffer = encoded(&frame);
            prop_assert_eq!(decode_frame(&mut buffer), Ok(Some(frame)));
        }
    }
}

/// A link sender as the link task would hand it over, with the task's ends.
fn link(id: u64, queue_max: usize) -> (LinkSender, mpsc::Receiver<PeerMsg>, oneshot::Receiver<()>) {
    let (queue, outgoing) = mpsc::channel(queue_max);
    let (close, closed) = oneshot::channel();
    (LinkSender { link: LinkId(id), queue, _close: close }, outgoing, closed)
}

fn ping() -> PeerMsg {
    PeerMsg::Ping { sessions: Vec::new() }
}

#[test]
fn the_node_sees_only_messages_of_the_current_link_between_its_up_and_down() {
    let peer = ServerId(2);
    let mut links = PeerLinks::default();
    let mut inputs = VecDeque::new();
    // A message of a link the node never heard of is dropped.
    links.on_event(PeerEvent::Message { peer, link: LinkId(1), msg: ping() }, &mut inputs);
    assert!(inputs.is_empty());

    let (sender, _outgoing, _closed) = link(1, 8);
    links.on_event(PeerEvent::Up { peer, sender }, &mut inputs);
    links.on_event(PeerEvent::Message { peer, link: LinkId(1), msg: ping() }, &mut inputs);
    links.on_event(PeerEvent::Down { peer, link: LinkId(1) }, &mut inputs);
    // Late events of the broken link change nothing.
    links.on_event(PeerEvent::Message { peer, link: LinkId(1), msg: ping() }, &mut inputs);
    links.on_event(PeerEvent::Down { peer, link: LinkId(1) }, &mut inputs);
    assert_eq!(
        Vec::from(inputs),
        vec![
            Input::PeerLinkUp { peer },
            Input::PeerMessage { from: peer, msg: ping() },
            Input::PeerLinkDown { peer },
        ]
    );
    assert_eq!(links.current(peer), None);
}

#[test]
fn a_newer_link_replaces_the_current_one_with_down_then_up_and_closes_the_old() {
    let peer = ServerId(3);
    let mut links = PeerLinks::default();
    let mut inputs = VecDeque::new();
    let (first, _outgoing1, mut closed1) = link(1, 8);
    let (second, mut outgoing2, _closed2) = link(2, 8);
    links.on_event(PeerEvent::Up { peer, sender: first }, &mut inputs);
    links.on_event(PeerEvent::Up { peer, sender: second }, &mut inputs);
    assert_eq!(closed1.try_recv(), Err(oneshot::error::TryRecvError::Closed), "old link closed");
    // The old link's last words and its end are stale now.
    links.on_event(PeerEvent::Message { peer, link: LinkId(1), msg: ping() }, &mut inputs);
    links.on_event(PeerEvent::Down { peer, link: LinkId(1) }, &mut inputs);
    assert_eq!(
        inputs.drain(..).collect::<Vec<_>>(),
        vec![Input::PeerLinkUp { peer }, Input::PeerLinkDown { peer }, Input::PeerLinkUp { peer },]
    );
    assert_eq!(links.current(peer), Some(LinkId(2)));
    links.send(peer, ping(), &mut inputs);
    assert_eq!(outgoing2.try_recv().ok(), Some(ping()), "sends go to the new link");
}

#[test]
fn a_full_send_queue_breaks_the_link_instead_of_blocking() {
    let peer = ServerId(1);
    let mut links = PeerLinks::default();
    let mut inputs = VecDeque::new();
    let (sender, mut outgoing, mut closed) = link(5, 2);
    links.on_event(PeerEvent::Up { peer, sender }, &mut inputs);
    inputs.clear();
    links.send(peer, PeerMsg::Ack { zxid: Zxid(1) }, &mut inputs);
    links.send(peer, PeerMsg::Ack { zxid: Zxid(2) }, &mut inputs);
    assert!(inputs.is_empty());
    links.send(peer, PeerMsg::Ack { zxid: Zxid(3) }, &mut inputs);
    assert_eq!(inputs.drain(..).collect::<Vec<_>>(), vec![Input::PeerLinkDown { peer }]);
    assert_eq!(closed.try_recv(), Err(oneshot::error::TryRecvError::Closed));
    // Sent while down: dropped, and no second down.
    links.send(peer, PeerMsg::Ack { zxid: Zxid(4) }, &mut inputs);
    assert!(inputs.is_empty());
    assert_eq!(outgoing.try_recv().ok(), Some(PeerMsg::Ack { zxid: Zxid(1) }));
    assert_eq!(outgoing.try_recv().ok(), Some(PeerMsg::Ack { zxid: Zxid(2) }));
    assert!(outgoing.try_recv().is_err(), "the queue is closed after what was accepted");
    // The link task's own `Down` for it is stale.
    links.on_event(PeerEvent::Down { peer, link: LinkId(5) }, &mut inputs);
    assert!(inputs.is_empty());
}

#[test]
fn the_larger_id_dials() {
    let config = ServerConfig::parse(
        "initLimit=10\nsyncLimit=5\ntickTime=100\ndataDir=/d\nserver.1=127.0.0.1:11:12\n\
         server.2=127.0.0.1:21:22\nserver.3=127.0.0.1:31:32:observer",
    )
    .expect("valid");
    let two = PeerNetworkConfig::from_server_config(&config, ServerId(2)).expect("member");
    assert_eq!(two.listen, PeerAddress { host: "127.0.0.1".into(), port: 21 });
    assert_eq!(two.peers.keys().copied().collect::<Vec<_>>(), vec![ServerId(1), ServerId(3)]);
    assert!(two.dials(ServerId(1)));
    assert!(!two.dials(ServerId(3)));
    assert_eq!(two.timing.idle_timeout, Duration::from_millis(500));
    assert_eq!(two.timing.heartbeat_interval, Duration::from_millis(50));
    assert!(PeerNetworkConfig::from_server_config(&config, ServerId(9)).is_none());
    let standalone = ServerConfig::parse("dataDir=/d\nclientPort=2181").expect("valid");
    assert!(PeerNetworkConfig::from_server_config(&standalone, ServerId(0)).is_none());
}

/// Real links on 127.0.0.1 between members started with `PeerNetwork`.
#[cfg(not(madsim))]
mod sockets {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    struct Member {
        network: Option<PeerNetwork>,
        events: mpsc::Receiver<PeerEvent>,
        links: PeerLinks,
        inputs: VecDeque<Input>,
    }

    impl Member {
        /// Waits for the next input the node would see.
        async fn input(&mut self) -> Input {
            loop {
                if let Some(input) = self.inputs.pop_front() {
                    return input;
                }
                let event = tokio::time::timeout(WAIT, self.events.recv())
                    .await
                    .expect("an event in time")
                    .expect("the network is running");
                self.links.on_event(event, &mut self.inputs);
            }
        }
    }

    fn timing() -> PeerTiming {
        PeerTiming {
            heartbeat_interval: Duration::from_millis(50),
            idle_timeout: Duration::from_secs(5),
            send_queue_max: 1_024,
        }
    }

    async fn listeners(count: usize) -> Vec<TcpListener> {
        let mut listeners = Vec::new();
        for _ in 0..count {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        listeners
    }

    fn config_of(me: u64, ports: &[u16]) -> PeerNetworkConfig {
        let address = |port: u16| PeerAddress { host: "127.0.0.1".into(), port };
        let peers = (1..=ports.len() as u64)
            .filter(|id| *id != me)
            .map(|id| (ServerId(id), address(ports[id as usize - 1])))
            .collect();
        PeerNetworkConfig {
            me: ServerId(me),
            listen: address(ports[me as usize - 1]),
            peers,
            timing: timing(),
        }
    }

    fn start(config: PeerNetworkConfig, listener: TcpListener) -> Member {
        let (tx, events) = mpsc::channel(PEER_EVENT_QUEUE_MAX);
        let network = PeerNetwork::with_listener(config, listener, tx).expect("start");
        Member {
            network: Some(network),
            events,
            links: PeerLinks::default(),
            inputs: VecDeque::new(),
        }
    }

    /// Members 1 and 2 on fresh ports, linked up (each has seen the other's link come up).
    async fn linked_pair() -> (Vec<u16>, Member, Member) {
        let listeners = listeners(2).await;
        let ports: Vec<u16> =
            listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect();
        let mut listeners = listeners.into_iter();
        let mut one = start(config_of(1, &ports), listeners.next().expect("1"));
        let mut two = start(config_of(2, &ports), listeners.next().expect("2"));
        assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
        assert_eq!(two.input().await, Input::PeerLinkUp { peer: ServerId(1) });
        (ports, one, two)
    }

    #[tokio::test]
    async fn two_members_link_up_exchange_in_order_and_see_a_restart_as_down_then_up() {
        let (ports, mut one, mut two) = linked_pair().await;

        for counter in 1..=100 {
            two.links.send(ServerId(1), PeerMsg::Ack { zxid: Zxid(counter) }, &mut two.inputs);
        }
        assert!(two.inputs.is_empty());
        for counter in 1..=100 {
            let expected = PeerMsg::Ack { zxid: Zxid(counter) };
            assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: expected });
        }

        // Member 2 goes away (its network and links drop, as when its process dies)...
        drop(two.network.take());
        drop(two);
        assert_eq!(one.input().await, Input::PeerLinkDown { peer: ServerId(2) });
        // ... and comes back on the same port: it dials again.
        let listener = TcpListener::bind(("127.0.0.1", ports[1])).await.expect("rebind");
        let mut two = start(config_of(2, &ports), listener);
        assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
        assert_eq!(two.input().await, Input::PeerLinkUp { peer: ServerId(1) });
        one.links.send(ServerId(2), ping(), &mut one.inputs);
        assert_eq!(two.input().await, Input::PeerMessage { from: ServerId(1), msg: ping() });
    }

    #[tokio::test]
    async fn a_snap_image_arrives_encoded_in_chunks_between_ordinary_messages() {
        use crate::core::snapshot::SnapshotImage;
        use crate::core::tree::DataTree;
        use crate::core::txn::{Txn, TxnOp};
        use crate::wire::types::Acl;

        // Three chunks' worth of data: 20 znodes of 1 MiB.
        let mut tree = DataTree::new();
        for counter in 1..=20u32 {
            let op = TxnOp::Create {
                path: format!("/n{counter}"),
                data: Some(Bytes::from(vec![counter as u8; 1 << 20])),
                acl: Acl::open_unsafe().into(),
                ephemeral_owner: 0,
            };
            let txn =
                Txn { zxid: Zxid::new(1, counter), session: SessionId(1), cxid: 0, time_ms: 0, op };
            tree.apply(&txn, &mut Vec::new());
        }
        let zxid = tree.zxid_applied();
        let image = SnapshotImage::new(zxid, &tree, vec![(SessionId(9), 4_000, [1; 16])]);
        let encoded = image.encode();
        assert!(encoded.len() > 2 * SNAP_CHUNK_BYTES);

        let (_, mut one, mut two) = linked_pair().await;

        let snap = |body| PeerMsg::Snap { zxid, body, txns: Vec::new(), committed: zxid };
        two.links.send(ServerId(1), ping(), &mut two.inputs);
        two.links.send(ServerId(1), snap(SnapBody::Image(image)), &mut two.inputs);
        two.links.send(ServerId(1), ping(), &mut two.inputs);
        assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: ping() });
        let expected = snap(SnapBody::Encoded(encoded));
        assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: expected });
        assert_eq!(one.input().await, Input::PeerMessage { from: ServerId(2), msg: ping() });
    }

    /// Connects to `port` as a stranger, sends `hello`, and returns whether the member closed
    /// the connection without answering.
    async fn refused(port: u16, hello: LinkFrame) -> bool {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let mut out = BytesMut::new();
        encode_frame(&hello, &mut out).expect("encode");
        stream.write_all(&out).await.expect("write");
        let mut buffer = BytesMut::new();
        let answer = read_frame(&mut stream, &mut buffer, WAIT).await;
        matches!(answer, Err(PeerError::Closed) | Err(PeerError::Io { .. }))
    }

    #[tokio::test]
    async fn connections_claiming_ids_the_configuration_does_not_allow_are_dropped() {
        let listeners = listeners(3).await;
        let ports: Vec<u16> =
            listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect();
        // Only member 2 runs; members 1 and 3 are configured but absent.
        let listener = listeners.into_iter().nth(1).expect("2");
        let mut two = start(config_of(2, &ports), listener);
        let port = ports[1];
        assert!(refused(port, LinkFrame::Hello { from: ServerId(9), to: ServerId(2) }).await);
        assert!(refused(port, LinkFrame::Hello { from: ServerId(3), to: ServerId(1) }).await);
        // Member 1 has the smaller id: member 2 dials it, never the other way round.
        assert!(refused(port, LinkFrame::Hello { from: ServerId(1), to: ServerId(2) }).await);
        assert!(refused(port, LinkFrame::Heartbeat).await);
        assert!(two.inputs.is_empty());
        assert!(two.events.try_recv().is_err(), "no link came up");

        // The configured larger id is welcome, and gets member 2's hello back.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let mut out = BytesMut::new();
        encode_frame(&LinkFrame::Hello { from: ServerId(3), to: ServerId(2) }, &mut out)
            .expect("encode");
        stream.write_all(&out).await.expect("write");
        let mut buffer = BytesMut::new();
        let answer = read_frame(&mut stream, &mut buffer, WAIT).await.expect("answer");
        assert_eq!(answer, LinkFrame::Hello { from: ServerId(2), to: ServerId(3) });
        assert_eq!(two.input().await, Input::PeerLinkUp { peer: ServerId(3) });
        drop(stream);
        assert_eq!(two.input().await, Input::PeerLinkDown { peer: ServerId(3) });
    }

    #[tokio::test]
    async fn a_silent_peer_is_declared_down_after_the_idle_timeout() {
        let listeners = listeners(2).await;
        let ports: Vec<u16> =
            listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect();
        let mut config = config_of(1, &ports);
        config.timing.idle_timeout = Duration::from_millis(300);
        let mut one = start(config, listeners.into_iter().next().expect("1"));
        // Member 2 handshakes and then says nothing, not even heartbeats.
        let mut stream = TcpStream::connect(("127.0.0.1", ports[0])).await.expect("connect");
        let mut out = BytesMut::new();
        encode_frame(&LinkFrame::Hello { from: ServerId(2), to: ServerId(1) }, &mut out)
            .expect("encode");
        stream.write_all(&out).await.expect("write");
        assert_eq!(one.input().await, Input::PeerLinkUp { peer: ServerId(2) });
        assert_eq!(one.input().await, Input::PeerLinkDown { peer: ServerId(2) });
        drop(stream);
    }
}
