//! Hostile and careless clients: sockets that never say hello, connection and request
//! throttles, clients that do not read their replies, replies above `jute.maxbuffer`. The
//! server must bound each of them and keep serving everybody else.

use std::time::Duration;

use crate::harness::{skip_unless_ensemble, Options, Server};
use crate::raw::{self, err, op, Conn, ConnectRequest};

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).expect("VmHWM line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM kB");
    kib * 1024
}

/// What the whole server may use under the attacks below.
const RSS_LIMIT_BYTES: u64 = 200 << 20;

/// A node holding just under `jute.maxbuffer` of data.
const BIG: usize = 1_000_000;

async fn assert_serving(server: &Server) {
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = conn.ping().await;
    assert_eq!((reply.xid, reply.err), (-2, err::OK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_finish_a_handshake_are_closed_and_do_not_lock_the_address_out() {
    // maxClientCnxns (60) silent sockets from one address: without a deadline from accept they
    // would hold every slot of 127.0.0.1 for good, `ruok` included.
    let server = Server::start_with(Options::with_lines(&["nio.sessionlessCnxnTimeout=1000"]));
    let mut silent = Vec::new();
    for i in 0..60 {
        let mut conn = Conn::open(&server.addr()).await;
        match i % 3 {
            0 => {}
            1 => conn.send_bytes(&[0]).await,
            _ => conn.send_bytes(&[0, 0, 0]).await,
        }
        silent.push(conn);
    }
    for conn in &mut silent {
        conn.expect_closed().await;
    }
    assert_eq!(server.four_letter("ruok"), "imok");
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_request_that_trickles_in_is_closed_at_the_deadline() {
    let server = Server::start_with(Options::with_lines(&["nio.sessionlessCnxnTimeout=1000"]));
    // A whole frame length, then a body that never completes.
    let request = ConnectRequest::new_session(30_000).encode();
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request[..request.len() / 2]);
    let mut conn = Conn::open(&server.addr()).await;
    conn.send_bytes(&frame).await;
    conn.expect_closed().await;
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_throttle_refuses_connections_once_its_tokens_are_spent() {
    // Two tokens, refilled one per hour: the third handshake is refused. (ZooKeeper reads the
    // system property; a zoo.cfg line becomes `zookeeper.<key>`, so both targets see it.)
    let server = Server::start_with(Options::with_lines(&[
        "connection_throttle_tokens=2",
        "connection_throttle_fill_time=3600000",
    ]));
    let (mut first, _) = Conn::session(&server.addr(), 30_000).await;
    let (_second, _) = Conn::session(&server.addr(), 30_000).await;
    let mut third = Conn::open(&server.addr()).await;
    third.send_frame(&ConnectRequest::new_session(30_000).encode()).await;
    third.expect_closed().await;
    // Those already connected are not affected, nor are four-letter words.
    first.ping().await.ok("first ping");
    assert_eq!(server.four_letter("ruok"), "imok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_are_all_answered_in_order() {
    // The tightest request throttles: every pipelined request waits for the one before.
    let server = Server::start_with(Options::with_lines(&[
        "globalOutstandingLimit=1",
        "requestThrottleLimit=1",
        "requestThrottleStallTime=5",
        "ensemble.connRequestBudgetBytes=1024",
    ]));
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/t", b"", 0).await;
    const REQUESTS: i32 = 300;
    for xid in 1..=REQUESTS {
        let (opcode, body) = if xid % 2 == 0 {
            (op::CREATE, raw::create_body(&format!("/t/n{xid}"), Some(&[1; 200]), 0))
        } else {
            (op::GET_DATA, raw::path_watch_body("/t", false))
        };
        conn.send_with_xid(1000 + xid, opcode, &body).await;
    }
    for xid in 1..=REQUESTS {
        let reply = conn.read_incoming().await.expect("a reply");
        match reply {
            raw::Incoming::Reply(reply) => {
                assert_eq!((reply.xid, reply.err), (1000 + xid, err::OK), "replies in order")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Creates `/big` with [`BIG`] bytes.
async fn create_big(server: &Server) {
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    conn.create("/big", &vec![7u8; BIG], 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped_and_memory_stays_bounded() {
    if skip_unless_ensemble("measures the Ensemble process's memory") {
        return;
    }
    let server = Server::start();
    let pid = server.pid().expect("running");
    create_big(&server).await;
    let (mut bystander, _) = Conn::session(&server.addr(), 30_000).await;

    // 3,000 getData of a 1 MB node, pipelined, never read: 3 GB of replies.
    let (mut attacker, _) = Conn::session(&server.addr(), 30_000).await;
    let mut requests = Vec::new();
    for xid in 1..=3000i32 {
        let body = raw::path_watch_body("/big", false);
        let payload = raw::Jute::new().int(xid).int(op::GET_DATA).raw(&body).bytes();
        requests.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        requests.extend_from_slice(&payload);
    }
    let _ = attacker.try_send_bytes(&requests).await;

    // Everybody else keeps being served meanwhile.
    for _ in 0..20 {
        bystander.ping().await.ok("bystander ping");
        let reply = bystander.call(op::GET_DATA, &raw::path_watch_body("/big", false)).await;
        assert_eq!(reply.ok("bystander get").reader().buffer().expect("data").len(), BIG);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The attacker is cut off as a slow reader: after whatever was in flight, the stream ends.
    attacker.expect_closed_after_draining().await;
    let peak = peak_rss_bytes(pid);
    eprintln!("peak RSS under the pipelined getData attack: {} MiB", peak >> 20);
    assert!(peak < RSS_LIMIT_BYTES, "peak RSS {} MiB", peak >> 20);
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_that_do_not_read_cannot_add_up_past_the_server_budget() {
    if skip_unless_ensemble("measures the Ensemble process's memory") {
        return;
    }
    let server = Server::start();
    let pid = server.pid().expect("running");
    create_big(&server).await;
    let (mut bystander, _) = Conn::session(&server.addr(), 30_000).await;

    // 30 connections pipelining getData of a 1 MB node, 25 at a time each in turn, and never
    // reading: each stays within its own budget for a while, together they would not.
    const ATTACKERS: usize = 30;
    const BATCH: i32 = 25;
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let (attacker, _) = Conn::session(&server.addr(), 30_000).await;
        attackers.push(attacker);
    }
    for batch in 0..40 {
        let mut requests = Vec::new();
        for xid in batch * BATCH + 1..=(batch + 1) * BATCH {
            let body = raw::path_watch_body("/big", false);
            let payload = raw::Jute::new().int(xid).int(op::GET_DATA).raw(&body).bytes();
            requests.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            requests.extend_from_slice(&payload);
        }
        for attacker in &mut attackers {
            // The server may have dropped it already.
            let _ = attacker.try_send_bytes(&requests).await;
        }
    }
    for _ in 0..20 {
        bystander.ping().await.ok("bystander ping");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for attacker in &mut attackers {
        attacker.expect_closed_after_draining().await;
    }
    let peak = peak_rss_bytes(pid);
    eprintln!("peak RSS under {ATTACKERS} pipelined getData attackers: {} MiB", peak >> 20);
    assert!(peak < RSS_LIMIT_BYTES, "peak RSS {} MiB", peak >> 20);
    assert_serving(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_larger_than_jute_maxbuffer_closes_the_connection_before_it_is_built() {
    // ZooKeeper builds and sends the reply (its client then refuses it); the harness's
    // 256 MB heap does not survive a 500 MB reply.
    if skip_unless_ensemble("ZooKeeper builds the 500 MB reply and runs out of heap") {
        return;
    }
    let server = Server::start();
    create_big(&server).await;
    let (mut bystander, _) = Conn::session(&server.addr(), 30_000).await;

    // One multiRead of 500 getData of a 1 MB node: a 500 MB reply. ZooKeeper's client refuses
    // any frame above its jute.maxbuffer (the same 1 MB default) and drops the connection.
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let ops: Vec<(i32, Vec<u8>)> =
        (0..500).map(|_| (op::GET_DATA, raw::path_watch_body("/big", false))).collect();
    conn.send_request(op::MULTI_READ, &raw::multi_body(&ops)).await;
    conn.expect_closed_after_draining().await;

    // A multiRead within the limit is still answered.
    let (mut conn, _) = Conn::session(&server.addr(), 30_000).await;
    let reply = conn.call(op::MULTI_READ, &raw::multi_body(&ops[..1])).await.ok("small multiRead");
    assert_eq!(raw::parse_multi_results(&reply.body), [(op::GET_DATA, 0)]);
    bystander.ping().await.ok("bystander ping");
    let peak = peak_rss_bytes(server.pid().expect("running"));
    eprintln!("peak RSS after the oversized multiRead: {} MiB", peak >> 20);
    assert!(peak < RSS_LIMIT_BYTES, "peak RSS {} MiB", peak >> 20);
}
