//! Tests of the data tree: Stat rules, built-ins, events, sessions, multi, reaping, snapshots,
//! and a model check of random txn sequences.

use proptest::prelude::*;

use super::path::sequence_suffix;
use super::*;
use crate::core::txn::{EPHEMERAL_CONTAINER, TTL_MARKER};
use crate::wire::types::{perms, Id};

const SESSION: SessionId = SessionId(0x0100_0000_0000_0001);
const OTHER: SessionId = SessionId(0x0100_0000_0000_0002);

/// Applies txns with increasing zxids (epoch 1) and times (1000 ms apart).
struct Harness {
    tree: DataTree,
    counter: u32,
    events: Vec<TreeEvent>,
}

impl Harness {
    fn new() -> Harness {
        Harness { tree: DataTree::new(), counter: 0, events: Vec::new() }
    }

    fn next_zxid(&self) -> i64 {
        Zxid::new(1, self.counter + 1).to_wire()
    }

    fn apply_as(&mut self, session: SessionId, op: TxnOp) -> ApplyOutcome {
        self.counter += 1;
        let txn = Txn {
            zxid: Zxid::new(1, self.counter),
            session,
            cxid: self.counter as i32,
            time_ms: 1_000 * i64::from(self.counter),
            op,
        };
        self.events.clear();
        let outcome = self.tree.apply(&txn, &mut self.events);
        self.tree.check_invariants();
        outcome
    }

    fn apply(&mut self, op: TxnOp) -> ApplyOutcome {
        self.apply_as(SESSION, op)
    }

    fn create(&mut self, path: &str, data: &[u8]) -> ApplyOutcome {
        self.apply(create_op(path, Some(data), 0))
    }

    fn events(&self) -> Vec<(EventType, &str)> {
        self.events.iter().map(|e| (e.event_type, e.path.as_str())).collect()
    }
}

fn create_op(path: &str, data: Option<&[u8]>, owner: i64) -> TxnOp {
    TxnOp::Create {
        path: path.to_string(),
        data: data.map(Bytes::copy_from_slice),
        acl: Acl::open_unsafe().into(),
        ephemeral_owner: owner,
    }
}

fn set_data_op(path: &str, data: &[u8], version: i32) -> TxnOp {
    TxnOp::SetData { path: path.into(), data: Some(Bytes::copy_from_slice(data)), version }
}

fn delete_op(path: &str) -> TxnOp {
    TxnOp::Delete { path: path.into() }
}

#[test]
fn builtin_nodes() {
    let tree = DataTree::new();
    assert_eq!(tree.node_count(), 4);
    assert_eq!(tree.children("/"), Some(vec!["zookeeper".to_string()]));
    assert_eq!(tree.children("/zookeeper"), Some(vec!["config".into(), "quota".into()]));

    let root = tree.stat("/").expect("root");
    assert_eq!(root, Stat { cversion: -1, num_children: 1, ..Stat::default() });
    let zookeeper = tree.stat("/zookeeper").expect("/zookeeper");
    assert_eq!((zookeeper.cversion, zookeeper.num_children), (-2, 2));
    let quota = tree.stat("/zookeeper/quota").expect("quota");
    assert_eq!(quota, Stat::default());
    let (acl, config) = tree.acl("/zookeeper/config").expect("config");
    assert_eq!(config, Stat { aversion: -1, ..Stat::default() });
    assert_eq!(&*acl, Acl::read_unsafe().as_slice());
    assert_eq!(&*tree.acl("/").expect("root").0, Acl::open_unsafe().as_slice());

    // Data is empty, not null.
    assert_eq!(tree.data("/").expect("root").0, Some(Bytes::new()));
    // Path lengths: 1 + 10 + 16 + 17.
    assert_eq!(tree.approximate_data_size(), 44);
    assert_eq!(tree.descendant_count("/"), Some(3));
    assert_eq!(tree.descendant_count("/zookeeper"), Some(2));
    assert_eq!(tree.acl_list_count(), 2);
    tree.check_invariants();
}

#[test]
fn create_sets_stat_and_updates_parent() {
    let mut h = Harness::new();
    let zxid = h.next_zxid();
    let outcome = h.create("/a", b"hello");
    let expected = Stat {
        czxid: zxid,
        mzxid: zxid,
        ctime: 1000,
        mtime: 1000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: zxid,
    };
    assert_eq!(outcome, ApplyOutcome::Created { path: "/a".into(), stat: expected });
    assert_eq!(h.tree.stat("/a"), Some(expected));
    assert_eq!(h.events(), [(EventType::NodeCreated, "/a"), (EventType::NodeChildrenChanged, "/")]);

    let root = h.tree.view("/").expect("root");
    assert_eq!(root.stat.cversion, 1, "internal creation count");
    assert_eq!(root.stat.pzxid, zxid);
    assert_eq!(root.num_children, 2);
    let root_stat = h.tree.stat("/").expect("root");
    assert_eq!(root_stat.cversion, 0, "2 * 1 - 2");
    assert_eq!((root_stat.mzxid, root_stat.mtime, root_stat.version), (0, 0, 0), "untouched");

    // A child of /a.
    let child_zxid = h.next_zxid();
    h.create("/a/b", b"");
    let parent = h.tree.stat("/a").expect("/a");
    assert_eq!((parent.cversion, parent.num_children, parent.pzxid), (1, 1, child_zxid));
    assert_eq!((parent.mzxid, parent.version), (zxid, 0), "parent data untouched");
}

