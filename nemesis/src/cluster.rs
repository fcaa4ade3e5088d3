//! The members: one `ensemble server --config zoo.cfg` process each, with its own directory
//! (`zoo.cfg`, `myid`, snapshots in `data/`, the log in `log/`, stdout+stderr of every start
//! in `server-<n>.log`). `log/` is a small tmpfs where the harness may mount one (root), so the
//! disk-full fault can fill it.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustix::process::{kill_process, Pid, Signal};

use crate::netns::Network;

/// Settings every member shares.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The `ensemble` binary.
    pub binary: PathBuf,
    /// Members (3 or 5).
    pub members: u64,
    /// Where the members' directories go.
    pub dir: PathBuf,
    /// `tickTime`, ms.
    pub tick_ms: u32,
    /// `syncLimit`, ticks.
    pub sync_limit: u32,
    /// `snapCount`.
    pub snap_count: u32,
    /// Size of each member's log tmpfs, MiB.
    pub log_tmpfs_mib: u32,
}

/// One member.
#[derive(Debug)]
pub struct Member {
    /// Its id (1-based).
    pub id: u64,
    /// Its directory.
    pub dir: PathBuf,
    /// Where the client port listens.
    pub client_addr: SocketAddr,
    child: Option<Child>,
    starts: u32,
    /// SIGSTOPped now.
    pub stopped: bool,
    /// Whether `log/` is a tmpfs this harness mounted.
    pub tmpfs: bool,
    /// Exits seen (a non-zero exit the harness did not cause), with the start they ended.
    pub exits: Vec<(u32, ExitStatus)>,
}

/// The members and their network.
pub struct Cluster {
    /// The members, by `id - 1`.
    pub members: Vec<Member>,
    /// Their network.
    pub net: Network,
    config: ClusterConfig,
    /// On loopback, the lock that keeps this run's port block its own.
    _ports: Option<fs::File>,
}

