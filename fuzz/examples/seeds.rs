//! Writes a small seed corpus for every fuzz target into `fuzz/corpus/<target>/`: valid inputs
//! the fuzzer could not easily find on its own (checksummed log records and snapshots, a tree
//! with the built-in nodes, canonical bincode messages, real `zoo.cfg` files). Mutating them
//! reaches the checks behind the checksums and magic numbers.
//!
//! Run from the repository root: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::fs;
use std::path::Path;

use bincode::Options;
use bytes::Bytes;
use ensemble::core::ids::{ServerId, SessionId, Zxid};
use ensemble::core::snapshot;
use ensemble::core::tree::DataTree;
use ensemble::core::txn::{Txn, TxnOp, EPHEMERAL_CONTAINER, TTL_MARKER};
use ensemble::core::zab::{Forwarded, PeerMsg, PeerState, SnapBody, Vote};
use ensemble::storage::epoch::encode_epoch;
use ensemble::storage::log::{encode_header, encode_record};
use ensemble::storage::snapshot::encode_snapshot;
use ensemble::wire::{
    encode_connect_request, encode_request, Acl, ConnectRequest, CreateKind, CreateRequest, Id,
    MultiOp, Request,
};

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Vec<Vec<u8>>); 5] = [
        ("client_frame", client_frames()),
        ("storage_reader", storage_files()),
        ("config_parser", configs()),
        ("peer_message", peer_messages()),
        ("snapshot_body", snapshot_bodies()),
    ];
    for (target, seeds) in targets {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        for (i, seed) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:02}")), seed)?;
        }
        println!("{}: {} seeds", dir.display(), seeds.len());
    }
    Ok(())
}

fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

fn digest_acl() -> Vec<Acl> {
    vec![Acl { perms: 3, id: Id::new("digest", "bob:Pd7qXFZ6kQ3SAEuY0nsnC2Ee+Oc=") }]
}

fn create(path: &str, data: &[u8], acl: Vec<Acl>, ephemeral_owner: i64) -> TxnOp {
    let data = Some(Bytes::copy_from_slice(data));
    TxnOp::Create { path: path.to_string(), data, acl, ephemeral_owner }
}

fn txn(counter: u32, op: TxnOp) -> Txn {
    let zxid = Zxid::new(1, counter);
    Txn { zxid, session: SessionId(0x100), cxid: counter as i32, time_ms: 1_700_000_000_000, op }
}

/// A history touching every kind of node and op.
fn history() -> Vec<Txn> {
    let ops = vec![
        TxnOp::CreateSession { timeout_ms: 30_000, password: [9; 16] },
        create("/app", b"config", open_acl(), 0),
        create("/app/lock-0000000000", b"", open_acl(), 0x100),
        create("/jobs", b"", digest_acl(), EPHEMERAL_CONTAINER),
        create("/jobs/a", b"payload", open_acl(), 0),
        create("/ttl", b"t", open_acl(), TTL_MARKER | 60_000),
        TxnOp::SetData { path: "/app".into(), data: None, version: 1 },
        TxnOp::SetAcl { path: "/jobs/a".into(), acl: digest_acl(), version: 1 },
        TxnOp::Multi(vec![
            create("/m", b"", open_acl(), 0),
            TxnOp::Check { path: "/m".into() },
            TxnOp::Delete { path: "/ttl".into() },
        ]),
        TxnOp::Error { code: -110 },
        TxnOp::CloseSession,
    ];
    ops.into_iter().zip(1..).map(|(op, counter)| txn(counter, op)).collect()
}

fn tree_after(txns: &[Txn]) -> DataTree {
    let mut tree = DataTree::new();
    let mut events = Vec::new();
    for txn in txns {
        tree.apply(txn, &mut events);
    }
    tree
}

fn client_frames() -> Vec<Vec<u8>> {
    let connect = ConnectRequest::new_session(30_000);
    let create = CreateRequest {
        path: "/app".into(),
        data: Some(Bytes::from_static(b"x")),
        acl: open_acl(),
        flags: 2,
        ttl: None,
    };
    let ttl = CreateRequest { flags: 5, ttl: Some(60_000), ..create.clone() };
    let requests = [
        Request::Create(CreateKind::Create2, create.clone()),
        Request::Create(CreateKind::Ttl, ttl),
        Request::GetChildren { path: "/".into(), watch: true, with_stat: true },
        Request::SetData { path: "/app".into(), data: None, version: -1 },
        Request::SetAcl { path: "/app".into(), acl: digest_acl(), version: 0 },
        Request::Multi(vec![
            MultiOp::Create(CreateKind::Container, create),
            MultiOp::Check { path: "/app".into(), version: 1 },
            MultiOp::Delete { path: "/app".into(), version: -1 },
        ]),
        Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"bob:secret"),
        },
        Request::Ping,
    ];
    let mut seeds = vec![encode_connect_request(&connect).to_vec()];
    let mut stream = seeds[0].clone();
    for (xid, request) in (1..).zip(&requests) {
        let frame = encode_request(xid, request);
        stream.extend_from_slice(&frame);
        seeds.push(frame.to_vec());
    }
    seeds.push(stream);
    seeds.push(b"ruok".to_vec());
    seeds
}