#[test]
fn delete_updates_parent_but_not_creation_count() {
    let mut h = Harness::new();
    h.create("/p", b"");
    h.create("/p/a", b"");
    h.create("/p/b", b"");
    let delete_zxid = h.next_zxid();
    assert_eq!(h.apply(delete_op("/p/a")), ApplyOutcome::Deleted);
    assert_eq!(
        h.events(),
        [(EventType::NodeDeleted, "/p/a"), (EventType::NodeChildrenChanged, "/p")]
    );
    let view = h.tree.view("/p").expect("/p");
    assert_eq!(view.stat.cversion, 2, "internal count unchanged by delete");
    assert_eq!(view.stat.pzxid, delete_zxid);
    assert_eq!(view.num_children, 1);
    assert_eq!(h.tree.stat("/p").expect("/p").cversion, 3, "reported: creates + deletes");
    assert_eq!(h.tree.stat("/p/a"), None);
    assert_eq!(h.tree.children("/p"), Some(vec!["b".into()]));
}

#[test]
fn set_data_and_set_acl() {
    let mut h = Harness::new();
    let created = h.next_zxid();
    h.create("/n", b"one");
    let set_zxid = h.next_zxid();
    let outcome = h.apply(set_data_op("/n", b"three", 1));
    let ApplyOutcome::DataSet(stat) = outcome else { panic!("{outcome:?}") };
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (created, set_zxid, created));
    assert_eq!((stat.ctime, stat.mtime, stat.version, stat.data_length), (1000, 2000, 1, 5));
    assert_eq!(h.events(), [(EventType::NodeDataChanged, "/n")]);
    assert_eq!(h.tree.data("/n").expect("/n").0.as_deref(), Some(&b"three"[..]));

    let alice = vec![Acl { perms: perms::ALL, id: Id::new("digest", "alice:x") }];
    let outcome =
        h.apply(TxnOp::SetAcl { path: "/n".into(), acl: alice.clone().into(), version: 1 });
    let ApplyOutcome::AclSet(after) = outcome else { panic!("{outcome:?}") };
    assert_eq!(after, Stat { aversion: 1, ..stat }, "only aversion changes");
    assert!(h.events.is_empty(), "setACL fires no watch");
    assert_eq!(&*h.tree.acl("/n").expect("/n").0, alice.as_slice());

    // Null data is distinct from empty data.
    h.apply(TxnOp::SetData { path: "/n".into(), data: None, version: 2 });
    let (data, stat) = h.tree.data("/n").expect("/n");
    assert_eq!((data, stat.data_length), (None, 0));
    h.apply(create_op("/null", None, 0));
    assert_eq!(h.tree.data("/null").expect("/null").0, None);
    h.create("/empty", b"");
    assert_eq!(h.tree.data("/empty").expect("/empty").0, Some(Bytes::new()));
}

#[test]
fn sequence_counter_advances_on_every_create_never_on_delete() {
    let mut h = Harness::new();
    h.create("/q", b"");
    let mut created = Vec::new();
    for round in 0..3 {
        // Preparation takes the parent's internal cversion as the suffix.
        let counter = h.tree.view("/q").expect("/q").stat.cversion;
        let path = format!("/q/lock-{}", sequence_suffix(counter));
        h.create(&path, b"");
        created.push(path);
        // A plain create in between also advances the counter.
        h.create(&format!("/q/plain{round}"), b"");
        h.apply(delete_op(&format!("/q/plain{round}")));
    }
    assert_eq!(created, ["/q/lock-0000000000", "/q/lock-0000000002", "/q/lock-0000000004"]);
    assert_eq!(h.tree.view("/q").expect("/q").stat.cversion, 6);
}

#[test]
fn sequence_counter_wraps_like_java() {
    let mut h = Harness::new();
    h.create("/q", b"");
    let q = h.tree.nodes.find("/q").expect("/q");
    h.tree.update(q, |node| node.stat.cversion = i32::MAX);
    h.create("/q/x", b"");
    assert_eq!(h.tree.view("/q").expect("/q").stat.cversion, i32::MIN);
    assert_eq!(sequence_suffix(i32::MIN + 1), "-2147483647");
}

#[test]
fn ephemerals_containers_and_ttl_owners() {
    let mut h = Harness::new();
    h.apply(create_op("/e", Some(b""), SESSION.0));
    h.apply(create_op("/c", Some(b""), EPHEMERAL_CONTAINER));
    h.apply(create_op("/t", Some(b""), TTL_MARKER | 5000));
    assert_eq!(h.tree.stat("/e").expect("/e").ephemeral_owner, SESSION.0);
    assert_eq!(h.tree.stat("/c").expect("/c").ephemeral_owner, 0);
    assert_eq!(h.tree.stat("/t").expect("/t").ephemeral_owner, 0);
    assert_eq!(h.tree.view("/c").expect("/c").stat.ephemeral_owner, EPHEMERAL_CONTAINER);
    assert_eq!(h.tree.ephemerals(SESSION), ["/e"]);
    assert_eq!(h.tree.ephemeral_count(), 1);

    // Session ephemerals refuse children; containers and TTL nodes accept them.
    let refused = h.apply(create_op("/e/x", Some(b""), 0));
    assert_eq!(refused, ApplyOutcome::Error(ErrorCode::NoChildrenForEphemerals));
    assert!(matches!(h.create("/c/x", b""), ApplyOutcome::Created { .. }));
    assert!(matches!(h.create("/t/x", b""), ApplyOutcome::Created { .. }));
}

