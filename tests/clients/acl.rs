//! Authentication and ACLs: digest auth, the `auth`, `digest`, `ip` and `world` schemes,
//! permission checks per operation, getACL masking, super digest, aversion, whoAmI and the
//! InvalidACL / AuthFailed paths.

use zookeeper_client as zk;

use crate::harness::{Options, Server, SUPER_DIGEST_LINE};
use crate::raw::{self, err, op, Conn, Jute};
use crate::{digest_id, sorted, PERSISTENT};

fn acl(perms: zk::Permission, scheme: &str, id: &str) -> zk::Acl {
    zk::Acl::new(perms, zk::AuthId::new(scheme, id))
}

fn with_acls(acls: &[zk::Acl]) -> zk::CreateOptions<'_> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::new(acls))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl_is_enforced_and_super_bypasses_it() {
    let server = Server::start_with(Options::with_lines(&[SUPER_DIGEST_LINE]));
    let alice = server.client_with_digest("alice:secret").await;
    // The `auth` scheme expands to every authenticated id of the creator.
    alice
        .create(
            "/secure",
            b"s3cret",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all()),
        )
        .await
        .unwrap();
    alice.create("/secure/child", b"", &PERSISTENT).await.unwrap();
    let (acls, _) = alice.get_acl("/secure").await.unwrap();
    assert_eq!(acls, [acl(zk::Permission::ALL, "digest", &digest_id("alice:secret"))]);

    let anonymous = server.client().await;
    assert_eq!(anonymous.get_data("/secure").await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.set_data("/secure", b"x", None).await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.create("/secure/new", b"", &PERSISTENT).await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.delete("/secure/child", None).await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.list_children("/secure").await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.get_children("/secure").await, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.get_acl("/secure").await, Err(zk::Error::NoAuth));
    let set_acl = anonymous.set_acl("/secure", &zk::Acls::anyone_all(), None).await;
    assert_eq!(set_acl, Err(zk::Error::NoAuth));
    assert_eq!(anonymous.count_descendants_number("/secure").await, Err(zk::Error::NoAuth));
    // The child itself is open.
    anonymous.get_data("/secure/child").await.unwrap();

    let bob = server.client_with_digest("bob:secret").await;
    assert_eq!(bob.get_data("/secure").await, Err(zk::Error::NoAuth));
    let wrong_password = server.client_with_digest("alice:wrong").await;
    assert_eq!(wrong_password.get_data("/secure").await, Err(zk::Error::NoAuth));

    // Adding auth later on a live connection works from the next request on.
    let late = server.client().await;
    assert_eq!(late.get_data("/secure").await, Err(zk::Error::NoAuth));
    late.auth("digest", b"alice:secret").await.unwrap();
    assert_eq!(late.get_data("/secure").await.unwrap().0, b"s3cret");

    let superuser = server.client_with_digest("super:test").await;
    assert_eq!(superuser.get_data("/secure").await.unwrap().0, b"s3cret");
    superuser.set_data("/secure", b"changed", None).await.unwrap();
    superuser.create("/secure/by-super", b"", &PERSISTENT).await.unwrap();
    superuser.delete("/secure/by-super", None).await.unwrap();
    let (super_view, _) = superuser.get_acl("/secure").await.unwrap();
    assert_eq!(super_view, acls, "super sees the unmasked ACL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_permission_gates_its_operations() {
    let server = Server::start();
    let client = server.client().await;
    let anyone = |perms| [acl(perms, "world", "anyone")];
    let read = anyone(zk::Permission::READ);
    let write = anyone(zk::Permission::WRITE);
    let create = anyone(zk::Permission::CREATE);
    let delete = anyone(zk::Permission::DELETE);
    let admin = anyone(zk::Permission::ADMIN);
    let none = anyone(zk::Permission::NONE);

    client.create("/r", b"r", &with_acls(&read)).await.unwrap();
    client.get_data("/r").await.unwrap();
    client.list_children("/r").await.unwrap();
    assert_eq!(client.set_data("/r", b"x", None).await, Err(zk::Error::NoAuth));
    assert_eq!(client.create("/r/c", b"", &PERSISTENT).await, Err(zk::Error::NoAuth));
    assert_eq!(client.set_acl("/r", &read, None).await, Err(zk::Error::NoAuth));
    client.get_acl("/r").await.unwrap();

    client.create("/w", b"w", &with_acls(&write)).await.unwrap();
    client.set_data("/w", b"x", None).await.unwrap();
    assert_eq!(client.get_data("/w").await, Err(zk::Error::NoAuth));
    assert_eq!(client.list_children("/w").await, Err(zk::Error::NoAuth));
    assert_eq!(client.get_acl("/w").await, Err(zk::Error::NoAuth), "getACL needs READ or ADMIN");

    client.create("/c", b"", &with_acls(&create)).await.unwrap();
    client.create("/c/kid", b"", &PERSISTENT).await.unwrap();
    assert_eq!(client.delete("/c/kid", None).await, Err(zk::Error::NoAuth), "DELETE on parent");

    client.create("/d", b"", &PERSISTENT).await.unwrap();
    client.create("/d/kid", b"", &with_acls(&none)).await.unwrap();
    client.set_acl("/d", &delete, None).await.unwrap();
    assert_eq!(client.create("/d/other", b"", &PERSISTENT).await, Err(zk::Error::NoAuth));
    // Deleting needs DELETE on the parent only, whatever the node's own ACL.
    client.delete("/d/kid", None).await.unwrap();

    client.create("/a", b"", &with_acls(&admin)).await.unwrap();
    assert_eq!(client.get_data("/a").await, Err(zk::Error::NoAuth));
    client.get_acl("/a").await.unwrap();
    client.set_acl("/a", &zk::Acls::anyone_all(), None).await.unwrap();
    client.get_data("/a").await.unwrap();

    client.create("/n", b"", &with_acls(&none)).await.unwrap();
    assert_eq!(client.get_data("/n").await, Err(zk::Error::NoAuth));
    assert_eq!(client.set_acl("/n", &zk::Acls::anyone_all(), None).await, Err(zk::Error::NoAuth));
    // exists needs READ on an existing node since 3.8.4/3.9.2 (none before).
    if server.behaves_like_at_least(3, 8, 4) {
        assert_eq!(client.check_stat("/n").await, Err(zk::Error::NoAuth));
    } else {
        assert!(client.check_stat("/n").await.unwrap().is_some());
    }
    assert_eq!(client.check_stat("/n/missing").await, Ok(None), "no ACL check on missing nodes");
    // A node's own ACL never gates its deletion.
    client.delete("/n", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_acl_masks_digest_ids_without_admin() {
    let server = Server::start();
    let alice = server.client_with_digest("alice:secret").await;
    let alice_id = digest_id("alice:secret");
    let acls = [
        acl(zk::Permission::READ, "world", "anyone"),
        acl(zk::Permission::ALL, "digest", &alice_id),
    ];
    alice.create("/m", b"", &with_acls(&acls)).await.unwrap();

    let (as_owner, _) = alice.get_acl("/m").await.unwrap();
    assert_eq!(as_owner, acls);

    let anonymous = server.client().await;
    let (as_reader, _) = anonymous.get_acl("/m").await.unwrap();
    let masked = [
        acl(zk::Permission::READ, "world", "anyone"),
        acl(zk::Permission::ALL, "digest", "alice:x"),
    ];
    assert_eq!(as_reader, masked, "digest ids are masked for callers without ADMIN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_acl_checks_and_bumps_aversion_only() {
    let server = Server::start();
    let client = server.client().await;
    let (created, _) = client.create("/v", b"data", &PERSISTENT).await.unwrap();
    let read_all = [acl(zk::Permission::ALL, "world", "anyone")];

    assert_eq!(client.set_acl("/v", &read_all, Some(1)).await, Err(zk::Error::BadVersion));
    let stat = client.set_acl("/v", &read_all, Some(0)).await.unwrap();
    assert_eq!(stat.aversion, 1);
    assert_eq!((stat.version, stat.cversion), (0, 0));
    assert_eq!(stat.mzxid, created.mzxid, "setACL does not touch mzxid");
    assert_eq!(stat.mtime, created.mtime);
    assert_eq!(client.set_acl("/v", &read_all, Some(0)).await, Err(zk::Error::BadVersion));
    let stat = client.set_acl("/v", &read_all, None).await.unwrap();
    assert_eq!(stat.aversion, 2);
    // The version given to setACL is compared with aversion, not version.
    client.set_data("/v", b"x", None).await.unwrap();
    client.set_data("/v", b"y", None).await.unwrap();
    client.set_data("/v", b"z", None).await.unwrap();
    assert_eq!(client.set_acl("/v", &read_all, Some(3)).await, Err(zk::Error::BadVersion));
    assert_eq!(client.set_acl("/v", &read_all, Some(2)).await.unwrap().aversion, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_acls_are_rejected() {
    let server = Server::start();
    let client = server.client().await;
    client.create("/t", b"", &PERSISTENT).await.unwrap();

    let cases: Vec<(&str, Vec<zk::Acl>)> = vec![
        ("world id other than anyone", vec![acl(zk::Permission::ALL, "world", "nobody")]),
        ("unknown scheme", vec![acl(zk::Permission::ALL, "nosuch", "x")]),
        ("digest id without ':'", vec![acl(zk::Permission::ALL, "digest", "alice")]),
        ("auth scheme without authenticated ids", vec![acl(zk::Permission::ALL, "auth", "")]),
        ("bad ip", vec![acl(zk::Permission::ALL, "ip", "not-an-address")]),
    ];
    for (what, acls) in &cases {
        let created = client.create("/new", b"", &with_acls(acls)).await;
        assert_eq!(created, Err(zk::Error::InvalidAcl), "create: {what}");
        assert_eq!(
            client.set_acl("/t", acls, None).await,
            Err(zk::Error::InvalidAcl),
            "setACL: {what}"
        );
    }
    assert_eq!(client.check_stat("/new").await.unwrap(), None);

    // An empty ACL list is refused by the server too (the crate checks create locally).
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let body = Jute::new().ustring("/empty").buffer(Some(b"")).acls(&[]).int(0).bytes();
    assert_eq!(conn.call(op::CREATE, &body).await.err, err::INVALID_ACL);
    let body = Jute::new().ustring("/t").acls(&[]).int(-1).bytes();
    assert_eq!(conn.call(op::SET_ACL, &body).await.err, err::INVALID_ACL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_scheme_matches_the_connection_address() {
    let server = Server::start();
    let client = server.client().await;
    let local = [acl(zk::Permission::ALL, "ip", "127.0.0.1")];
    let local_net = [acl(zk::Permission::ALL, "ip", "127.0.0.0/8")];
    let elsewhere = [acl(zk::Permission::ALL, "ip", "10.1.2.3")];
    client.create("/local", b"", &with_acls(&local)).await.unwrap();
    client.create("/net", b"", &with_acls(&local_net)).await.unwrap();
    client.create("/far", b"", &with_acls(&elsewhere)).await.unwrap();
    client.get_data("/local").await.unwrap();
    client.get_data("/net").await.unwrap();
    assert_eq!(client.get_data("/far").await, Err(zk::Error::NoAuth));
    // `auth` never picks up the ip id: an unauthenticated creator gets InvalidACL.
    let creator = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    assert_eq!(client.create("/mine", b"", &creator).await, Err(zk::Error::InvalidAcl));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_scheme_expands_to_all_authenticated_ids() {
    let server = Server::start();
    let client = server.client_with_digest("alice:a").await;
    client.auth("digest", b"bob:b").await.unwrap();
    let creator = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    client.create("/both", b"", &creator).await.unwrap();
    let (acls, _) = client.get_acl("/both").await.unwrap();
    let expected = sorted(vec![digest_id("alice:a"), digest_id("bob:b")]);
    let ids = sorted(acls.iter().map(|a| a.id().to_string()).collect());
    assert_eq!(ids, expected);
    assert!(acls.iter().all(|a| a.scheme() == "digest" && a.permission() == zk::Permission::ALL));

    let bob = server.client_with_digest("bob:b").await;
    bob.get_data("/both").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_am_i_lists_connection_identities() {
    let server = Server::start();
    let anonymous = server.client().await;
    let ids = anonymous.list_auth_users().await.unwrap();
    assert_eq!(ids, [zk::AuthUser::new("ip", "127.0.0.1")]);

    let alice = server.client_with_digest("alice:secret").await;
    let ids = alice.list_auth_users().await.unwrap();
    let mut ids: Vec<(String, String)> =
        ids.iter().map(|u| (u.scheme().to_string(), u.user().to_string())).collect();
    ids.sort();
    let expected = [("digest", "alice"), ("ip", "127.0.0.1")];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(s, u)| (s.to_string(), u.to_string())).collect();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_auth_scheme_fails_and_closes() {
    let server = Server::start();
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let body = Jute::new().int(0).ustring("nosuchscheme").buffer(Some(b"x")).bytes();
    conn.send_with_xid(-4, op::AUTH, &body).await;
    let reply = conn.reply_for(-4).await;
    assert_eq!(reply.err, err::AUTH_FAILED);
    assert!(reply.body.is_empty());
    conn.expect_closed().await;

    // Digest auth never fails, and its reply echoes xid -4 with zxid 0.
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/before", b"", 0).await;
    let body = Jute::new().int(0).ustring("digest").buffer(Some(b"whoever:whatever")).bytes();
    conn.send_with_xid(-4, op::AUTH, &body).await;
    let reply = conn.reply_for(-4).await;
    assert_eq!((reply.err, reply.zxid), (0, 0));
    assert!(reply.body.is_empty());
    conn.call(op::GET_DATA, &raw::path_watch_body("/before", false)).await.ok("still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_need_read_permission() {
    let server = Server::start();
    if !server.behaves_like_at_least(3, 8, 4) {
        eprintln!("skipped: the watch ACL filter arrived in ZooKeeper 3.8.4/3.9.2");
        return;
    }
    let alice = server.client_with_digest("alice:secret").await;
    let (mut watcher, _) = Conn::session(&server.addr(), 30_000).await;
    let alice_only = [acl(zk::Permission::ALL, "digest", &digest_id("alice:secret"))];
    alice.create("/open", b"", &PERSISTENT).await.unwrap();
    alice.create("/closed", b"", &with_acls(&alice_only)).await.unwrap();

    // Registered where no ACL is checked (missing node / persistent recursive watch).
    assert_eq!(watcher.exists("/secret", true).await.0, err::NO_NODE);
    let add = Jute::new().ustring("/closed").int(1).bytes();
    watcher.call(op::ADD_WATCH, &add).await.ok("addWatch");
    watcher.call(op::GET_CHILDREN, &raw::path_watch_body("/open", true)).await.ok("ls");

    alice.create("/secret", b"", &with_acls(&alice_only)).await.unwrap();
    alice.create("/closed/kid", b"", &PERSISTENT).await.unwrap();
    alice.set_data("/closed", b"x", None).await.unwrap();
    alice.create("/open/kid", b"", &with_acls(&alice_only)).await.unwrap();
    watcher.call(op::EXISTS, &raw::path_watch_body("/", false)).await.ok("barrier");
    let events: Vec<(i32, String)> =
        watcher.take_events().into_iter().map(|n| (n.event_type, n.path)).collect();
    // Only the event whose node (for child events: the parent) the watcher may READ arrives,
    // plus the recursive watch's event for /closed/kid, whose own ACL is open.
    let expected = [(1, "/closed/kid".to_string()), (4, "/open".to_string())];
    assert_eq!(events, expected);
}
