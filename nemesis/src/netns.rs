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
        let mut ns = Namespaces {
            members: (1..=members).map(|id| format!("ensnem-{pid}-{run}-m{id}")).collect(),
            hub: format!("ensnem-{pid}-{run}-hub"),
            host_if: format!("nem{}h{}", pid % 10_000_000, run % 100),
            net: (200 + (run % 50) as u8, (pid % 250) as u8 + 1),
            cut: Vec::new(),
        };
        match ns.create() {
            Ok(()) => Network::Namespaces(ns),
            Err(error) => {
                ns.destroy();
                Network::Loopback { why: format!("{error:#}") }
            }
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

impl Namespaces {
    fn create(&mut self) -> Result<()> {
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
        Ok(())
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