#[test]
fn close_session_deletes_its_ephemerals_in_path_order() {
    let mut h = Harness::new();
    h.create("/app", b"");
    for path in ["/app/z", "/app/a", "/m"] {
        h.apply(create_op(path, Some(b""), SESSION.0));
    }
    h.apply(create_op("/other", Some(b""), OTHER.0));
    assert_eq!(h.tree.sessions_with_ephemerals(), [SESSION, OTHER]);
    assert_eq!(h.tree.ephemerals(SESSION), ["/app/a", "/app/z", "/m"]);
    assert_eq!(h.tree.ephemerals_with_prefix(SESSION, "/app"), ["/app/a", "/app/z"]);
    assert_eq!(h.tree.ephemerals_with_prefix(SESSION, "/ap"), ["/app/a", "/app/z"]);
    assert_eq!(h.tree.ephemerals_with_prefix(SESSION, " / ").len(), 3);
    assert_eq!(h.tree.ephemerals_with_prefix(SESSION, "").len(), 3);
    assert_eq!(h.tree.ephemerals_with_prefix(OTHER, "/app"), Vec::<String>::new());

    let zxid = h.next_zxid();
    assert_eq!(h.apply(TxnOp::CloseSession), ApplyOutcome::SessionClosed);
    assert_eq!(
        h.events(),
        [
            (EventType::NodeDeleted, "/app/a"),
            (EventType::NodeChildrenChanged, "/app"),
            (EventType::NodeDeleted, "/app/z"),
            (EventType::NodeChildrenChanged, "/app"),
            (EventType::NodeDeleted, "/m"),
            (EventType::NodeChildrenChanged, "/"),
        ]
    );
    assert_eq!(h.tree.stat("/app").expect("/app").pzxid, zxid, "one zxid for all");
    assert!(h.tree.ephemerals(SESSION).is_empty());
    assert_eq!(h.tree.sessions_with_ephemerals(), [OTHER]);
    assert!(h.tree.contains("/other"));
    // Closing a session without ephemerals changes nothing.
    let digest = h.tree.digest();
    assert_eq!(h.apply(TxnOp::CloseSession), ApplyOutcome::SessionClosed);
    assert_eq!(h.tree.digest(), digest);
}

#[test]
fn events_carry_the_deciding_acl() {
    let mut h = Harness::new();
    let secret = vec![Acl { perms: perms::ALL, id: Id::new("digest", "alice:x") }];
    h.apply(TxnOp::Create {
        path: "/s".into(),
        data: None,
        acl: secret.clone().into(),
        ephemeral_owner: 0,
    });
    assert_eq!(&*h.events[0].acl, secret.as_slice(), "NodeCreated: the node's ACL");
    assert_eq!(&*h.events[1].acl, Acl::open_unsafe().as_slice(), "child event: parent's");
    h.create("/s/c", b"");
    assert_eq!(&*h.events[0].acl, Acl::open_unsafe().as_slice());
    assert_eq!(&*h.events[1].acl, secret.as_slice());
    h.apply(set_data_op("/s", b"x", 1));
    assert_eq!(&*h.events[0].acl, secret.as_slice());
}

#[test]
fn inconsistent_txns_are_errors_that_change_nothing() {
    let mut h = Harness::new();
    h.create("/a", b"");
    h.create("/a/b", b"");
    let before = h.tree.encode_snapshot();
    // Everything but zxid_applied (bytes 8..16) and the checksum (last 4 bytes).
    let tree_bytes = |image: &[u8]| image[16..image.len() - 4].to_vec();
    let cases = [
        (create_op("/a", Some(b""), 0), ErrorCode::NodeExists),
        (create_op("/", Some(b""), 0), ErrorCode::NodeExists),
        (create_op("/missing/x", Some(b""), 0), ErrorCode::NoNode),
        (create_op("/bad/", Some(b""), 0), ErrorCode::BadArguments),
        (create_op("relative", Some(b""), 0), ErrorCode::BadArguments),
        (create_op("", Some(b""), 0), ErrorCode::BadArguments),
        (delete_op("/a"), ErrorCode::NotEmpty),
        (delete_op("/missing"), ErrorCode::NoNode),
        (delete_op("/missing/x"), ErrorCode::NoNode),
        (delete_op("/"), ErrorCode::BadArguments),
        (delete_op("/zookeeper"), ErrorCode::BadArguments),
        (delete_op("/zookeeper/quota"), ErrorCode::BadArguments),
        (delete_op("/zookeeper/config"), ErrorCode::BadArguments),
        (delete_op(""), ErrorCode::NoNode),
        (set_data_op("/missing", b"", 1), ErrorCode::NoNode),
        (
            TxnOp::SetAcl { path: "/missing".into(), acl: Vec::new().into(), version: 1 },
            ErrorCode::NoNode,
        ),
        (TxnOp::Check { path: "/missing".into() }, ErrorCode::NoNode),
        (TxnOp::Error { code: ErrorCode::BadVersion.code() }, ErrorCode::BadVersion),
        (TxnOp::Error { code: 12345 }, ErrorCode::RuntimeInconsistency),
    ];
    for (op, code) in cases {
        let description = format!("{op:?}");
        let zxid = h.next_zxid();
        assert_eq!(h.apply(op), ApplyOutcome::Error(code), "{description}");
        assert!(h.events.is_empty(), "{description}");
        assert_eq!(h.tree.zxid_applied().to_wire(), zxid, "error txns count as applied");
    }
    assert_eq!(tree_bytes(&h.tree.encode_snapshot()), tree_bytes(&before));
}

#[test]
fn session_txns_and_check() {
    let mut h = Harness::new();
    let digest = h.tree.digest();
    let create = TxnOp::CreateSession { timeout_ms: 30_000, password: [7; 16] };
    assert_eq!(h.apply(create), ApplyOutcome::SessionCreated);
    assert_eq!(h.apply(TxnOp::Check { path: "/".into() }), ApplyOutcome::Checked);
    assert_eq!(h.tree.digest(), digest);
    assert_eq!(h.tree.zxid_applied(), Zxid::new(1, 2));
}

