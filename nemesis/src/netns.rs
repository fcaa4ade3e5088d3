//! The network the members talk over: one Linux network namespace per member, joined by veth
//! pairs to a bridge in a hub namespace of the run's own, plus one veth from the harness's
//! namespace to the bridge for the clients. Partitions are blackhole routes inside the
//! members' namespaces (iproute2 only: no iptables, no `tc` qdisc modules needed).
//!
//! Where namespaces cannot be made (not root, no `ip`, no veth or bridge support), every
//! member listens on 127.0.0.1 with ports of its own and partitions are unavailable: the
//! harness says so once and injects only the faults that need no network control.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

/// How members are reached.
#[derive(Debug)]
pub enum Network {
    /// Namespaces and a bridge (partitions available).
    Namespaces(Namespaces),
    /// Everything on 127.0.0.1 (no partitions).
    Loopback {
        /// Why namespaces were not used.
        why: String,
    },
}

/// The namespaces of one run.
#[derive(Debug)]
pub struct Namespaces {
    /// Namespace names, by member (index `id - 1`).
    members: Vec<String>,
    hub: String,
    /// The harness-side veth in the harness's own namespace.
    host_if: String,
    /// First two octets after 10.: `10.a.b.0/24`.
    net: (u8, u8),
    /// Blackholed (from, to) pairs now in force.
    cut: Vec<(u64, u64)>,
}

impl Network {
    /// Namespaces for `members` members if this machine allows them, else loopback.
    pub fn setup(members: u64) -> Network {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let run = RUN.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let first = (200 + (run % 50) as u8, (pid % 250) as u8 + 1);
        Network::setup_named(
            members,
            &format!("ensnem-{pid}-{run}"),
            &format!("nem{}h{}", pid % 10_000_000, run % 100),
            first,
        )
    }

    /// Namespaces named after `tag`, the harness-side veth `host_if`, on the first free
    /// `10.a.b.0/24` from `first` on.
    ///
    /// The subnet must be this run's alone in the harness's namespace: another run's (a
    /// concurrent harness whose pid is equal modulo 250) would add a second connected route
    /// for it, and the kernel sends to the older one, so this run's clients and `srvr`
    /// queries would silently reach the other run's members. A subnet whose member addresses
    /// do not route over `host_if` once it is up is given back and the next one tried.
    pub fn setup_named(members: u64, tag: &str, host_if: &str, first: (u8, u8)) -> Network {
        let mut taken = Vec::new();
        for attempt in 0..SUBNET_TRIES {
            let net = (first.0, ((first.1 as u32 - 1 + attempt) % 250) as u8 + 1);
            let mut ns = Namespaces {
                members: (1..=members).map(|id| format!("{tag}-m{id}")).collect(),
                hub: format!("{tag}-hub"),
                host_if: host_if.to_string(),
                net,
                cut: Vec::new(),
            };
            match ns.create() {
                Ok(true) => return Network::Namespaces(ns),
                Ok(false) => {
                    ns.destroy();
                    taken.push(format!("10.{}.{}.0/24", net.0, net.1));
                }
                Err(error) => {
                    ns.destroy();
                    return Network::Loopback { why: format!("{error:#}") };
                }
            }
        }
        Network::Loopback { why: format!("every subnet tried is in use: {}", taken.join(", ")) }
    }

    /// Whether every member address routes over this run's own veth (always on loopback).
    pub fn routes_own(&self) -> bool {
        match self {
            Network::Namespaces(ns) => {
                (1..=ns.members.len() as u64).all(|id| ns.routes_here(id).unwrap_or(false))
            }
            Network::Loopback { .. } => true,
        }
    }

    /// Whether partitions can be injected.
    pub fn partitions(&self) -> bool {
        matches!(self, Network::Namespaces(_))
    }

