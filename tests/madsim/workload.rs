//! The client workload: creates `/w/00000`, `/w/00001`, ... one at a time through whichever
//! member serves, moving to the next member on any failure (and now and then at once after a
//! write), and records the outcome of every write. It reads back the newest acknowledged znode through each new session, and now and
//! then a random acknowledged one.
//!
//! Outcomes: a reply with `err` 0 is acknowledged (with its zxid); a reply with another code
//! is failed (the server decided); no reply (timeout, closed socket) is unknown: the write may
//! or may not have happened, and the checks treat it so.
//!
//! Reconnecting, the client sends the highest zxid it has seen, so a member behind it must
//! refuse the session (ZK compat: `ZooKeeperServer.processConnectRequest`); hence a read
//! of an acknowledged znode through any member that accepted us must find it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ensemble::wire::proto::{CreateKind, CreateRequest, Request, Response};
use ensemble::wire::types::Acl;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::client::{Client, ClientError, Reply};

/// The parent of every written znode.
pub const PARENT: &str = "/w";
/// `NodeExists`.
const ERR_NODE_EXISTS: i32 = -110;
/// Session timeout the client asks for, ms.
const SESSION_TIMEOUT_MS: i32 = 4_000;
/// Deadline of a connection attempt.
const CONNECT_DEADLINE: Duration = Duration::from_secs(1);
/// Deadline of one request.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// One acknowledged write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The znode.
    pub path: String,
    /// The zxid in the reply.
    pub zxid: i64,
    /// The member (position) that answered.
    pub member: usize,
}

/// Everything the workload observed.
#[derive(Clone, Debug, Default)]
pub struct WriteLog {
    /// Acknowledged writes, in the order they were acknowledged.
    pub acked: Vec<Acked>,
    /// Writes without an answer.
    pub unknown: Vec<String>,
    /// Writes the server refused, with the error code.
    pub failed: Vec<(String, i32)>,
    /// Sessions opened.
    pub sessions: u64,
    /// Connection attempts that did not give a session, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Read-backs done.
    pub reads: u64,
    /// What went wrong with read-backs (an acknowledged znode missing or changed).
    pub violations: Vec<String>,
    /// Sessions opened and lost, with simulated times, for the event list.
    pub notes: Vec<String>,
}

/// The expected content of a written znode.
pub fn value_of(path: &str) -> Bytes {
    Bytes::from(format!("value of {path}"))
}