#[test]
fn multi_applies_in_order_with_one_zxid() {
    let mut h = Harness::new();
    let zxid = h.next_zxid();
    let outcome = h.apply(TxnOp::Multi(vec![
        create_op("/m", Some(b"1"), 0),
        set_data_op("/m", b"22", 1),
        TxnOp::Check { path: "/m".into() },
        create_op("/m/c", Some(b""), 0),
        delete_op("/m/c"),
    ]));
    let ApplyOutcome::Multi(results) = outcome else { panic!("{outcome:?}") };
    assert_eq!(results.len(), 5);
    let ApplyOutcome::Created { stat, .. } = &results[0] else { panic!("{results:?}") };
    assert_eq!((stat.czxid, stat.data_length), (zxid, 1), "stat at creation time");
    let ApplyOutcome::DataSet(stat) = &results[1] else { panic!("{results:?}") };
    assert_eq!((stat.mzxid, stat.version, stat.data_length), (zxid, 1, 2));
    assert_eq!(results[2], ApplyOutcome::Checked);
    assert_eq!(results[4], ApplyOutcome::Deleted);
    let kinds: Vec<EventType> = h.events.iter().map(|e| e.event_type).collect();
    use EventType::*;
    assert_eq!(
        kinds,
        [
            NodeCreated,
            NodeChildrenChanged,
            NodeDataChanged,
            NodeCreated,
            NodeChildrenChanged,
            NodeDeleted,
            NodeChildrenChanged
        ]
    );
    assert_eq!(h.tree.view("/m").expect("/m").stat.cversion, 1);
    assert_eq!(h.tree.zxid_applied().to_wire(), zxid);
}

#[test]
fn failed_multi_changes_nothing() {
    let mut h = Harness::new();
    h.create("/x", b"");
    let digest = h.tree.digest();
    let ok = ErrorCode::Ok.code();
    let failed = vec![
        TxnOp::Error { code: ok },
        TxnOp::Error { code: ErrorCode::NodeExists.code() },
        TxnOp::Error { code: ErrorCode::RuntimeInconsistency.code() },
    ];
    let outcome = h.apply(TxnOp::Multi(failed));
    assert_eq!(
        outcome,
        ApplyOutcome::Multi(vec![
            ApplyOutcome::Error(ErrorCode::Ok),
            ApplyOutcome::Error(ErrorCode::NodeExists),
            ApplyOutcome::Error(ErrorCode::RuntimeInconsistency),
        ])
    );
    assert!(h.events.is_empty());
    assert_eq!(h.tree.digest(), digest);
    // Session txns and nested multis are not sub-ops.
    let odd = vec![TxnOp::CloseSession, TxnOp::Multi(vec![]), create_op("/y", Some(b""), 0)];
    let ApplyOutcome::Multi(results) = h.apply(TxnOp::Multi(odd)) else { panic!() };
    assert_eq!(results[0], ApplyOutcome::Error(ErrorCode::MarshallingError));
    assert_eq!(results[1], ApplyOutcome::Error(ErrorCode::MarshallingError));
    assert!(matches!(results[2], ApplyOutcome::Created { .. }));
}

#[test]
fn reap_candidates_follow_container_manager() {
    let mut h = Harness::new();
    // Created at t = 1000, 2000, 3000, 4000.
    h.apply(create_op("/used", Some(b""), EPHEMERAL_CONTAINER));
    h.apply(create_op("/fresh", Some(b""), EPHEMERAL_CONTAINER));
    h.apply(create_op("/ttl", Some(b""), TTL_MARKER | 500));
    h.apply(create_op("/ttl-busy", Some(b""), TTL_MARKER | 500));
    h.create("/used/child", b""); // t = 5000
    h.create("/ttl-busy/child", b"");
    assert_eq!(h.tree.reap_candidates(3_500, 0), Vec::<String>::new(), "ttl: 500 not > 500");
    assert_eq!(h.tree.reap_candidates(3_501, 0), ["/ttl"]);
    h.apply(delete_op("/used/child"));
    assert_eq!(h.tree.reap_candidates(3_501, 0), ["/ttl", "/used"]);
    // Never-used containers only with a limit, once mtime is more than it in the past.
    assert_eq!(h.tree.reap_candidates(12_000, 10_000), ["/ttl", "/used"]);
    assert_eq!(h.tree.reap_candidates(12_001, 10_000), ["/fresh", "/ttl", "/used"]);
    // setData refreshes mtime, which TTL counts from.
    h.apply(set_data_op("/ttl", b"", 1));
    let now = 1000 * i64::from(h.counter);
    assert_eq!(h.tree.reap_candidates(now + 500, 0), ["/used"]);
}

#[test]
fn descendant_count_and_data_size() {
    let mut h = Harness::new();
    h.create("/a", b"12345");
    h.create("/a/b", b"");
    h.create("/a/b/c", b"x");
    h.create("/ab", b"");
    assert_eq!(h.tree.descendant_count("/a"), Some(2), "/ab is not under /a");
    assert_eq!(h.tree.descendant_count("/a/b/c"), Some(0));
    assert_eq!(h.tree.descendant_count("/"), Some(7));
    assert_eq!(h.tree.descendant_count("/missing"), None);
    let builtins = 44;
    assert_eq!(h.tree.approximate_data_size(), builtins + (2 + 5) + 4 + (6 + 1) + 3);
    h.apply(set_data_op("/a", b"1", 1));
    assert_eq!(h.tree.approximate_data_size(), builtins + (2 + 1) + 4 + (6 + 1) + 3);
    h.create("/caf\u{e9}", b"");
    assert_eq!(h.tree.approximate_data_size(), builtins + 3 + 4 + 7 + 3 + 5, "chars, not bytes");
}