fn segment(txns: &[Txn]) -> Vec<u8> {
    let mut bytes = encode_header(txns[0].zxid).to_vec();
    for txn in txns {
        bytes.extend_from_slice(&encode_record(txn).expect("a small txn encodes"));
    }
    bytes
}

fn storage_files() -> Vec<Vec<u8>> {
    let txns = history();
    let tree = tree_after(&txns);
    let body = snapshot::encode(txns[4].zxid, &tree, &[(SessionId(0x100), 30_000, [9; 16])]);
    // Recovery input: a presence byte, then per present file a length byte and the contents.
    let small = segment(&txns[..1]);
    let mut recovery = vec![0b11010, small.len() as u8];
    recovery.extend_from_slice(&small);
    for epoch in [encode_epoch(1), encode_epoch(1)] {
        recovery.push(epoch.len() as u8);
        recovery.extend_from_slice(&epoch);
    }
    vec![
        segment(&txns),
        segment(&txns[..3]),
        encode_snapshot(txns[4].zxid, &body),
        encode_epoch(7),
        recovery,
    ]
}

fn configs() -> Vec<Vec<u8>> {
    let standalone = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zookeeper\n\
                      clientPort=2181\nmaxClientCnxns=60\n4lw.commands.whitelist=ruok,srvr\n";
    let quorum = "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n\
                  server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888;2181\n\
                  server.3=10.0.0.3:2888:3888:observer;0.0.0.0:2181\n\
                  extendedTypesEnabled=true\nreconfigEnabled=false\n";
    vec![standalone.into(), quorum.into(), b"2\n".to_vec()]
}

fn peer_messages() -> Vec<Vec<u8>> {
    let options = bincode::DefaultOptions::new().with_fixint_encoding();
    let txns = history();
    let tree = tree_after(&txns[..5]);
    let vote = Vote { leader: ServerId(2), zxid: Zxid::new(1, 5), epoch: 1 };
    let messages = [
        PeerMsg::Notification { vote, round: 3, state: PeerState::Looking },
        PeerMsg::FollowerInfo {
            accepted_epoch: 1,
            zxid_logged: Zxid::new(1, 5),
            zxid_applied: Zxid::new(1, 4),
            observer: false,
        },
        PeerMsg::Diff { txns: txns[..4].to_vec(), committed: Zxid::new(1, 3) },
        PeerMsg::Snap {
            zxid: txns[4].zxid,
            body: SnapBody::Encoded(snapshot::encode(
                txns[4].zxid,
                &tree,
                &[(SessionId(0x100), 30_000, [9; 16])],
            )),
            txns: txns[5..].to_vec(),
            committed: Zxid::new(1, 6),
        },
        PeerMsg::Proposal(txns[8].clone()),
        PeerMsg::Request {
            session: SessionId(0x100),
            cxid: 4,
            op: Forwarded::Write {
                frame: encode_request(4, &Request::Sync { path: "/".into() }).slice(4..),
                ids: vec![Id::new("ip", "127.0.0.1")],
            },
        },
        PeerMsg::Ping { sessions: vec![SessionId(0x100), SessionId(0x101)] },
        PeerMsg::Revalidated { session: SessionId(0x100), valid: true },
    ];
    let encode = |message: &PeerMsg| options.serialize(message).expect("messages serialize");
    messages.iter().map(encode).collect()
}

fn snapshot_bodies() -> Vec<Vec<u8>> {
    let txns = history();
    let sessions = [(SessionId(0x100), 30_000, [9; 16])];
    let mut seeds = Vec::new();
    for tree in [DataTree::new(), tree_after(&txns[..6]), tree_after(&txns)] {
        // Mode 0: a whole body. Mode 1: a tree image without its CRC (the harness adds it).
        let mut body = vec![0];
        body.extend_from_slice(&snapshot::encode(tree.zxid_applied(), &tree, &sessions));
        seeds.push(body);
        let image = tree.encode_snapshot();
        let mut bare = vec![1];
        bare.extend_from_slice(&image[..image.len() - 4]);
        seeds.push(bare);
    }
    seeds
}
