//! Tests that drive one `Node` through its inputs and assert the exact effects it produces.

use ::core::net::SocketAddr;

use bytes::Bytes;

use crate::core::config::NodeConfig;
use crate::core::ids::{ConnId, WriteId};
use crate::core::io::{DurableWrite, Effect, Input};
use crate::core::time::Now;
use crate::core::txn::{Txn, TxnOp};
use crate::core::Node;
use crate::wire;
use crate::wire::proto::*;
use crate::wire::types::{Acl, ErrorCode, EventType};

struct Harness {
    node: Node,
    now: Now,
    log: Vec<Txn>,
    snapshots: Vec<Bytes>,
    write_last: WriteId,
}

/// A decoded server frame.
#[derive(Debug)]
enum Out {
    Connected(ConnectResponse),
    Reply(ReplyHeader, Bytes),
    Event(WatcherEvent),
    Closed,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(NodeConfig {
            tick_time_ms: 100,
            session_timeout_min_ms: 200,
            ..NodeConfig::standalone()
        })
    }

    fn with(config: NodeConfig) -> Harness {
        let now = Now { mono_ms: 1_000, wall_ms: 1_700_000_000_000 };
        Harness {
            node: Node::new(config, now),
            now,
            log: Vec::new(),
            snapshots: Vec::new(),
            write_last: WriteId(0),
        }
    }

    fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.node.step(self.now, input, &mut effects);
        for effect in &effects {
            if let Effect::Write { id, write } = effect {
                assert!(*id > self.write_last, "write ids must increase");
                self.write_last = *id;
                match write {
                    DurableWrite::Append(txn) => self.log.push(txn.clone()),
                    DurableWrite::Snapshot { image, .. } => self.snapshots.push(image.encode()),
                    _ => {}
                }
            }
        }
        effects
    }

    /// Reports every write so far as durable.
    fn persist(&mut self) -> Vec<Effect> {
        self.step(Input::Persisted { up_to: self.write_last })
    }

    fn advance(&mut self, ms: u64) -> Vec<Effect> {
        self.now = self.now.plus_ms(ms);
        self.step(Input::Tick)
    }

    fn open(&mut self, conn: u64) {
        let addr: SocketAddr = "127.0.0.1:40000".parse().expect("literal address");
        assert!(self.step(Input::ClientConnected { conn: ConnId(conn), addr }).is_empty());
    }

    fn send_frame(&mut self, conn: u64, framed: Bytes) -> Vec<Effect> {
        let frame = framed.slice(4..);
        self.step(Input::ClientFrame { conn: ConnId(conn), frame })
    }

    fn connect(&mut self, conn: u64, session_id: i64, password: Bytes) -> Vec<Effect> {
        self.open(conn);
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 1_000,
            session_id,
            password,
            read_only: Some(false),
        };
        self.send_frame(conn, wire::encode_connect_request(&request))
    }

    /// Opens a connection with a new session, persisting the createSession txn.
    fn session(&mut self, conn: u64) -> ConnectResponse {
        let before = self.connect(conn, 0, Bytes::from_static(&[0; 16]));
        assert!(frames(&before, conn).is_empty(), "no ConnectResponse before the txn is durable");
        match frames(&self.persist(), conn).as_slice() {
            [Out::Connected(response)] => response.clone(),
            other => panic!("expected a ConnectResponse, got {other:?}"),
        }
    }

    fn request(&mut self, conn: u64, xid: i32, request: &Request) -> Vec<Effect> {
        self.send_frame(conn, wire::encode_request(xid, request))
    }

    /// Sends a request, persists whatever it wrote, and returns the frames `conn` got.
    fn call(&mut self, conn: u64, xid: i32, request: &Request) -> Vec<Out> {
        let mut effects = self.request(conn, xid, request);
        effects.extend(self.persist());
        frames(&effects, conn)
    }
}

fn frames(effects: &[Effect], conn: u64) -> Vec<Out> {
    let mut out = Vec::new();
    for effect in effects {
        match effect {
            Effect::SendClient { conn: c, frame } if c.0 == conn => {
                let payload = frame.slice(4..);
                if let Ok(response) = wire::decode_connect_response(&payload) {
                    if payload.len() >= 36 && payload.len() <= 37 {
                        out.push(Out::Connected(response));
                        continue;
                    }
                }
                let (header, body) = wire::decode_reply_header(&payload).expect("reply header");
                if header.xid == -1 {
                    out.push(Out::Event(wire::decode_notification(body).expect("event")));
                } else {
                    out.push(Out::Reply(header, body));
                }
            }
            Effect::CloseClient { conn: c } if c.0 == conn => out.push(Out::Closed),
            _ => {}
        }
    }
    out
}

fn create(path: &str, data: &'static [u8], flags: i32) -> Request {
    Request::Create(
        CreateKind::Create,
        CreateRequest {
            path: path.to_string(),
            data: Some(Bytes::from_static(data)),
            acl: Acl::open_unsafe(),
            flags,
            ttl: None,
        },
    )
}