#[test]
fn config_node_local_update_stays_out_of_the_digest() {
    let mut tree = DataTree::new();
    let digest = tree.digest();
    tree.set_config_local(
        Bytes::from_static(b"server.1=a:1:2\nversion=100000000"),
        0x1_0000_0000,
        5,
    );
    let (data, stat) = tree.data("/zookeeper/config").expect("config");
    assert_eq!(data.map(|d| d.len()), Some(32));
    assert_eq!((stat.version, stat.mzxid, stat.mtime, stat.aversion), (-1, 0x1_0000_0000, 5, -1));
    assert_eq!(tree.digest(), digest);
    tree.check_invariants();
    let decoded = DataTree::decode_snapshot(&tree.encode_snapshot()).expect("round trip");
    assert_eq!(decoded, tree);
}

#[test]
fn acl_lists_are_shared_and_released() {
    let mut h = Harness::new();
    for i in 0..100 {
        h.create(&format!("/n{i}"), b"");
    }
    assert_eq!(h.tree.acl_list_count(), 2, "open and read-only");
    let open = h.tree.acl("/n0").expect("/n0").0;
    assert!(Arc::ptr_eq(&open, &h.tree.acl("/n99").expect("/n99").0));
    drop(open);
    let private = vec![Acl { perms: perms::READ, id: Id::new("ip", "10.0.0.1") }];
    h.apply(TxnOp::SetAcl { path: "/n5".into(), acl: private.clone().into(), version: 1 });
    assert_eq!(h.tree.acl_list_count(), 3);
    h.apply(TxnOp::SetAcl { path: "/n5".into(), acl: Acl::open_unsafe().into(), version: 2 });
    assert_eq!(h.tree.acl_list_count(), 2, "unused list dropped");
}

