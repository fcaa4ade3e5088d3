//! The exact bytes of every kind of error reply, as Apache ZooKeeper 3.8 sends them
//! (`FinalRequestProcessor`, `ServerCnxn.sendResponse`): the 16-byte `ReplyHeader` (xid echoed,
//! zxid, err) and, for all but two shapes, nothing after it.
//!
//! The zxid rule: a write (create*, delete, setData, setACL, multi) gets its zxid in
//! `PrepRequestProcessor` before it is checked or even decoded, so every failed write is an
//! error txn and its reply carries a fresh zxid (last + 1); a read, sync or watch request that
//! fails carries the last zxid. The two bodies after a non-zero err: none; a multi reports its
//! failure with err 0 and per-op results (the ops before the failing one `ErrorResult(0)`, the
//! ones after `ErrorResult(-2)`), and a multiRead of write ops fails with -5 plus the empty
//! `MultiResponse` ZooKeeper built before it met the first op.
//!
//! Recorded from Debian's ZooKeeper 3.8.0 with a raw client; this file passes against it
//! (`ENSEMBLE_TEST_TARGET=zookeeper cargo test --test clients error_replies`).

use crate::harness::Server;
use crate::raw::{self, err, op, Conn, Jute, OPEN_ACL};

/// What the reply's zxid must be, relative to the highest zxid seen before it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Zxid {
    /// The last zxid (reads, sync, watch requests).
    Last,
    /// Last + 1: the request became a txn (every write, failed or not).
    Fresh,
}

/// One request and the reply ZooKeeper sends: err code and the exact bytes after the header.
struct Case {
    what: &'static str,
    opcode: i32,
    body: Vec<u8>,
    zxid: Zxid,
    err: i32,
    after_header: Vec<u8>,
}

fn case(what: &'static str, opcode: i32, body: Vec<u8>, zxid: Zxid, err: i32) -> Case {
    Case { what, opcode, body, zxid, err, after_header: Vec::new() }
}

/// A multi result header and, for an error, its `ErrorResponse`: `{type -1, done 0, err}` + err.
fn multi_error(code: i32) -> Vec<u8> {
    Jute::new().int(-1).boolean(false).int(code).int(code).bytes()
}

/// The terminating `MultiHeader` of a response: `{type -1, done 1, err -1}`.
fn multi_end() -> Vec<u8> {
    Jute::new().int(-1).boolean(true).int(-1).bytes()
}

fn path_version(path: &str, version: i32) -> Vec<u8> {
    Jute::new().ustring(path).int(version).bytes()
}

fn set_data(path: &str, version: i32) -> Vec<u8> {
    Jute::new().ustring(path).buffer(Some(b"x")).int(version).bytes()
}

fn set_acl(path: &str, acl: &[(i32, &str, &str)], version: i32) -> Vec<u8> {
    Jute::new().ustring(path).acls(acl).int(version).bytes()
}

fn create(path: &str, flags: i32) -> Vec<u8> {
    raw::create_body(path, Some(b"d"), flags)
}

