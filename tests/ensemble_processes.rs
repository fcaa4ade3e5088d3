//! A three-member ensemble of real `ensemble server --config` processes on 127.0.0.1.
//!
//! Each member gets its own temp dir with a `zoo.cfg` (`server.N` lines, tickTime=200,
//! initLimit=10, syncLimit=5) and `myid`, and runs as a child process that is SIGKILLed on
//! drop. Waits poll `srvr` (or a client call) every 50 ms up to a bound; nothing sleeps for a
//! fixed time.

#![cfg(not(madsim))]

use std::fs;
use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

#[path = "common/process.rs"]
mod process;
use process::{four_letter, free_ports, within, ServerProcess, POLL, WAIT};

const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

struct Member {
    id: u64,
    client_port: u16,
    process: ServerProcess,
}

impl Deref for Member {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl DerefMut for Member {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

impl Member {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Whether any file under the data dir contains `needle`.
    fn data_contains(&self, needle: &[u8]) -> bool {
        fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
            let Ok(entries) = fs::read_dir(dir) else { return false };
            entries.flatten().any(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    return walk(&path, needle);
                }
                let bytes = fs::read(&path).unwrap_or_default();
                bytes.windows(needle.len()).any(|window| window == needle)
            })
        }
        walk(&self.process.dir.join("data"), needle)
    }

    fn srvr(&self) -> Option<String> {
        self.child.as_ref()?;
        four_letter(self.client_port, "srvr").ok()
    }

    /// The mode `srvr` reports, if the member runs and serves.
    fn mode(&self) -> Option<String> {
        let srvr = self.srvr()?;
        srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string)
    }
}

struct Ensemble {
    // Dropped after the members (fields drop in order), so the logs outlive the processes.
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Ensemble {
    /// Writes zoo.cfg + myid for `count` members (syncLimit=5) and starts them.
    fn start(count: u64) -> Ensemble {
        Ensemble::start_with(count, 5)
    }

    /// Writes zoo.cfg + myid for `count` members and starts them.
    fn start_with(count: u64, sync_limit: u32) -> Ensemble {
        let dir = tempfile::Builder::new().prefix("ensemble-processes-").tempdir().expect("tmp");
        let ports = free_ports(3 * count as usize);
        let mut servers = String::new();
        for id in 1..=count {
            let at = 3 * (id as usize - 1);
            servers.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                ports[at + 1],
                ports[at + 2],
                ports[at]
            ));
        }
        let mut members = Vec::new();
        for id in 1..=count {
            let member_dir = dir.path().join(format!("member{id}"));
            let data = member_dir.join("data");
            fs::create_dir_all(&data).expect("mkdir");
            fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
            let config = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit={sync_limit}\ndataDir={}\n\
                 4lw.commands.whitelist=*\n{servers}",
                data.display()
            );
            fs::write(member_dir.join("zoo.cfg"), config).expect("zoo.cfg");
            let client_port = ports[3 * (id as usize - 1)];
            members.push(Member { id, client_port, process: ServerProcess::new(&member_dir) });
        }
        for member in &mut members {
            member.spawn();
        }
        Ensemble { members, _dir: dir }
    }

    fn member(&mut self, id: u64) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    /// Waits until every running member serves and exactly one leads; returns the leader.
    fn wait_for_leader(&mut self) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let running: Vec<&Member> = self.members.iter().filter(|m| m.child.is_some()).collect();
            let modes: Vec<(u64, Option<String>)> =
                running.iter().map(|m| (m.id, m.mode())).collect();
            let leaders: Vec<u64> = modes
                .iter()
                .filter(|(_, mode)| mode.as_deref() == Some("leader"))
                .map(|(id, _)| *id)
                .collect();
            if leaders.len() == 1 && modes.iter().all(|(_, mode)| mode.is_some()) {
                return leaders[0];
            }
            let exited = self.members.iter_mut().find_map(|member| {
                let status = member.child.as_mut()?.try_wait().ok().flatten()?;
                Some((member.id, status))
            });
            if let Some((id, status)) = exited {
                panic!("member {id} exited: {status}\n{}", self.logs());
            }
            if Instant::now() > deadline {
                panic!("no leader after {WAIT:?}: {modes:?}\n{}", self.logs());
            }
            std::thread::sleep(POLL);
        }
    }

    /// The tail of every member's latest log, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for member in &self.members {
            out.push_str(&format!("--- member {} ---\n{}\n", member.id, member.log_tail(25)));
        }
        out
    }
}