#[test]
fn snapshot_round_trip_and_order() {
    let mut h = Harness::new();
    h.create("/b", b"");
    h.create("/a", b"data");
    h.apply(create_op("/a/e", None, SESSION.0));
    h.apply(create_op("/c", Some(b""), EPHEMERAL_CONTAINER));
    h.apply(create_op("/t", Some(b"x"), TTL_MARKER | 99));
    let secret = vec![Acl { perms: perms::READ, id: Id::new("digest", "u:h") }];
    h.apply(TxnOp::SetAcl { path: "/b".into(), acl: secret.into(), version: 1 });
    let image = h.tree.encode_snapshot();
    let decoded = DataTree::decode_snapshot(&image).expect("own snapshot decodes");
    decoded.check_invariants();
    assert_eq!(decoded, h.tree);
    assert_eq!(decoded.digest(), h.tree.digest());
    assert_eq!(decoded.zxid_applied(), h.tree.zxid_applied());
    assert_eq!(decoded.ephemerals(SESSION), ["/a/e"]);
    assert_eq!(decoded.reap_candidates(i64::MAX, 1), ["/c", "/t"]);
    assert_eq!(decoded.encode_snapshot(), image, "deterministic");
    // Slot order: the root and built-ins first, then nodes in the order they were created
    // (no slot was freed). Find paths in the image in order.
    let order: Vec<usize> = [
        "/",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "/b",
        "/a",
        "/a/e",
        "/c",
        "/t",
    ]
    .iter()
    .map(|needle| {
        let needle = needle.as_bytes();
        let mut framed = (needle.len() as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(needle);
        image.windows(framed.len()).position(|w| w == framed).expect("path in image")
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // The format is pinned: this tree's image (whose last four bytes are a CRC of the rest)
    // is what the first version-2 encoder wrote.
    assert_eq!((image.len(), &image[image.len() - 4..]), (864, &[234, 169, 14, 141][..]));
}

#[test]
fn an_image_stays_as_it_was_taken_while_the_tree_goes_on() {
    let mut h = Harness::new();
    // Enough nodes for several pages, some ACLs and ephemerals.
    for i in 0..300 {
        h.create(&format!("/n{i}"), format!("v{i}").as_bytes());
    }
    h.apply(create_op("/n7/e", Some(b"eph"), SESSION.0));
    let secret = vec![Acl { perms: perms::READ, id: Id::new("digest", "u:h") }];
    h.apply(TxnOp::SetAcl { path: "/n9".into(), acl: secret.into(), version: 0 });
    let at_image = DataTree::decode_snapshot(&h.tree.encode_snapshot()).expect("decodes");
    let image = h.tree.image();

    // Every kind of change afterwards, on every page.
    for i in (0..300).step_by(3) {
        h.apply(TxnOp::SetData {
            path: format!("/n{i}"),
            data: Some(Bytes::from("x")),
            version: 1,
        });
    }
    for i in (1..300).step_by(7) {
        if i != 7 {
            h.apply(TxnOp::Delete { path: format!("/n{i}") });
        }
    }
    h.apply(TxnOp::SetAcl { path: "/n9".into(), acl: Acl::open_unsafe().into(), version: 1 });
    h.apply(TxnOp::Delete { path: "/n7/e".into() });
    h.create("/late", b"late");
    h.tree.check_invariants();

    let decoded = DataTree::decode_snapshot(&image.encode()).expect("the image decodes");
    decoded.check_invariants();
    assert_eq!(decoded, at_image, "the image is the tree as it was");
    assert_ne!(decoded, h.tree);
    assert_eq!(image.digest(), at_image.digest());
    assert_eq!(decoded.ephemerals(SESSION), ["/n7/e"]);
    assert!(!decoded.contains("/late"));
}

/// Builds an image from node records, with a correct checksum and digest, for negative tests.
fn forge(records: &[(&str, i64, u32)]) -> Vec<u8> {
    let mut out = b"ENSNAP\0\x01".to_vec();
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // one ACL list, empty
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    let mut tree = DataTree::empty();
    for (path, owner, children) in records {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // empty data
        out.extend_from_slice(&0u32.to_le_bytes()); // ACL list 0
        out.extend_from_slice(&[0; 44]); // czxid, mzxid, ctime, mtime, version, cversion, aversion
        out.extend_from_slice(&owner.to_le_bytes());
        out.extend_from_slice(&0i64.to_le_bytes()); // pzxid
        out.extend_from_slice(&children.to_le_bytes());
        let stat = StatPersisted { ephemeral_owner: *owner, ..StatPersisted::default() };
        if *path != CONFIG {
            let term = node::digest_term(path, &stat, &[], Some(&[]));
            tree.digest = tree.digest.wrapping_add(term);
        }
    }
    out.extend_from_slice(&tree.digest.to_le_bytes());
    let checksum = crc32c::crc32c(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

#[test]
fn decode_rejects_inconsistent_trees() {
    let builtins = [
        ("/", 0, 1),
        ("/zookeeper", 0, 2),
        ("/zookeeper/config", 0, 0),
        ("/zookeeper/quota", 0, 0),
    ];
    let valid = DataTree::decode_snapshot(&forge(&builtins)).expect("forged builtins decode");
    valid.check_invariants();

    let with = |extra: &[(&'static str, i64, u32)], root_children: u32| {
        let mut records = builtins.to_vec();
        records[0].2 = root_children;
        records.extend_from_slice(extra);
        forge(&records)
    };
    let session = SESSION.0;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with(&[("/a/b", 0, 0)], 1), "MissingParent"),
        (with(&[("/zookeeper", 0, 0)], 1), "DuplicatePath"),
        (with(&[("/a/", 0, 0)], 2), "InvalidPath"),
        (with(&[("/e", session, 1), ("/e/x", 0, 0)], 2), "ChildOfEphemeral"),
        (with(&[("/a", 0, 0)], 1), "ChildCountMismatch"),
        (with(&[("/a", 0, 3)], 2), "ChildCountMismatch"),
        (forge(&builtins[..3]), "ChildCountMismatch"),
        (forge(&[("/zookeeper", 0, 0)]), "FirstNotRoot"),
        (forge(&[("/", 0, 1), ("/zookeeper", 0, 0)]), "BadBuiltin"),
        (
            forge(&[
                ("/", 0, 1),
                ("/zookeeper", 0, 2),
                ("/zookeeper/config", 0, 0),
                ("/zookeeper/quota", EPHEMERAL_CONTAINER, 0),
            ]),
            "BadBuiltin",
        ),
    ];
    for (image, expected) in cases {
        let error = DataTree::decode_snapshot(&image).expect_err(expected);
        assert!(format!("{error:?}").starts_with(expected), "{expected}: {error:?}");
    }

    // A bad digest with a good checksum.
    let mut image = forge(&builtins);
    let digest_at = image.len() - 12;
    image[digest_at] ^= 1;
    let body = image.len() - 4;
    let checksum = crc32c::crc32c(&image[..body]);
    image[body..].copy_from_slice(&checksum.to_le_bytes());
    assert!(matches!(DataTree::decode_snapshot(&image), Err(SnapshotError::DigestMismatch { .. })));
}

#[test]
fn decode_rejects_damage() {
    let mut h = Harness::new();
    h.create("/a", b"some data");
    h.apply(create_op("/a/e", None, SESSION.0));
    let image = h.tree.encode_snapshot();
    for at in 0..image.len() {
        let mut damaged = image.clone();
        damaged[at] ^= 0x5A;
        assert!(DataTree::decode_snapshot(&damaged).is_err(), "flip at {at}");
    }
    for length in 0..image.len() {
        assert!(DataTree::decode_snapshot(&image[..length]).is_err(), "cut at {length}");
    }
    let mut longer = image.clone();
    longer.push(0);
    assert!(DataTree::decode_snapshot(&longer).is_err());
}

#[test]
fn debug_is_a_summary() {
    let tree = DataTree::new();
    let text = format!("{tree:?}");
    assert!(text.starts_with("DataTree { nodes: 4, zxid_applied: Zxid(0)"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Model check: the tree against a plain sorted map, under random txn sequences.

/// The model of one node: everything the Stat is derived from.
#[derive(Clone, Debug, PartialEq)]
struct ModelNode {
    data: Option<Vec<u8>>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    creations: i32,
    aversion: i32,
    owner: i64,
}

/// The model: built-ins plus every created node, by path.
struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    fn new() -> Model {
        let builtin = |aversion| ModelNode {
            data: Some(Vec::new()),
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            creations: 0,
            aversion,
            owner: 0,
        };
        let nodes =
            [("/", 0), ("/zookeeper", 0), ("/zookeeper/quota", 0), ("/zookeeper/config", -1)]
                .into_iter()
                .map(|(path, aversion)| (path.to_string(), builtin(aversion)))
                .collect();
        Model { nodes }
    }

    fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|candidate| *candidate != "/" && parent(candidate) == path)
            .map(|child| name(child).to_string())
            .collect()
    }

    fn stat(&self, path: &str) -> Stat {
        let node = &self.nodes[path];
        let num_children = self.children(path).len() as i32;
        Stat {
            czxid: node.czxid,
            mzxid: node.mzxid,
            ctime: node.ctime,
            mtime: node.mtime,
            version: node.version,
            cversion: 2 * node.creations - num_children,
            aversion: node.aversion,
            ephemeral_owner: NodeKind::visible_owner(node.owner),
            data_length: node.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: node.pzxid,
        }
    }

    /// The outcome ZooKeeper's rules give, applying the change if it succeeds.
    fn apply(&mut self, op: &TxnOp, zxid: i64, time: i64, session: SessionId) -> ApplyOutcome {
        match op {
            TxnOp::Create { path, data, ephemeral_owner, .. } => {
                if validate_path(path).is_err() {
                    return ApplyOutcome::Error(ErrorCode::BadArguments);
                }
                let Some(up) = self.nodes.get(parent(path)) else {
                    return ApplyOutcome::Error(ErrorCode::NoNode);
                };
                if self.nodes.contains_key(path) {
                    return ApplyOutcome::Error(ErrorCode::NodeExists);
                }
                if matches!(NodeKind::from_owner(up.owner), NodeKind::Ephemeral(_)) {
                    return ApplyOutcome::Error(ErrorCode::NoChildrenForEphemerals);
                }
                let up = self.nodes.get_mut(parent(path)).expect("checked");
                up.creations += 1;
                up.pzxid = zxid;
                let node = ModelNode {
                    data: data.as_ref().map(|d| d.to_vec()),
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime: time,
                    mtime: time,
                    version: 0,
                    creations: 0,
                    aversion: 0,
                    owner: *ephemeral_owner,
                };
                self.nodes.insert(path.clone(), node);
                ApplyOutcome::Created { path: path.clone(), stat: self.stat(path) }
            }
            TxnOp::Delete { path } => {
                if is_builtin(path) {
                    return ApplyOutcome::Error(ErrorCode::BadArguments);
                }
                if !self.nodes.contains_key(parent(path)) || !self.nodes.contains_key(path) {
                    return ApplyOutcome::Error(ErrorCode::NoNode);
                }
                if !self.children(path).is_empty() {
                    return ApplyOutcome::Error(ErrorCode::NotEmpty);
                }
                self.nodes.remove(path);
                let up = self.nodes.get_mut(parent(path)).expect("checked");
                up.pzxid = up.pzxid.max(zxid);
                ApplyOutcome::Deleted
            }
            TxnOp::SetData { path, data, version } => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return ApplyOutcome::Error(ErrorCode::NoNode);
                };
                node.data = data.as_ref().map(|d| d.to_vec());
                node.mzxid = zxid;
                node.mtime = time;
                node.version = *version;
                ApplyOutcome::DataSet(self.stat(path))
            }
            TxnOp::SetAcl { path, version, .. } => {
                let Some(node) = self.nodes.get_mut(path) else {
                    return ApplyOutcome::Error(ErrorCode::NoNode);
                };
                node.aversion = *version;
                ApplyOutcome::AclSet(self.stat(path))
            }
            TxnOp::CloseSession => {
                let owned: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, node)| node.owner == session.0)
                    .map(|(path, _)| path.clone())
                    .collect();
                for path in owned {
                    self.apply(&TxnOp::Delete { path }, zxid, time, session);
                }
                ApplyOutcome::SessionClosed
            }
            TxnOp::Multi(ops) => ApplyOutcome::Multi(
                ops.iter().map(|op| self.apply(op, zxid, time, session)).collect(),
            ),
            TxnOp::Error { code } => ApplyOutcome::Error(error_code(*code)),
            other => unreachable!("not generated: {other:?}"),
        }
    }
}

