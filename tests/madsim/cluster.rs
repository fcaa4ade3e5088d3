//! A simulated ensemble: one madsim node per member, each running the real runtime
//! (`ensemble::runtime::start_with`) from a `zoo.cfg` whose `server.N` lines name the
//! simulated IPs, plus one client node. The cluster carries out faults (kill and restart,
//! pause, node isolation, partitions, one-way links) and reads each member's `srvr`.
//!
//! Disks: each member keeps its data directory on its own `MemDisk`, which survives the
//! member's restarts. A kill is a power loss: `MemDisk::crash` drops what was not synced and
//! may leave a torn tail (madsim has no file-system faults of its own; `tokio::fs` and
//! `std::fs` are not simulated).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ensemble::core::canary::Canaries;
use ensemble::core::ids::ServerId;
use ensemble::runtime::config::ServerConfig;
use ensemble::runtime::disk::MemDisk;
use ensemble::runtime::Seams;
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;

use crate::client::four_letter;

/// The client port of every member.
pub const CLIENT_PORT: u16 = 2181;
/// `tickTime` of the simulated ensemble, ms.
pub const TICK_MS: u32 = 200;

/// One member of the ensemble.
pub struct Member {
    /// Its simulated IP.
    pub ip: IpAddr,
    /// The madsim node it runs on.
    pub node: NodeId,
    /// Its data directory.
    pub disk: MemDisk,
    /// Killed and not restarted yet.
    pub down: bool,
    /// Paused (frozen) and not resumed yet.
    pub paused: bool,
}

impl Member {
    /// Its client address.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, CLIENT_PORT)
    }
}

/// What `srvr` says about a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `leader`, `follower`, `looking`, ...
    pub mode: String,
    /// The last zxid.
    pub zxid: u64,
}

/// The simulated ensemble and its client node.
pub struct Cluster {
    handle: Handle,
    /// The members, by position (id = position + 1).
    pub members: Vec<Member>,
    /// The node the workload and the checks run on.
    pub client: NodeHandle,
    /// Directed links currently clogged, as (from, to) member positions.
    clogged_links: BTreeSet<(usize, usize)>,
    /// Members currently isolated with `clog_node`.
    isolated: BTreeSet<usize>,
}

/// The `zoo.cfg` shared by every member.
pub fn zoo_cfg(members: usize) -> String {
    let mut text = format!(
        "tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir=/ensemble-sim/data\n\
         snapCount=100\n4lw.commands.whitelist=*\nmaxSessionTimeout=6000\n"
    );
    for position in 0..members {
        let id = position + 1;
        let ip = member_ip(position);
        text.push_str(&format!("server.{id}={ip}:2888:3888;{ip}:{CLIENT_PORT}\n"));
    }
    text
}

/// The JAAS sections quorum SASL reads.
const QUORUM_JAAS: &str = "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule \
    required\n  user_quorum=\"secret\";\n};\nQuorumLearner {\n  \
    org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"quorum\"\n  \
    password=\"secret\";\n};\n";

/// The `zoo.cfg` lines of quorum SASL, with the JAAS file they name written to the real temp
/// dir (the members read it at start-up; madsim does not simulate the file system).
fn quorum_sasl_cfg() -> String {
    let path = std::env::temp_dir()
        .join(format!("ensemble-madsim-quorum-jaas-{}.conf", std::process::id()));
    std::fs::write(&path, QUORUM_JAAS).expect("write the JAAS file");
    format!(
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\njava.security.auth.login.config={}\n",
        path.display()
    )
}

fn member_ip(position: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, position as u8 + 1))
}