impl Member {
    /// Snapshot directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Log directory (a tmpfs when `tmpfs`).
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Whether a process runs (it may be stopped).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(Pid::from_child)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
    }

    /// SIGSTOP.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(pid) = self.pid() {
            kill_process(pid, Signal::STOP).context("SIGSTOP")?;
            self.stopped = true;
        }
        Ok(())
    }

    /// SIGCONT.
    pub fn cont(&mut self) -> Result<()> {
        if let Some(pid) = self.pid() {
            kill_process(pid, Signal::CONT).context("SIGCONT")?;
        }
        self.stopped = false;
        Ok(())
    }

    /// If the process exited by itself, reaps it and records the exit.
    pub fn reap(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        self.stopped = false;
        self.exits.push((self.starts, status));
        Some(status)
    }

    /// `srvr`, if the member answers within a second or two.
    pub fn srvr(&self) -> Option<String> {
        if self.child.is_none() || self.stopped {
            return None;
        }
        four_letter(self.client_addr, "srvr").ok()
    }

    /// `Mode:` from `srvr` (leader, follower, standalone), if serving.
    pub fn mode(&self) -> Option<String> {
        let srvr = self.srvr()?;
        srvr.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_string())
    }

    /// `Zxid:` from `srvr`, if serving.
    pub fn zxid(&self) -> Option<i64> {
        let srvr = self.srvr()?;
        let hex = srvr.lines().find_map(|l| l.strip_prefix("Zxid: "))?.trim();
        i64::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
    }

    /// The last `lines` lines of the member's newest server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join(format!("server-{}.log", self.starts)))
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Cluster {
    /// Writes every member's directory and configuration, mounts the log tmpfs where allowed,
    /// and starts them all.
    pub fn start(config: ClusterConfig, net: Network) -> Result<Cluster> {
        let loopback = !net.partitions();
        let mut servers = String::new();
        let mut client_addrs = Vec::new();
        let (base_port, ports) = if loopback { port_block()? } else { (0, None) };
        for id in 1..=config.members {
            let host = net.member_ip(id);
            let (quorum, election, client) = if loopback {
                let at = base_port + 3 * id as u16;
                (at, at + 1, at + 2)
            } else {
                (2888, 3888, 2181)
            };
            servers.push_str(&format!("server.{id}={host}:{quorum}:{election};{host}:{client}\n"));
            client_addrs.push(SocketAddr::new(host, client));
        }
        let mut members = Vec::new();
        for id in 1..=config.members {
            let dir = config.dir.join(format!("member{id}"));
            let data = dir.join("data");
            let log = dir.join("log");
            fs::create_dir_all(&data).with_context(|| format!("mkdir {}", data.display()))?;
            fs::create_dir_all(&log)?;
            fs::write(data.join("myid"), format!("{id}\n"))?;
            let tmpfs = mount_tmpfs(&log, config.log_tmpfs_mib);
            // autopurge.snapRetainCount is huge so that no member deletes a log segment: the
            // harness rebuilds the committed history from every member's whole log. Segments
            // are preallocated in preAllocSize steps, and every kept segment (one per
            // snapCount txns, per epoch, per restart) holds at least one step: at 1 MiB a
            // two-minute run's ~60 segments filled the 64 MiB log tmpfs with no disk-full
            // fault, and the member fail-stopped. 64 KiB steps still exercise preallocation.
            let cfg = format!(
                "tickTime={}\ninitLimit=20\nsyncLimit={}\ndataDir={}\ndataLogDir={}\n\
                 snapCount={}\nautopurge.snapRetainCount=1000000\nautopurge.purgeInterval=0\n\
                 preAllocSize=64\nmaxClientCnxns=0\nminSessionTimeout={}\n\
                 maxSessionTimeout=60000\n4lw.commands.whitelist=*\n{servers}",
                config.tick_ms,
                config.sync_limit,
                data.display(),
                log.display(),
                config.snap_count,
                2 * config.tick_ms,
            );
            fs::write(dir.join("zoo.cfg"), cfg)?;
            members.push(Member {
                id,
                dir,
                client_addr: client_addrs[id as usize - 1],
                child: None,
                starts: 0,
                stopped: false,
                tmpfs,
                exits: Vec::new(),
            });
        }
        let mut cluster = Cluster { members, net, config, _ports: ports };
        for id in 1..=cluster.config.members {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// Member `id`.
    pub fn member(&mut self, id: u64) -> &mut Member {
        &mut self.members[id as usize - 1]
    }

    /// Starts member `id` (it must not be running).
    pub fn spawn(&mut self, id: u64) -> Result<()> {
        let mut command = self.net.command(id, &self.config.binary);
        let member = &mut self.members[id as usize - 1];
        if member.child.is_some() {
            bail!("member {id} already runs");
        }
        member.starts += 1;
        let log = fs::File::create(member.dir.join(format!("server-{}.log", member.starts)))?;
        let err = log.try_clone()?;
        let child = command
            .arg("server")
            .arg("--config")
            .arg(member.dir.join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn member {id}"))?;
        member.child = Some(child);
        member.stopped = false;
        Ok(())
    }

    /// The member `srvr` calls leader, if exactly one does.
    pub fn leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .members
            .iter()
            .filter(|m| m.mode().as_deref() == Some("leader"))
            .map(|m| m.id)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits until every running member serves and one leads, up to `limit`.
    pub fn wait_serving(&mut self, limit: Duration) -> Result<u64> {
        let deadline = Instant::now() + limit;
        loop {
            let modes: Vec<Option<String>> = self.members.iter().map(|m| m.mode()).collect();
            let leaders = modes.iter().filter(|m| m.as_deref() == Some("leader")).count();
            if leaders == 1 && modes.iter().all(Option::is_some) {
                return Ok(self.leader().unwrap_or(0));
            }
            for member in &mut self.members {
                if let Some(status) = member.reap() {
                    bail!("member {} exited ({status}):\n{}", member.id, member.log_tail(30));
                }
            }
            if Instant::now() > deadline {
                bail!("no serving ensemble after {limit:?}: modes {modes:?}\n{}", self.tails());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every member serves and reports the same zxid twice in a row, a second
    /// apart, up to `limit`. Returns it.
    pub fn wait_converged(&mut self, limit: Duration) -> Result<i64> {
        let deadline = Instant::now() + limit;
        let mut previous = None;
        loop {
            let zxids: Vec<Option<i64>> = self.members.iter().map(|m| m.zxid()).collect();
            let agreed = match zxids.first() {
                Some(Some(first)) if zxids.iter().all(|z| *z == Some(*first)) => Some(*first),
                _ => None,
            };
            if agreed.is_some() && agreed == previous && self.leader().is_some() {
                return Ok(agreed.unwrap_or(0));
            }
            previous = agreed;
            if Instant::now() > deadline {
                let dumps = self.dump_stacks(&zxids, agreed);
                bail!("members did not converge within {limit:?}: zxids {zxids:x?}{dumps}");
            }
            std::thread::sleep(Duration::from_millis(1_000));
        }
    }

    /// Writes `gdb` stacks of every running member whose zxid is not `agreed` to
    /// `stacks-<start>.txt` in its directory (best effort: nothing if gdb is missing), so a
    /// member that stopped answering can be told from one that is merely behind. Returns a
    /// line naming the files, for the error.
    fn dump_stacks(&self, zxids: &[Option<i64>], agreed: Option<i64>) -> String {
        let mut written = Vec::new();
        for (member, zxid) in self.members.iter().zip(zxids) {
            if agreed.is_some() && *zxid == agreed {
                continue;
            }
            let Some(pid) = member.pid().filter(|_| !member.stopped) else { continue };
            let path = member.dir.join(format!("stacks-{}.txt", member.starts));
            // A bound, should gdb itself get stuck.
            let output = std::process::Command::new("timeout")
                .args(["60", "gdb", "-p", &pid.as_raw_nonzero().to_string(), "-batch"])
                .args(["-ex", "thread apply all bt"])
                .stdin(std::process::Stdio::null())
                .output();
            if let Ok(output) = output {
                let mut text = output.stdout;
                text.extend_from_slice(&output.stderr);
                if std::fs::write(&path, text).is_ok() {
                    written.push(path.display().to_string());
                }
            }
        }
        if written.is_empty() {
            String::new()
        } else {
            format!("\nstacks: {}", written.join(", "))
        }
    }

    /// The tail of every member's log, for error messages.
    pub fn tails(&self) -> String {
        let mut out = String::new();
        for member in &self.members {
            out.push_str(&format!("--- member {} ---\n{}\n", member.id, member.log_tail(20)));
        }
        out
    }

    /// Kills every member and unmounts the tmpfs mounts (their contents are copied out
    /// first, so the directories stay readable for the checkers and a post-mortem).
    pub fn shutdown(&mut self) {
        for member in &mut self.members {
            let _ = member.cont();
            member.kill();
            if member.tmpfs {
                let log = member.log_dir();
                let keep = member.dir.join("log.saved");
                let _ = fs::create_dir_all(&keep);
                if let Ok(entries) = fs::read_dir(&log) {
                    for entry in entries.flatten() {
                        if entry.file_name() != "filler" {
                            let _ = fs::copy(entry.path(), keep.join(entry.file_name()));
                        }
                    }
                }
                if umount(&log) {
                    let _ = fs::remove_dir(&log);
                    let _ = fs::rename(&keep, &log);
                    member.tmpfs = false;
                }
            }
        }
    }
}

/// A block of 30 loopback ports no other harness on this machine uses now, with the lock
/// (released when the run ends, or its process dies) that says so. Two runs on one block would
/// reach each other's members, as two on one subnet did (see `Network::setup_named`).
fn port_block() -> Result<(u16, Option<fs::File>)> {
    let pid = std::process::id();
    for attempt in 0..300 {
        let base = 21_000 + ((pid + attempt) % 300) as u16 * 30;
        let path = std::env::temp_dir().join(format!("ensemble-nemesis-ports-{base}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        if file.try_lock().is_ok() {
            return Ok((base, Some(file)));
        }
    }
    bail!("every loopback port block is in use by another harness")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn mount_tmpfs(dir: &Path, mib: u32) -> bool {
    if !rustix::process::geteuid().is_root() {
        return false;
    }
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn umount(dir: &Path) -> bool {
    Command::new("umount")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends a four-letter word and reads the answer (2 s bounds).
pub fn four_letter(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(word.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// Fills the file system holding `dir` with a file named `filler` until it is full. Returns
/// the bytes written.
pub fn fill(dir: &Path) -> Result<u64> {
    let mut file = fs::File::create(dir.join("filler"))?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    let _ = file.sync_all();
    Ok(written)
}

/// Removes what [`fill`] wrote.
pub fn unfill(dir: &Path) {
    let _ = fs::remove_file(dir.join("filler"));
}

#[cfg(test)]
mod tests {
    use super::port_block;

    #[test]
    fn two_runs_get_different_port_blocks() {
        let (first, _first_lock) = port_block().unwrap();
        let (second, _second_lock) = port_block().unwrap();
        assert_ne!(first, second, "two runs on one loopback port block");
    }
}