/// A txn in terms of indexes into the current paths, resolved against the model when applied.
#[derive(Clone, Debug)]
enum Step {
    Create { parent: usize, name: u8, data: Option<Vec<u8>>, owner: u8, sequential: bool },
    Delete { target: usize },
    SetData { target: usize, data: Option<Vec<u8>> },
    SetAcl { target: usize },
    CloseSession { session: u8 },
    Multi(Vec<Step>),
    FailedMulti { ops: usize },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let data = proptest::option::weighted(0.9, proptest::collection::vec(any::<u8>(), 0..6));
    let leaf = prop_oneof![
        4 => (any::<usize>(), 0u8..4, data.clone(), 0u8..6, any::<bool>()).prop_map(
            |(parent, name, data, owner, sequential)| Step::Create { parent, name, data, owner, sequential }
        ),
        2 => any::<usize>().prop_map(|target| Step::Delete { target }),
        2 => (any::<usize>(), data).prop_map(|(target, data)| Step::SetData { target, data }),
        1 => any::<usize>().prop_map(|target| Step::SetAcl { target }),
        1 => (1u8..3).prop_map(|session| Step::CloseSession { session }),
        1 => (1usize..4).prop_map(|ops| Step::FailedMulti { ops }),
    ];
    leaf.prop_recursive(1, 8, 4, |inner| {
        proptest::collection::vec(inner, 1..4).prop_map(Step::Multi)
    })
}

/// Turns a step into the txn op preparation would produce (versions from the model, sequence
/// suffix from the parent's creation count). Some ops are deliberately inconsistent.
fn resolve(step: &Step, model: &Model) -> TxnOp {
    let paths: Vec<&String> = model.nodes.keys().collect();
    let pick = |index: usize| paths[index % paths.len()].clone();
    match step {
        Step::Create { parent, name, data, owner, sequential } => {
            let up = pick(*parent);
            let mut path = path::join(&up, &format!("n{name}"));
            if *sequential {
                path.push_str(&sequence_suffix(model.nodes[&up].creations));
            }
            let ephemeral_owner = match owner {
                1 => SESSION.0,
                2 => OTHER.0,
                3 => EPHEMERAL_CONTAINER,
                4 => TTL_MARKER | 1000,
                _ => 0,
            };
            let data = data.as_deref().map(Bytes::copy_from_slice);
            TxnOp::Create { path, data, acl: Acl::open_unsafe().into(), ephemeral_owner }
        }
        Step::Delete { target } => TxnOp::Delete { path: pick(*target) },
        Step::SetData { target, data } => {
            let path = pick(*target);
            let version = model.nodes[&path].version + 1;
            TxnOp::SetData { path, data: data.as_deref().map(Bytes::copy_from_slice), version }
        }
        Step::SetAcl { target } => {
            let path = pick(*target);
            let version = model.nodes[&path].aversion + 1;
            let acl = vec![Acl { perms: perms::ALL, id: Id::new("ip", "10.0.0.0/8") }];
            TxnOp::SetAcl { path, acl: acl.into(), version }
        }
        Step::CloseSession { .. } => TxnOp::CloseSession,
        Step::Multi(steps) => TxnOp::Multi(
            steps
                .iter()
                .filter(|step| {
                    !matches!(
                        step,
                        Step::CloseSession { .. } | Step::Multi(_) | Step::FailedMulti { .. }
                    )
                })
                .map(|step| resolve(step, model))
                .collect(),
        ),
        Step::FailedMulti { ops } => {
            let mut codes = vec![TxnOp::Error { code: 0 }; *ops];
            codes[ops - 1] = TxnOp::Error { code: ErrorCode::BadVersion.code() };
            TxnOp::Multi(codes)
        }
    }
}