fn create_with_acl(path: &str, acl: &[(i32, &str, &str)]) -> Vec<u8> {
    Jute::new().ustring(path).buffer(Some(b"")).acls(acl).int(0).bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_are_byte_for_byte_zookeepers() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let setup = [
        create("/s", 0),
        create("/s/kid", 0),
        create("/s/eph", 1),
        create_with_acl("/s/ro", &[(1, "world", "anyone")]),
        create_with_acl("/s/noread", &[(8, "world", "anyone")]),
    ];
    let mut last = 0;
    for body in setup {
        last = conn.call(op::CREATE, &body).await.ok("setup").zxid;
    }

    let missing = "/s/missing";
    let read = |path: &str| raw::path_watch_body(path, false);
    let multi = raw::multi_body;
    let mut multi_ok_then_exists = multi_error(0);
    multi_ok_then_exists.extend(multi_error(err::NODE_EXISTS));
    multi_ok_then_exists.extend(multi_error(err::RUNTIME_INCONSISTENCY));
    multi_ok_then_exists.extend(multi_end());
    let mut multi_first_fails = multi_error(err::NO_NODE);
    multi_first_fails.extend(multi_error(err::RUNTIME_INCONSISTENCY));
    multi_first_fails.extend(multi_end());
    let mut multi_check_fails = multi_error(err::BAD_VERSION);
    multi_check_fails.extend(multi_end());
    let mut multi_create2_exists = multi_error(err::NODE_EXISTS);
    multi_create2_exists.extend(multi_end());

    use Zxid::{Fresh, Last};
    let cases = vec![
        // create, create2, createContainer, createTTL
        case("create without parent", op::CREATE, create("/s/missing/x", 0), Fresh, err::NO_NODE),
        case("create existing", op::CREATE, create("/s", 0), Fresh, err::NODE_EXISTS),
        case(
            "create under ephemeral",
            op::CREATE,
            create("/s/eph/x", 0),
            Fresh,
            err::NO_CHILDREN_FOR_EPHEMERALS,
        ),
        case("create without CREATE", op::CREATE, create("/s/ro/x", 0), Fresh, err::NO_AUTH),
        case(
            "create invalid ACL",
            op::CREATE,
            create_with_acl("/s/ia", &[(31, "world", "nobody")]),
            Fresh,
            err::INVALID_ACL,
        ),
        case("create bad flags", op::CREATE, create("/s/bf", 99), Fresh, err::BAD_ARGUMENTS),
        case(
            "create truncated",
            op::CREATE,
            Jute::new().ustring("/s").bytes(),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        case("create2 without parent", op::CREATE2, create("/s/missing/x", 0), Fresh, err::NO_NODE),
        case("create2 existing", op::CREATE2, create("/s", 0), Fresh, err::NODE_EXISTS),
        case(
            "create2 TTL mode (TTLs off)",
            op::CREATE2,
            create("/s/t", 5),
            Fresh,
            err::UNIMPLEMENTED,
        ),
        case("createContainer existing", op::CREATE_CONTAINER, create("/s", 4), Fresh, -110),
        case(
            "createContainer without parent",
            op::CREATE_CONTAINER,
            create("/s/missing/c", 4),
            Fresh,
            err::NO_NODE,
        ),
        case(
            "createTTL (TTLs off)",
            op::CREATE_TTL,
            Jute::new().raw(&create("/s/ttl", 5)).long(1000).bytes(),
            Fresh,
            err::UNIMPLEMENTED,
        ),
        // delete, setData, setACL
        case("delete missing", op::DELETE, path_version(missing, -1), Fresh, err::NO_NODE),
        case("delete non-empty", op::DELETE, path_version("/s", -1), Fresh, err::NOT_EMPTY),
        case("delete bad version", op::DELETE, path_version("/s/kid", 5), Fresh, err::BAD_VERSION),
        case(
            "delete truncated",
            op::DELETE,
            Jute::new().ustring("/s").bytes(),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        case("setData missing", op::SET_DATA, set_data(missing, -1), Fresh, err::NO_NODE),
        case("setData bad version", op::SET_DATA, set_data("/s", 7), Fresh, err::BAD_VERSION),
        case("setData without WRITE", op::SET_DATA, set_data("/s/noread", -1), Fresh, -102),
        case("setData bad path", op::SET_DATA, set_data("/s/ro/", -1), Fresh, err::BAD_ARGUMENTS),
        case(
            "setData truncated",
            op::SET_DATA,
            Jute::new().ustring("/s").bytes(),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        case("setACL missing", op::SET_ACL, set_acl(missing, OPEN_ACL, -1), Fresh, err::NO_NODE),
        case("setACL bad version", op::SET_ACL, set_acl("/s", OPEN_ACL, 9), Fresh, -103),
        case(
            "setACL invalid ACL",
            op::SET_ACL,
            set_acl("/s", &[(31, "world", "x")], -1),
            Fresh,
            err::INVALID_ACL,
        ),
        case(
            "setACL truncated",
            op::SET_ACL,
            Jute::new().ustring("/s").bytes(),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        // reads
        case("exists missing", op::EXISTS, read(missing), Last, err::NO_NODE),
        case("exists NUL in path", op::EXISTS, read("/s\0x"), Last, err::BAD_ARGUMENTS),
        case("exists truncated", op::EXISTS, Vec::new(), Last, err::MARSHALLING_ERROR),
        case("getData missing", op::GET_DATA, read(missing), Last, err::NO_NODE),
        case("getData without READ", op::GET_DATA, read("/s/noread"), Last, err::NO_AUTH),
        case("getData truncated", op::GET_DATA, vec![0, 0], Last, err::MARSHALLING_ERROR),
        case("getACL missing", op::GET_ACL, Jute::new().ustring(missing).bytes(), Last, -101),
        case("getACL truncated", op::GET_ACL, Vec::new(), Last, err::MARSHALLING_ERROR),
        case("getChildren missing", op::GET_CHILDREN, read(missing), Last, err::NO_NODE),
        case("getChildren without READ", op::GET_CHILDREN, read("/s/noread"), Last, -102),
        case("getChildren2 missing", op::GET_CHILDREN2, read(missing), Last, err::NO_NODE),
        case("getChildren2 truncated", op::GET_CHILDREN2, Vec::new(), Last, -5),
        case(
            "getAllChildrenNumber missing",
            op::GET_ALL_CHILDREN_NUMBER,
            Jute::new().ustring(missing).bytes(),
            Last,
            err::NO_NODE,
        ),
        case("sync truncated", op::SYNC, Vec::new(), Last, err::MARSHALLING_ERROR),
        // watch requests
        case(
            "checkWatches without a watch",
            op::CHECK_WATCHES,
            Jute::new().ustring("/s").int(1).bytes(),
            Last,
            err::NO_WATCHER,
        ),
        case(
            "removeWatches without a watch",
            op::REMOVE_WATCHES,
            Jute::new().ustring("/s").int(1).bytes(),
            Last,
            err::NO_WATCHER,
        ),
        case("checkWatches truncated", op::CHECK_WATCHES, Vec::new(), Last, -5),
        case(
            "addWatch bad mode",
            op::ADD_WATCH,
            Jute::new().ustring("/s").int(7).bytes(),
            Last,
            err::MARSHALLING_ERROR,
        ),
        // multi: failures are err 0 with per-op results; undecodable ones are bare -5 txns
        Case {
            after_header: multi_ok_then_exists,
            ..case(
                "multi: second op fails",
                op::MULTI,
                multi(&[
                    (op::CREATE, create("/s/m1", 0)),
                    (op::CREATE, create("/s", 0)),
                    (op::SET_DATA, set_data("/s", -1)),
                ]),
                Fresh,
                err::OK,
            )
        },
        Case {
            after_header: multi_first_fails,
            ..case(
                "multi: first op fails",
                op::MULTI,
                multi(&[(op::DELETE, path_version(missing, -1)), (op::CREATE, create("/s/m2", 0))]),
                Fresh,
                err::OK,
            )
        },
        Case {
            after_header: multi_check_fails,
            ..case(
                "multi: check fails",
                op::MULTI,
                multi(&[(op::CHECK, path_version("/s", 9))]),
                Fresh,
                err::OK,
            )
        },
        Case {
            after_header: multi_create2_exists,
            ..case(
                "multi: create2 fails",
                op::MULTI,
                multi(&[(op::CREATE2, create("/s", 0))]),
                Fresh,
                err::OK,
            )
        },
        case(
            "multi: a read inside",
            op::MULTI,
            multi(&[(op::GET_DATA, read("/s"))]),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        case(
            "multi: exists inside",
            op::MULTI,
            multi(&[(op::EXISTS, read("/s"))]),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        case(
            "multi: truncated",
            op::MULTI,
            Jute::new().int(op::CREATE).boolean(false).int(-1).bytes(),
            Fresh,
            err::MARSHALLING_ERROR,
        ),
        // multiRead: a write op inside fails with the empty MultiResponse after the header
        Case {
            after_header: multi_end(),
            ..case(
                "multiRead: a create inside",
                op::MULTI_READ,
                multi(&[(op::CREATE, create("/s/x", 0))]),
                Last,
                err::MARSHALLING_ERROR,
            )
        },
        Case {
            after_header: multi_end(),
            ..case(
                "multiRead: a check inside",
                op::MULTI_READ,
                multi(&[(op::CHECK, path_version("/s", -1))]),
                Last,
                err::MARSHALLING_ERROR,
            )
        },
        case(
            "multiRead: exists inside",
            op::MULTI_READ,
            multi(&[(op::EXISTS, read("/s"))]),
            Last,
            err::MARSHALLING_ERROR,
        ),
        case(
            "multiRead: a read and a write mixed",
            op::MULTI_READ,
            multi(&[(op::GET_DATA, read("/s")), (op::CHECK, path_version("/s", -1))]),
            Last,
            err::MARSHALLING_ERROR,
        ),
        case(
            "multiRead: truncated",
            op::MULTI_READ,
            Jute::new().int(op::GET_DATA).boolean(false).int(-1).bytes(),
            Last,
            err::MARSHALLING_ERROR,
        ),
    ];

    for (i, case) in cases.into_iter().enumerate() {
        let xid = 1000 + i as i32;
        conn.send_with_xid(xid, case.opcode, &case.body).await;
        let reply = conn.reply_for(xid).await;
        let zxid = match case.zxid {
            Zxid::Last => last,
            Zxid::Fresh => last + 1,
        };
        let what = case.what;
        assert_eq!((reply.xid, reply.err), (xid, case.err), "{what}: xid and err");
        assert_eq!(reply.zxid, zxid, "{what}: zxid ({:?})", case.zxid);
        assert_eq!(reply.body, case.after_header, "{what}: bytes after the header");
        last = last.max(reply.zxid);
    }
    conn.ping().await.ok("the connection stays usable");
}

/// kazoo's `test_create_makepath_incompatible_acls`: kazoo sends `CREATOR_ALL_ACL` as `auth`
/// with a null id (Java clients send ""). ZooKeeper ignores an `auth` entry's id; Ensemble
/// answered `MarshallingError`, which kazoo could not place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_acl_with_a_null_id_is_the_callers_ids() {
    let server = Server::start();
    let (mut owner, _) = Conn::session(&server.addr(), 30_000).await;
    let auth = Jute::new().int(0).ustring("digest").buffer(Some(b"username:password")).bytes();
    owner.send_with_xid(-4, op::AUTH, &auth).await;
    assert_eq!(owner.reply_for(-4).await.err, err::OK);
    let creator_all = |path: &str| {
        let acl = Jute::new().int(1).int(31).ustring("auth").buffer(None);
        Jute::new().ustring(path).buffer(Some(b"val2")).raw(&acl.bytes()).int(0).bytes()
    };
    owner.call(op::CREATE, &creator_all("/1")).await.ok("create /1 with auth:null");
    let reply = owner.call(op::CREATE2, &creator_all("/1/2")).await.ok("create2 /1/2");
    assert_eq!(reply.reader().ustring(), "/1/2");

    let acl = owner.call(op::GET_ACL, &Jute::new().ustring("/1/2").bytes()).await.ok("getACL");
    let digest = crate::digest_id("username:password");
    assert_eq!(reply_acls(&acl), vec![(31, "digest".to_string(), digest)]);

    // Another user's makepath: the create below /1/2 is refused, as with ZooKeeper.
    let (mut other, _) = Conn::session(&server.addr(), 30_000).await;
    let refused = other.call(op::CREATE, &create("/1/2/3", 0)).await;
    assert_eq!((refused.err, refused.body.len()), (err::NO_AUTH, 0));
}

fn reply_acls(reply: &raw::Reply) -> Vec<(i32, String, String)> {
    reply.reader().acls()
}