impl Cluster {
    /// Creates the member nodes (they start at once) and the client node. With `quorum_sasl`
    /// the members require quorum SASL of each other (DIGEST-MD5, credentials from a JAAS file
    /// written for the run).
    pub fn start_with(members: usize, canaries: Canaries, quorum_sasl: bool) -> Cluster {
        let handle = Handle::current();
        let mut config = zoo_cfg(members);
        if quorum_sasl {
            config.push_str(&quorum_sasl_cfg());
        }
        let members = (0..members)
            .map(|position| {
                let id = position as u64 + 1;
                let ip = member_ip(position);
                let disk = MemDisk::new();
                let (init_disk, init_config) = (disk.clone(), config.clone());
                let node = handle
                    .create_node()
                    .name(format!("server-{id}"))
                    .ip(ip)
                    .init(move || run_member(init_config.clone(), id, init_disk.clone(), canaries))
                    .build();
                Member { ip, node: node.id(), disk, down: false, paused: false }
            })
            .collect();
        let client =
            handle.create_node().name("client").ip(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))).build();
        Cluster {
            handle,
            members,
            client,
            clogged_links: BTreeSet::new(),
            isolated: BTreeSet::new(),
        }
    }

    /// The client addresses of every member, by position.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(Member::client_addr).collect()
    }

    /// Kills a member (all its tasks stop, its sockets close) and crashes its disk, keeping
    /// `torn` unsynced bytes of each file.
    pub fn kill(&mut self, position: usize, torn: usize) {
        let member = &mut self.members[position];
        if member.paused {
            self.handle.resume(member.node);
            member.paused = false;
        }
        self.handle.kill(member.node);
        member.disk.crash(torn);
        member.down = true;
    }

    /// Restarts a killed member: it recovers from its disk and rejoins.
    pub fn restart(&mut self, position: usize) {
        let member = &mut self.members[position];
        self.handle.restart(member.node);
        member.down = false;
    }

    /// Freezes a member, like a long GC pause.
    pub fn pause(&mut self, position: usize) {
        let member = &mut self.members[position];
        if !member.down && !member.paused {
            self.handle.pause(member.node);
            member.paused = true;
        }
    }

    /// Lets a paused member run again.
    pub fn resume(&mut self, position: usize) {
        let member = &mut self.members[position];
        if member.paused {
            self.handle.resume(member.node);
            member.paused = false;
        }
    }

    /// Cuts a member off the network both ways.
    pub fn isolate(&mut self, position: usize) {
        madsim::net::NetSim::current().clog_node(self.members[position].node);
        self.isolated.insert(position);
    }

    /// Cuts the directed link `from -> to`.
    pub fn clog_link(&mut self, from: usize, to: usize) {
        let net = madsim::net::NetSim::current();
        net.clog_link(self.members[from].node, self.members[to].node);
        self.clogged_links.insert((from, to));
    }

    /// Cuts every link between `side` and the other members, both ways.
    pub fn partition(&mut self, side: &BTreeSet<usize>) {
        for a in side.iter().copied() {
            for b in (0..self.members.len()).filter(|b| !side.contains(b)) {
                self.clog_link(a, b);
                self.clog_link(b, a);
            }
        }
    }

    /// Reopens every clogged link and isolated member.
    pub fn heal_network(&mut self) {
        let net = madsim::net::NetSim::current();
        for (from, to) in std::mem::take(&mut self.clogged_links) {
            net.unclog_link(self.members[from].node, self.members[to].node);
        }
        for position in std::mem::take(&mut self.isolated) {
            net.unclog_node(self.members[position].node);
        }
    }

    /// Ends every fault: the network heals, paused members resume, killed members restart.
    pub fn heal_all(&mut self) {
        self.heal_network();
        for position in 0..self.members.len() {
            self.resume(position);
            if self.members[position].down {
                self.restart(position);
            }
        }
    }

    /// `srvr` of every member, asked from the client node (`None` where it did not answer
    /// within `deadline`).
    pub async fn statuses(&self, deadline: Duration) -> Vec<Option<Status>> {
        let addrs = self.client_addrs();
        self.client
            .spawn(async move {
                let mut statuses = Vec::new();
                for addr in addrs {
                    statuses.push(status(addr, deadline).await);
                }
                statuses
            })
            .await
            .expect("the status task is not killed")
    }

    /// The position of the member that says it leads, if exactly one does.
    pub async fn leader(&self) -> Option<usize> {
        let statuses = self.statuses(Duration::from_millis(500)).await;
        let leaders: Vec<usize> = statuses
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| s.mode == "leader"))
            .map(|(position, _)| position)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits (polling `srvr`) until one member leads, every other follows, and all report the
    /// same zxid. Returns the leader's position and the zxid, or the last statuses seen.
    pub async fn converged(&self, within: Duration) -> Result<(usize, u64), Vec<Option<Status>>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Under buggify a connect may take up to 8 s.
            let statuses = self.statuses(Duration::from_secs(10)).await;
            if let Some(converged) = agreement(&statuses) {
                return Ok(converged);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(statuses);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One leader, the rest followers, one zxid.
fn agreement(statuses: &[Option<Status>]) -> Option<(usize, u64)> {
    let statuses: Vec<&Status> = statuses.iter().map(Option::as_ref).collect::<Option<_>>()?;
    let leader = statuses.iter().position(|s| s.mode == "leader")?;
    let zxid = statuses[leader].zxid;
    let rest_follow = statuses
        .iter()
        .enumerate()
        .all(|(position, s)| position == leader || (s.mode == "follower" && s.zxid == zxid));
    rest_follow.then_some((leader, zxid))
}

/// `srvr` of one member, parsed.
pub async fn status(addr: SocketAddr, deadline: Duration) -> Option<Status> {
    let text = four_letter(addr, "srvr", deadline).await.ok()?;
    let field = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name)).map(|value| value.trim().to_owned())
    };
    let mode = field("Mode:")?;
    let zxid = u64::from_str_radix(field("Zxid:")?.trim_start_matches("0x"), 16).ok()?;
    Some(Status { mode, zxid })
}

/// A member's whole life on its node: start the runtime on the shared disk and serve until
/// killed. A start failure is a test failure (it panics the simulation).
async fn run_member(config_text: String, id: u64, disk: MemDisk, canaries: Canaries) {
    let config = ServerConfig::parse(&config_text).expect("the simulated zoo.cfg parses");
    let seams = Seams { fs: disk, canaries };
    match ensemble::runtime::start_with(config, ServerId(id), seams).await {
        Ok(server) => server.wait().await,
        Err(error) => panic!("server {id} failed to start: {error}"),
    }
}