/// Applies the steps to both the tree and the model, comparing after each.
fn run_model(steps: &[Step]) -> Result<DataTree, TestCaseError> {
    let mut tree = DataTree::new();
    let mut model = Model::new();
    let mut events = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let op = resolve(step, &model);
        let session = match step {
            Step::CloseSession { session: 2 } => OTHER,
            _ => SESSION,
        };
        let zxid = Zxid::new(1, index as u32 + 1);
        let time = 10 * index as i64;
        let txn = Txn { zxid, session, cxid: 0, time_ms: time, op: op.clone() };
        let outcome = tree.apply(&txn, &mut events);
        let expected = model.apply(&op, zxid.to_wire(), time, session);
        prop_assert_eq!(&outcome, &expected, "step {}: {:?}", index, op);
        tree.check_invariants();
        prop_assert_eq!(tree.node_count(), model.nodes.len());
        for path in model.nodes.keys() {
            prop_assert_eq!(tree.stat(path), Some(model.stat(path)), "stat of {}", path);
            prop_assert_eq!(
                tree.children(path),
                Some(model.children(path)),
                "children of {}",
                path
            );
            let data = tree.data(path).expect("present").0.map(|d| d.to_vec());
            prop_assert_eq!(data, model.nodes[path].data.clone(), "data of {}", path);
        }
    }
    Ok(tree)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tree_agrees_with_model(steps in proptest::collection::vec(step_strategy(), 1..40)) {
        run_model(&steps)?;
    }

    #[test]
    fn snapshot_round_trips(steps in proptest::collection::vec(step_strategy(), 0..40)) {
        let tree = run_model(&steps)?;
        let image = tree.encode_snapshot();
        let decoded = DataTree::decode_snapshot(&image);
        prop_assert!(decoded.is_ok(), "{:?}", decoded);
        let decoded = decoded.expect("checked");
        decoded.check_invariants();
        prop_assert_eq!(decoded.digest(), tree.digest());
        prop_assert_eq!(&decoded, &tree);
        for session in [SESSION, OTHER] {
            prop_assert_eq!(decoded.ephemerals(session), tree.ephemerals(session));
        }
        prop_assert_eq!(decoded.reap_candidates(1 << 40, 1), tree.reap_candidates(1 << 40, 1));
        prop_assert_eq!(decoded.encode_snapshot(), image);
    }

    #[test]
    fn an_image_restores_the_tree_it_was_taken_of(steps in proptest::collection::vec(step_strategy(), 0..40)) {
        let mut tree = run_model(&steps)?;
        let image = tree.image();
        let bytes = tree.encode_snapshot();
        let mut restored = DataTree::from_image(&image);
        restored.check_invariants();
        prop_assert_eq!(restored.digest(), tree.digest());
        prop_assert_eq!(&restored, &tree);
        for session in [SESSION, OTHER] {
            prop_assert_eq!(restored.ephemerals(session), tree.ephemerals(session));
        }
        prop_assert_eq!(restored.reap_candidates(1 << 40, 1), tree.reap_candidates(1 << 40, 1));
        prop_assert_eq!(restored.encode_snapshot(), bytes.clone());
        // Both go on alike (the restored tree writes its own copies of the shared pages).
        let mut events = Vec::new();
        for (i, op) in [
            create_op("/after", Some(b"x"), 0),
            create_op("/after/child", None, SESSION.0),
            set_data_op("/after", b"longer data", -1),
            delete_op("/after/child"),
            create_op("/again", Some(b""), 0),
        ]
        .into_iter()
        .enumerate()
        {
            let zxid = Zxid::new(2, i as u32 + 1);
            let txn = Txn { zxid, session: SESSION, cxid: 0, time_ms: 7, op };
            let outcome = tree.apply(&txn, &mut events);
            prop_assert_eq!(restored.apply(&txn, &mut events), outcome);
            restored.check_invariants();
            prop_assert_eq!(&restored, &tree);
            prop_assert_eq!(restored.digest(), tree.digest());
        }
        prop_assert_eq!(DataTree::from_image(&image).encode_snapshot(), bytes);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = DataTree::decode_snapshot(&bytes);
    }

    /// Damage behind a recomputed checksum reaches the structural checks: decoding must still
    /// either fail cleanly or yield a consistent tree.
    #[test]
    fn decode_survives_damage_behind_a_valid_checksum(
        steps in proptest::collection::vec(step_strategy(), 0..12),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let tree = run_model(&steps)?;
        let mut image = tree.encode_snapshot();
        image.truncate(image.len() - 4);
        for (at, value) in edits {
            let at = at % image.len();
            image[at] = value;
        }
        if let Some(cut) = cut {
            image.truncate(cut % (image.len() + 1));
        }
        let checksum = crc32c::crc32c(&image);
        image.extend_from_slice(&checksum.to_le_bytes());
        if let Ok(decoded) = DataTree::decode_snapshot(&image) {
            decoded.check_invariants();
        }
    }

    #[test]
    fn equal_histories_give_equal_digests(steps in proptest::collection::vec(step_strategy(), 0..30)) {
        let first = run_model(&steps)?;
        let second = run_model(&steps)?;
        prop_assert_eq!(first.digest(), second.digest());
        prop_assert_eq!(first.encode_snapshot(), second.encode_snapshot());
    }
}