    /// The address member `id` listens on.
    pub fn member_ip(&self, id: u64) -> IpAddr {
        match self {
            Network::Namespaces(ns) => IpAddr::V4(Ipv4Addr::new(10, ns.net.0, ns.net.1, id as u8)),
            Network::Loopback { .. } => IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// A command that runs `program` in member `id`'s namespace.
    pub fn command(&self, id: u64, program: &std::path::Path) -> Command {
        match self {
            Network::Namespaces(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &ns.members[id as usize - 1]]).arg(program);
                command
            }
            Network::Loopback { .. } => Command::new(program),
        }
    }

    /// Cuts every link between `a` and `b` (both directions). No-op on loopback.
    pub fn cut(&mut self, a: &[u64], b: &[u64]) -> Result<()> {
        let Network::Namespaces(ns) = self else { return Ok(()) };
        for &x in a {
            for &y in b {
                ns.blackhole(x, y)?;
                ns.blackhole(y, x)?;
            }
        }
        Ok(())
    }

    /// Restores every link cut so far.
    pub fn heal(&mut self) -> Result<()> {
        let Network::Namespaces(ns) = self else { return Ok(()) };
        for (from, to) in std::mem::take(&mut ns.cut) {
            let dest = format!("10.{}.{}.{to}/32", ns.net.0, ns.net.1);
            ip(&["-n", &ns.members[from as usize - 1], "route", "del", "blackhole", &dest])?;
        }
        Ok(())
    }
}

/// Subnets tried before giving up on namespaces.
const SUBNET_TRIES: u32 = 16;

impl Namespaces {
    /// Makes the namespaces; `Ok(false)` when the subnet turned out to be routed elsewhere
    /// from the harness's namespace (another run's), see [`Network::setup_named`].
    fn create(&mut self) -> Result<bool> {
        if !rustix::process::geteuid().is_root() {
            bail!("not root");
        }
        let (a, b) = self.net;
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for (index, ns) in self.members.clone().iter().enumerate() {
            let id = index + 1;
            let hub_end = format!("m{id}");
            ip(&["netns", "add", ns])?;
            ip(&["-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0"])?;
            ip(&["-n", &hub, "link", "set", "eth0", "netns", ns])?;
            ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("10.{a}.{b}.{id}/24"), "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["link", "add", &self.host_if, "type", "veth", "peer", "name", "host", "netns", &hub])?;
        ip(&["-n", &hub, "link", "set", "host", "master", "br0", "up"])?;
        ip(&["addr", "add", &format!("10.{a}.{b}.254/24"), "dev", &self.host_if])?;
        ip(&["link", "set", &self.host_if, "up"])?;
        for id in 1..=self.members.len() {
            if !self.routes_here(id as u64)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the harness reaches member `id`'s address over this run's own veth.
    fn routes_here(&self, id: u64) -> Result<bool> {
        let dest = format!("10.{}.{}.{id}", self.net.0, self.net.1);
        let output = Command::new("ip")
            .args(["-4", "route", "get", &dest])
            .stdin(Stdio::null())
            .output()
            .context("run ip route get")?;
        if !output.status.success() {
            bail!("ip route get {dest}: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        Ok(words.windows(2).any(|w| w[0] == "dev" && w[1] == self.host_if))
    }

    fn blackhole(&mut self, from: u64, to: u64) -> Result<()> {
        if self.cut.contains(&(from, to)) {
            return Ok(());
        }
        let dest = format!("10.{}.{}.{to}/32", self.net.0, self.net.1);
        ip(&["-n", &self.members[from as usize - 1], "route", "add", "blackhole", &dest])?;
        self.cut.push((from, to));
        Ok(())
    }

    /// Deletes everything `create` made (best effort: a half-made setup is torn down too).
    fn destroy(&mut self) {
        let _ = quiet_ip(&["link", "del", &self.host_if]);
        for ns in &self.members {
            let _ = quiet_ip(&["netns", "del", ns]);
        }
        let _ = quiet_ip(&["netns", "del", &self.hub]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run ip {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

fn quiet_ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("ip {} failed", args.join(" "));
    }
    Ok(())
}