/// A session on exactly `member` (no other address to fall back to).
async fn client(member: &Member) -> zk::Client {
    let addr = member.addr();
    let connector =
        zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&addr);
    within("connect", connector).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Every path in `paths` exists on `member`, seen after a `sync` (so the read follows every
/// write committed before it).
async fn assert_all_present(member: &Member, paths: &[String]) {
    let client = client(member).await;
    within("sync", client.sync("/")).await.expect("sync");
    for path in paths {
        let (data, _) = within("get", client.get_data(path))
            .await
            .unwrap_or_else(|e| panic!("{path} on member {}: {e}", member.id));
        assert_eq!(data, path.as_bytes(), "{path} on member {}", member.id);
    }
}

fn followers(ensemble: &Ensemble, leader: u64) -> Vec<u64> {
    ensemble.members.iter().filter(|m| m.child.is_some() && m.id != leader).map(|m| m.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_leader_is_replaced_keeps_every_acknowledged_write_and_rejoins() {
    let mut ensemble = Ensemble::start(3);
    let first_leader = ensemble.wait_for_leader();
    let [writer, reader] = followers(&ensemble, first_leader)[..] else { panic!("two followers") };

    // Writes through one follower, each acknowledged...
    let mut acknowledged = Vec::new();
    let writes = client(ensemble.member(writer)).await;
    for i in 0..20 {
        let path = format!("/before-{i}");
        within("create", writes.create(&path, path.as_bytes(), &PERSISTENT))
            .await
            .unwrap_or_else(|e| panic!("create {path}: {e}"));
        acknowledged.push(path);
    }
    drop(writes);
    // ... are read through the other.
    assert_all_present(ensemble.member(reader), &acknowledged).await;

    // `ensemble status` reads the mode like zkServer.sh status.
    let status = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["status", "--server", &ensemble.member(first_leader).addr()])
        .output()
        .expect("run ensemble status");
    assert!(status.status.success(), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stdout).contains("Mode: leader\n"), "{status:?}");

    // SIGKILL the leader: the two others elect a new one, which has every acknowledged write.
    ensemble.member(first_leader).kill();
    let second_leader = ensemble.wait_for_leader();
    assert_ne!(second_leader, first_leader);
    for id in followers(&ensemble, first_leader) {
        assert_all_present(ensemble.member(id), &acknowledged).await;
    }
    let writes = client(ensemble.member(second_leader)).await;
    for i in 0..10 {
        let path = format!("/after-{i}");
        within("create", writes.create(&path, path.as_bytes(), &PERSISTENT))
            .await
            .unwrap_or_else(|e| panic!("create {path}: {e}"));
        acknowledged.push(path);
    }
    drop(writes);

    // The old leader restarts on its data dir, follows the new leader and catches up.
    ensemble.member(first_leader).spawn();
    let leader = ensemble.wait_for_leader();
    assert_eq!(leader, second_leader, "a rejoining member does not disturb the leader");
    assert_eq!(ensemble.member(first_leader).mode().as_deref(), Some("follower"));
    assert_all_present(ensemble.member(first_leader), &acknowledged).await;

    // The leader reports how it synced the rejoined member, in srvr and in mntr. It missed
    // committed txns only, so they come as a DIFF.
    let sync = sync_kind(&mut ensemble, leader, first_leader);
    assert_eq!(sync, "DIFF");
    let mntr = four_letter(ensemble.member(leader).client_port, "mntr").expect("mntr");
    assert!(mntr.contains(&format!("zk_learner_{first_leader}_sync\t{sync}\n")), "{mntr}");
    assert!(mntr.contains("zk_synced_followers\t2\n"), "{mntr}");
    assert!(mntr.contains("zk_quorum_size\t3\n"), "{mntr}");
    // A log file is not a terminal: no colour codes in it.
    let log = ensemble.member(leader).latest_log();
    assert!(log.contains("INFO") && !log.contains('\u{1b}'), "{log}");
}

/// The sync kind the leader reports for `learner` in `srvr`.
fn sync_kind(ensemble: &mut Ensemble, leader: u64, learner: u64) -> String {
    let srvr = ensemble.member(leader).srvr().expect("srvr");
    let prefix = format!("Learner {learner}: follower, state broadcast, sync ");
    let line = srvr.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{srvr}"));
    line[prefix.len()..].split(',').next().expect("sync kind").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_logged_a_proposal_nobody_acknowledged_loses_it_when_it_rejoins() {
    // syncLimit=10 (2 s): the frozen followers must not be given up before the proposal is
    // logged.
    let mut ensemble = Ensemble::start_with(3, 10);
    let old_leader = ensemble.wait_for_leader();
    let frozen = followers(&ensemble, old_leader);
    let writes = client(ensemble.member(old_leader)).await;
    within("create", writes.create("/committed", b"/committed", &PERSISTENT))
        .await
        .expect("create /committed");

    // Freeze both followers; the leader logs the next proposal but can never commit it.
    for id in &frozen {
        ensemble.member(*id).freeze();
    }
    let lost = tokio::spawn(async move {
        let _ = writes.create("/lost", b"/lost", &PERSISTENT).await;
    });
    let deadline = Instant::now() + WAIT;
    while !ensemble.member(old_leader).data_contains(b"/lost") {
        assert!(Instant::now() < deadline, "the leader never logged /lost\n{}", ensemble.logs());
        std::thread::sleep(POLL);
    }
    // Kill everyone. The proposal sits unread in the frozen followers' socket buffers, and
    // dies with them (resumed, they would log it, and the new epoch would keep it).
    for id in 1..=3 {
        ensemble.member(id).kill();
    }
    lost.abort();

    // The followers restart and elect one of them; the new epoch gets a write.
    for id in &frozen {
        ensemble.member(*id).spawn();
    }
    let new_leader = ensemble.wait_for_leader();
    assert!(frozen.contains(&new_leader));
    let writes = client(ensemble.member(new_leader)).await;
    within("create", writes.create("/new-epoch", b"/new-epoch", &PERSISTENT))
        .await
        .expect("create /new-epoch");
    drop(writes);

    // The old leader comes back with /lost in its log (and, replayed at start, in its tree):
    // the new leader must cut it off, with TRUNC or with a SNAP that replaces the tree. Ensemble
    // sends SNAP here because the replayed tree cannot be rolled back (ZooKeeper sends TRUNC
    // and reloads its database); a DIFF would keep /lost.
    ensemble.member(old_leader).spawn();
    assert_eq!(ensemble.wait_for_leader(), new_leader);
    let sync = sync_kind(&mut ensemble, new_leader, old_leader);
    assert!(sync == "TRUNC" || sync == "SNAP", "synced with {sync}\n{}", ensemble.logs());
    let paths = ["/committed".to_string(), "/new-epoch".to_string()];
    assert_all_present(ensemble.member(old_leader), &paths).await;
    let rejoined = client(ensemble.member(old_leader)).await;
    within("sync", rejoined.sync("/")).await.expect("sync");
    let lost = within("exists", rejoined.check_stat("/lost")).await.expect("exists");
    assert!(lost.is_none(), "the unacknowledged /lost is gone from the old leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_a_quorum_answers_four_letter_words_but_serves_no_client() {
    let mut ensemble = Ensemble::start(3);
    ensemble.member(2).kill();
    ensemble.member(3).kill();
    let alone = ensemble.member(1);
    let deadline = Instant::now() + WAIT;
    let ruok = loop {
        match four_letter(alone.client_port, "ruok") {
            Ok(answer) => break answer,
            Err(_) if Instant::now() < deadline => std::thread::sleep(POLL),
            Err(error) => panic!("member 1 never listened: {error}"),
        }
    };
    assert_eq!(ruok, "imok");
    assert_eq!(
        four_letter(alone.client_port, "srvr").expect("srvr"),
        "This ZooKeeper instance is not currently serving requests\n"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["status", "--server", &alone.addr()])
        .output()
        .expect("run ensemble status");
    assert!(!status.status.success(), "a member that does not serve has no mode: {status:?}");

    // A client handshake is closed without a session, so clients move on to other members.
    let addr = alone.addr();
    let connect = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_millis(500))
        .connect(&addr);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Err(_) | Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("a member without a quorum gave a client a session"),
    }
}

#[test]
fn a_myid_without_a_server_line_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    fs::create_dir_all(&data).expect("mkdir");
    fs::write(data.join("myid"), "7\n").expect("myid");
    let config = format!(
        "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
         server.1=127.0.0.1:1:2;127.0.0.1:3\nserver.2=127.0.0.1:4:5;127.0.0.1:6\n",
        data.display()
    );
    fs::write(dir.path().join("zoo.cfg"), config).expect("zoo.cfg");
    let output = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .arg("server")
        .arg("--config")
        .arg(dir.path().join("zoo.cfg"))
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains('7') && stderr.contains("myid"), "{stderr}");
}