/// Writes until `stop` is set, recording into `log`.
pub async fn write_loop(
    addrs: Vec<SocketAddr>,
    seed: u64,
    log: Arc<Mutex<WriteLog>>,
    stop: Arc<AtomicBool>,
    start: Instant,
) {
    let note = |log: &Arc<Mutex<WriteLog>>, text: String| {
        let at = format!("{:>8.3}s client: ", start.elapsed().as_secs_f64());
        log.lock().expect("log lock").notes.push(at + &text);
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c11e);
    let mut member = rng.gen_range(0..addrs.len());
    let mut client: Option<Client> = None;
    let mut zxid_seen = 0i64;
    let mut parent_created = false;
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(connected) = client.as_mut() else {
            match Client::connect(addrs[member], zxid_seen, SESSION_TIMEOUT_MS, CONNECT_DEADLINE)
                .await
            {
                Ok(mut new) => {
                    log.lock().expect("log lock").sessions += 1;
                    note(&log, format!("session 0x{:x} on server {}", new.session_id, member + 1));
                    // The newest acknowledged write first: a member that accepted a client
                    // which has seen its zxid must have it.
                    let newest = log.lock().expect("log lock").acked.last().cloned();
                    let read = match newest {
                        Some(newest) => {
                            read_back(&mut new, &newest, member, &mut zxid_seen, &log).await
                        }
                        None => Ok(()),
                    };
                    match read {
                        Ok(()) => client = Some(new),
                        Err(_) => member = (member + 1) % addrs.len(),
                    }
                }
                Err(error) => {
                    let reason = reason(&error);
                    *log.lock().expect("log lock").refused.entry(reason).or_default() += 1;
                    member = (member + 1) % addrs.len();
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(20..200))).await;
                }
            }
            continue;
        };
        if !parent_created {
            match connected.call(&create(PARENT, Bytes::new()), REQUEST_DEADLINE).await {
                Ok(reply) if reply.err == 0 || reply.err == ERR_NODE_EXISTS => {
                    observe(&reply, member, &mut zxid_seen, &log);
                    parent_created = true;
                }
                Ok(reply) => {
                    observe(&reply, member, &mut zxid_seen, &log);
                    client = None;
                }
                Err(_) => client = None,
            }
            if client.is_none() {
                member = (member + 1) % addrs.len();
            }
            continue;
        }
        let path = format!("{PARENT}/{next:05}");
        next += 1;
        match connected.call(&create(&path, value_of(&path)), REQUEST_DEADLINE).await {
            Ok(reply) if reply.err == 0 => {
                observe(&reply, member, &mut zxid_seen, &log);
                log.lock().expect("log lock").acked.push(Acked { path, zxid: reply.zxid, member });
            }
            Ok(reply) => {
                observe(&reply, member, &mut zxid_seen, &log);
                note(
                    &log,
                    format!("{path} refused with {}; leaving server {}", reply.err, member + 1),
                );
                log.lock().expect("log lock").failed.push((path, reply.err));
                client = None;
            }
            Err(error) => {
                note(&log, format!("{path} unknown ({error}); leaving server {}", member + 1));
                log.lock().expect("log lock").unknown.push(path);
                client = None;
            }
        }
        if let Some(connected) = client.as_mut().filter(|_| rng.gen_ratio(1, 4)) {
            let target = {
                let log = log.lock().expect("log lock");
                (!log.acked.is_empty())
                    .then(|| log.acked[rng.gen_range(0..log.acked.len())].clone())
            };
            if let Some(target) = target {
                let read = read_back(connected, &target, member, &mut zxid_seen, &log).await;
                if read.is_err() {
                    client = None;
                }
            }
        }
        if client.is_none() {
            member = (member + 1) % addrs.len();
        } else if rng.gen_ratio(1, 8) {
            // Move on at once (the session is left to expire): the next member may not have
            // applied our last write yet, and must then refuse us.
            client = None;
            member = (member + rng.gen_range(1..addrs.len())) % addrs.len();
            continue;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(2..40))).await;
    }
}

/// Reads an acknowledged znode back through `client` (connected to `member`) and records a
/// violation if it is missing or changed. An error means the connection is unusable.
async fn read_back(
    client: &mut Client,
    target: &Acked,
    member: usize,
    zxid_seen: &mut i64,
    log: &Mutex<WriteLog>,
) -> Result<(), ClientError> {
    let request = Request::GetData { path: target.path.clone(), watch: false };
    let reply = client.call(&request, REQUEST_DEADLINE).await?;
    observe(&reply, member, zxid_seen, log);
    let mut log = log.lock().expect("log lock");
    log.reads += 1;
    match reply.response {
        Some(Response::GetData { data, .. })
            if data.as_deref() == Some(&value_of(&target.path)[..]) => {}
        other => log.violations.push(format!(
            "read-back of acknowledged {} (zxid 0x{:x}) through server {} returned err {} {:?} \
             (reply zxid 0x{:x})",
            target.path,
            target.zxid,
            member + 1,
            reply.err,
            other,
            reply.zxid
        )),
    }
    Ok(())
}

/// Takes note of a reply's zxid. A member that accepted our session has applied everything we
/// had seen, and its zxid only grows, so a reply never carries a zxid below one seen before
/// (ZK compat: the single-system-image guarantee; a member behind must refuse the session).
fn observe(reply: &Reply, member: usize, zxid_seen: &mut i64, log: &Mutex<WriteLog>) {
    if reply.zxid > 0 && reply.zxid < *zxid_seen {
        log.lock().expect("log lock").violations.push(format!(
            "server {} replied with zxid 0x{:x} after the client had seen 0x{:x}",
            member + 1,
            reply.zxid,
            zxid_seen
        ));
    }
    *zxid_seen = (*zxid_seen).max(reply.zxid);
}

/// A persistent create with an open ACL.
pub fn create(path: &str, data: Bytes) -> Request {
    Request::Create(
        CreateKind::Create,
        CreateRequest {
            path: path.to_owned(),
            data: Some(data),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    )
}

fn reason(error: &ClientError) -> String {
    match error {
        ClientError::Io(error) => format!("io {:?}", error.kind()),
        other => other.to_string(),
    }
}