fn reply_of(out: &[Out], xid: i32) -> (ReplyHeader, Bytes) {
    out.iter()
        .find_map(|o| match o {
            Out::Reply(h, b) if h.xid == xid => Some((*h, b.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply for xid {xid} in {out:?}"))
}

#[test]
fn a_write_is_answered_only_after_it_is_durable() {
    let mut h = Harness::new();
    h.session(1);
    let effects = h.request(1, 1, &create("/a", b"x", 0));
    assert!(frames(&effects, 1).is_empty(), "no reply before Persisted");
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Write { write: DurableWrite::Append(_), .. })));
    let out = frames(&h.persist(), 1);
    let (header, body) = reply_of(&out, 1);
    assert_eq!(header.err, 0);
    assert_eq!(
        wire::decode_response(1, body).expect("create response"),
        Response::Create { path: "/a".into() }
    );
}

#[test]
fn a_read_waits_behind_an_earlier_write_of_its_connection() {
    let mut h = Harness::new();
    h.session(1);
    h.request(1, 1, &create("/a", b"x", 0));
    let early = h.request(1, 2, &Request::GetData { path: "/a".into(), watch: false });
    assert!(frames(&early, 1).is_empty(), "the read must not overtake the write");
    let out = frames(&h.persist(), 1);
    let xids: Vec<i32> = out
        .iter()
        .filter_map(|o| match o {
            Out::Reply(h, _) => Some(h.xid),
            _ => None,
        })
        .collect();
    assert_eq!(xids, vec![1, 2]);
    let (header, body) = reply_of(&out, 2);
    assert_eq!(header.err, 0, "the read sees the write");
    match wire::decode_response(4, body).expect("getData response") {
        Response::GetData { data, .. } => assert_eq!(data.as_deref(), Some(&b"x"[..])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_watch_event_precedes_the_reply_to_the_write_that_fired_it() {
    let mut h = Harness::new();
    h.session(1);
    h.session(2);
    let out = h.call(2, 1, &Request::Exists { path: "/w".into(), watch: true });
    assert_eq!(reply_of(&out, 1).0.err, ErrorCode::NoNode.code());
    let mut effects = h.request(1, 1, &create("/w", b"", 0));
    effects.extend(h.persist());
    match frames(&effects, 2).as_slice() {
        [Out::Event(event)] => {
            assert_eq!(event.event_type, EventType::NodeCreated.code());
            assert_eq!(event.path, "/w");
        }
        other => panic!("expected one NodeCreated event, got {other:?}"),
    }
    // One-shot: a second change does not fire again.
    let mut effects =
        h.request(1, 2, &Request::SetData { path: "/w".into(), data: None, version: -1 });
    effects.extend(h.persist());
    assert!(frames(&effects, 2).is_empty());
}

#[test]
fn failed_writes_take_a_zxid_and_report_zookeepers_error_codes() {
    let mut h = Harness::new();
    h.session(1);
    assert_eq!(reply_of(&h.call(1, 1, &create("/a", b"", 0)), 1).0.err, 0);
    let dup = h.call(1, 2, &create("/a", b"", 0));
    assert_eq!(reply_of(&dup, 2).0.err, ErrorCode::NodeExists.code());
    let orphan = h.call(1, 3, &create("/x/y", b"", 0));
    assert_eq!(reply_of(&orphan, 3).0.err, ErrorCode::NoNode.code());
    let stale = h.call(1, 4, &Request::SetData { path: "/a".into(), data: None, version: 7 });
    assert_eq!(reply_of(&stale, 4).0.err, ErrorCode::BadVersion.code());
    let builtin = h.call(1, 5, &Request::Delete { path: "/zookeeper".into(), version: -1 });
    assert_eq!(reply_of(&builtin, 5).0.err, ErrorCode::BadArguments.code());
    let errors = h.log.iter().filter(|t| matches!(t.op, TxnOp::Error { .. })).count();
    assert_eq!(errors, 4, "every failed write is logged as an error txn, as ZooKeeper does");
}

#[test]
fn sequential_suffixes_come_from_the_parents_creation_count() {
    let mut h = Harness::new();
    h.session(1);
    h.call(1, 1, &create("/q", b"", 0));
    h.call(1, 2, &create("/q/plain", b"", 0));
    h.call(1, 3, &Request::Delete { path: "/q/plain".into(), version: -1 });
    let out = h.call(1, 4, &create("/q/item-", b"", 2));
    let (header, body) = reply_of(&out, 4);
    assert_eq!(header.err, 0);
    assert_eq!(
        wire::decode_response(1, body).expect("create response"),
        Response::Create { path: "/q/item-0000000001".into() },
        "creations (not deletions) advance the counter"
    );
}

#[test]
fn multi_is_all_or_nothing_with_zookeepers_per_op_results() {
    let mut h = Harness::new();
    h.session(1);
    let ops = vec![
        MultiOp::Create(
            CreateKind::Create,
            CreateRequest {
                path: "/m".into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl: None,
            },
        ),
        MultiOp::Check { path: "/m".into(), version: 0 },
        MultiOp::Delete { path: "/missing".into(), version: -1 },
        MultiOp::SetData { path: "/m".into(), data: None, version: -1 },
    ];
    let out = h.call(1, 1, &Request::Multi(ops));
    let (header, body) = reply_of(&out, 1);
    assert_eq!(header.err, 0, "a failed multi still has err 0 in the header");
    let codes = vec![
        OpResult::Error { err: 0 },
        OpResult::Error { err: 0 },
        OpResult::Error { err: ErrorCode::NoNode.code() },
        OpResult::Error { err: ErrorCode::RuntimeInconsistency.code() },
    ];
    assert_eq!(wire::decode_response(14, body).expect("multi response"), Response::Multi(codes));
    assert!(h.node.tree().stat("/m").is_none(), "rolled back");
}

#[test]
fn unknown_opcodes_get_unimplemented_with_zxid_minus_one_and_are_disconnected() {
    let mut h = Harness::new();
    h.session(1);
    let mut frame = bytes::BytesMut::new();
    frame.extend_from_slice(&8i32.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&10i32.to_be_bytes());
    let out = frames(&h.send_frame(1, frame.freeze()), 1);
    match out.as_slice() {
        [Out::Reply(header, _), Out::Closed] => {
            assert_eq!(
                (header.xid, header.zxid, header.err),
                (7, -1, ErrorCode::Unimplemented.code())
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_before_the_handshake_closes_only_that_connection() {
    let mut h = Harness::new();
    h.session(1);
    h.open(2);
    let effects =
        h.step(Input::ClientFrame { conn: ConnId(2), frame: Bytes::from_static(b"\x01\x02") });
    assert_eq!(effects, vec![Effect::CloseClient { conn: ConnId(2) }]);
    assert_eq!(reply_of(&h.call(1, 1, &create("/still", b"", 0)), 1).0.err, 0);
}

#[test]
fn an_expired_session_loses_its_ephemerals_and_a_reconnect_is_refused() {
    let mut h = Harness::new();
    let session = h.session(1);
    h.session(2);
    h.call(2, 1, &Request::Exists { path: "/e".into(), watch: true });
    h.call(1, 1, &create("/e", b"", 1));
    h.call(2, 2, &Request::Exists { path: "/e".into(), watch: true });
    // Session 2 keeps pinging; session 1 goes silent.
    let mut closed = false;
    for _ in 0..30 {
        let mut effects = h.advance(100);
        effects.extend(h.request(2, -2, &Request::Ping));
        closed |= frames(&effects, 1).iter().any(|o| matches!(o, Out::Closed));
        effects.extend(h.persist());
        if frames(&effects, 2)
            .iter()
            .any(|o| matches!(o, Out::Event(e) if e.event_type == EventType::NodeDeleted.code()))
        {
            break;
        }
    }
    assert!(closed, "the expired session's connection is closed");
    assert!(h.node.tree().stat("/e").is_none(), "its ephemeral is gone");
    let refused = h.connect(3, session.session_id, session.password.clone());
    match frames(&refused, 3).as_slice() {
        [Out::Connected(r), Out::Closed] => assert_eq!((r.timeout_ms, r.session_id), (0, 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_client_that_reconnects_in_time_keeps_its_session_and_ephemerals() {
    let mut h = Harness::new();
    let session = h.session(1);
    h.call(1, 1, &create("/mine", b"", 1));
    h.step(Input::ClientClosed { conn: ConnId(1) });
    h.advance(300);
    let out = frames(&h.connect(2, session.session_id, session.password.clone()), 2);
    match out.as_slice() {
        [Out::Connected(r)] => assert_eq!(r.session_id, session.session_id),
        other => panic!("{other:?}"),
    }
    let wrong = frames(&h.connect(3, session.session_id, Bytes::from_static(&[9; 16])), 3);
    assert!(matches!(wrong.as_slice(), [Out::Connected(r), Out::Closed] if r.session_id == 0));
    assert!(h.node.tree().stat("/mine").is_some());
}

#[test]
fn recovery_from_snapshot_and_log_rebuilds_the_same_tree() {
    let mut h = Harness::with(NodeConfig { snap_count: 4, ..NodeConfig::standalone() });
    h.session(1);
    for i in 0..10 {
        h.call(1, i + 1, &create(&format!("/n{i}"), b"v", if i % 3 == 0 { 2 } else { 0 }));
    }
    assert!(!h.snapshots.is_empty(), "snapCount=4 must have produced snapshots");
    let body = h.snapshots.last().cloned().expect("a snapshot");
    let restored = Node::recover(NodeConfig::standalone(), h.now, Some(&body), h.log.clone())
        .expect("recovery");
    assert_eq!(restored.tree().digest(), h.node.tree().digest());
    assert_eq!(restored.zxid_last(), h.node.zxid_last());
    let from_log_only =
        Node::recover(NodeConfig::standalone(), h.now, None, h.log.clone()).expect("replay");
    assert_eq!(from_log_only.tree().digest(), h.node.tree().digest());
}

#[path = "node_sasl_tests.rs"]
mod sasl;
