//! Durability: everything acknowledged before a SIGKILL is there after a restart on the same
//! data dir (data, stats, ACLs, sequence counters, zxid order, sessions), including after a torn
//! log tail (Ensemble only: garbage appended to the newest `log.<16 hex>` file).

use std::collections::BTreeMap;
use std::io::Write;

use zookeeper_client as zk;

use crate::harness::{files_with_prefix, skip_unless_ensemble, within, Server};
use crate::raw::{err, Conn, ConnectRequest};
use crate::{digest_id, sorted, PERSISTENT, PERSISTENT_SEQUENTIAL};

/// Writes a mixed workload and returns every node under /d with its data and stat.
async fn write_workload(client: &zk::Client) -> BTreeMap<String, (Vec<u8>, zk::Stat)> {
    client.create("/d", b"root", &PERSISTENT).await.unwrap();
    for i in 0..40 {
        let path = format!("/d/n{i:02}");
        client.create(&path, format!("value-{i}").as_bytes(), &PERSISTENT).await.unwrap();
        if i % 3 == 0 {
            client.set_data(&path, format!("updated-{i}").as_bytes(), None).await.unwrap();
        }
        if i % 7 == 0 {
            client.delete(&path, None).await.unwrap();
        }
    }
    for _ in 0..3 {
        client.create("/d/seq-", b"", &PERSISTENT_SEQUENTIAL).await.unwrap();
    }
    let mut writer = client.new_multi_writer();
    writer.add_create("/d/multi", b"m", &PERSISTENT).unwrap();
    writer.add_set_data("/d", b"root2", None).unwrap();
    writer.commit().await.unwrap();
    snapshot(client).await
}

async fn snapshot(client: &zk::Client) -> BTreeMap<String, (Vec<u8>, zk::Stat)> {
    let mut nodes = BTreeMap::new();
    let (data, stat) = client.get_data("/d").await.unwrap();
    nodes.insert("/d".to_string(), (data, stat));
    for child in client.list_children("/d").await.unwrap() {
        let path = format!("/d/{child}");
        let (data, stat) = client.get_data(&path).await.unwrap();
        nodes.insert(path, (data, stat));
    }
    nodes
}

async fn assert_survived(server: &Server, before: &BTreeMap<String, (Vec<u8>, zk::Stat)>) {
    let client = server.client().await;
    let after = snapshot(&client).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (path, (data, stat)) in before {
        let (data_after, stat_after) = &after[path];
        assert_eq!(data_after, data, "data of {path}");
        assert_eq!(stat_after, stat, "stat of {path}");
    }
    // New writes continue after the recovered state: later zxids, next sequence number.
    let max_zxid = before.values().map(|(_, s)| s.mzxid.max(s.czxid).max(s.pzxid)).max().unwrap();
    let (stat, n) = client.create("/d/seq-", b"", &PERSISTENT_SEQUENTIAL).await.unwrap();
    assert!(stat.czxid > max_zxid, "new zxid {} after recovered {max_zxid}", stat.czxid);
    let (_, parent) = &before["/d"];
    let creates = (parent.cversion + parent.num_children) / 2;
    assert_eq!(n.into_i64(), creates as i64, "sequence counter continues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let mut server = Server::start();
    let client = server.client().await;
    let before = write_workload(&client).await;
    let acl = [
        zk::Acl::new(zk::Permission::ADMIN, zk::AuthId::anyone()),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &digest_id("a:b"))),
    ];
    client
        .create("/acl", b"", &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)))
        .await
        .unwrap();
    drop(client);

    server.kill();
    server.restart();
    assert_survived(&server, &before).await;
    let client = server.client().await;
    let (acl_after, stat) = client.get_acl("/acl").await.unwrap();
    assert_eq!(acl_after, acl, "ADMIN sees unmasked ids");
    assert_eq!(stat.aversion, 0);
    assert_eq!(client.get_data("/acl").await, Err(zk::Error::NoAuth));
    assert_eq!(sorted(client.list_children("/zookeeper").await.unwrap()), ["config", "quota"]);

    // And again, after more writes on the recovered server.
    client.create("/second", b"2", &PERSISTENT).await.unwrap();
    drop(client);
    server.kill();
    server.restart();
    let client = server.client().await;
    assert_eq!(client.get_data("/second").await.unwrap().0, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart() {
    let mut server = Server::start();
    let (mut conn, session) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/eph", b"", 1).await;
    let last_zxid = conn.last_zxid;
    drop(conn);

    server.kill();
    server.restart();
    // The session and its ephemeral come back; the owner can reattach.
    let mut conn = Conn::open(&server.addr()).await;
    let resumed = conn.handshake(&ConnectRequest::reattach(&session, last_zxid)).await;
    assert_eq!(resumed.session_id, session.session_id, "{resumed:?}");
    assert!(resumed.timeout_ms > 0);
    let (code, stat) = conn.exists("/eph", false).await;
    assert_eq!(code, err::OK);
    assert_eq!(stat.expect("stat").ephemeral_owner, session.session_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_ignored_on_recovery() {
    if skip_unless_ensemble("our log file naming and torn-tail handling") {
        return;
    }
    let mut server = Server::start();
    let client = server.client().await;
    let before = write_workload(&client).await;
    drop(client);
    server.kill();

    let logs: Vec<_> = files_with_prefix(&server.data_dir(), "log.")
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            name.len() == 20 && name[4..].chars().all(|c| c.is_ascii_hexdigit())
        })
        .collect();
    let newest = logs
        .last()
        .unwrap_or_else(|| panic!("no log.<16 hex> file under {}", server.data_dir().display()));
    let mut file = std::fs::OpenOptions::new().append(true).open(newest).expect("open log");
    file.write_all(&[0x00, 0x00, 0x01, 0x7f, 0xde, 0xad, 0xbe, 0xef, 0x42, 0x13, 0x37])
        .expect("append garbage");
    drop(file);

    server.restart();
    assert_survived(&server, &before).await;

    // The log keeps working after the repair.
    let client = server.client().await;
    client.create("/after-repair", b"ok", &PERSISTENT).await.unwrap();
    drop(client);
    server.kill();
    server.restart();
    let client = server.client().await;
    assert_eq!(client.get_data("/after-repair").await.unwrap().0, b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crate_client_rides_through_a_restart() {
    let mut server = Server::start();
    let client = server.client().await;
    let session = client.session_id();
    client.create("/mine", b"", &crate::EPHEMERAL).await.unwrap();
    client.create("/watched", b"v1", &PERSISTENT).await.unwrap();
    let (_, _, watcher) = client.get_and_watch_data("/watched").await.unwrap();
    let mut state = client.state_watcher();

    server.kill();
    assert_eq!(within("Disconnected", state.changed()).await, zk::SessionState::Disconnected);
    server.restart();
    // The client reconnects on its own, to the same session, and restores its watch.
    assert_eq!(within("reconnected", state.changed()).await, zk::SessionState::SyncConnected);
    assert_eq!(client.session_id(), session);
    let stat = client.check_stat("/mine").await.unwrap().expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, session.0);

    let other = server.client().await;
    other.set_data("/watched", b"v2", None).await.unwrap();
    let event = within("restored watch fires", watcher.changed()).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zk::EventType::NodeDataChanged, "/watched")
    );
}
