//! The fault schedule (drawn from the seed) and its execution against the real processes.
//!
//! Faults come one at a time, in rounds: each round is a seeded shuffle of every kind this
//! machine allows, so a run of a few rounds injects each kind. A fault holds for a drawn time,
//! is undone, and a drawn gap follows. Targets that depend on the run (the leader) are named
//! in the schedule as `leader` and resolved with `srvr` when the fault starts.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::Result;
use ensemble_sim::SimTime;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::{self, Cluster};

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// SIGKILL, then a restart after the hold.
    Kill,
    /// SIGSTOP, then SIGCONT after the hold.
    Pause,
    /// A minority cut off from the rest (network namespaces only).
    Partition,
    /// The member's log file system filled up; freed after the hold, the member restarted if
    /// it exited (as a supervisor would).
    DiskFull,
    /// The leader SIGKILLed while a snapshot file of it is being written.
    SnapshotKill,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] =
        [Kind::Kill, Kind::Pause, Kind::Partition, Kind::DiskFull, Kind::SnapshotKill];

    /// Its name in schedules and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::DiskFull => "disk-full",
            Kind::SnapshotKill => "snapshot-kill",
        }
    }
}

/// Whom a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Whoever leads when the fault starts.
    Leader,
    /// Member `id`.
    Member(u64),
}

/// One planned fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Earliest start, ms after the workload started.
    pub at_ms: u64,
    /// What.
    pub kind: Kind,
    /// Whom (for a partition, a kill or a pause: one member of the minority it hits).
    pub target: Target,
    /// How many members it hits (a partition: the minority cut off), the target included.
    pub minority: usize,
    /// How long it holds, ms.
    pub hold_ms: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.target {
            Target::Leader => "leader".to_string(),
            Target::Member(id) => format!("m{id}"),
        };
        write!(f, "t+{:>6} ms  {:<13} {target}", self.at_ms, self.kind.name())?;
        if self.minority > 1 {
            write!(f, " (+{} more)", self.minority - 1)?;
        }
        write!(f, " for {} ms", self.hold_ms)
    }
}

/// Draws the schedule for `duration_ms` of faults.
pub fn schedule(
    rng: &mut ChaCha8Rng,
    members: u64,
    kinds: &[Kind],
    duration_ms: u64,
) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut at = rng.gen_range(1_000..3_000);
    let mut round: Vec<Kind> = Vec::new();
    while at < duration_ms && !kinds.is_empty() {
        if round.is_empty() {
            round = kinds.to_vec();
            round.shuffle(rng);
        }
        let kind = round.pop().unwrap_or(Kind::Kill);
        let target = if kind == Kind::SnapshotKill || rng.gen_bool(0.4) {
            Target::Leader
        } else {
            Target::Member(rng.gen_range(1..=members))
        };
        // A partition's minority, or the members a kill or pause hits at once: up to a
        // minority (two of five), so a quorum always remains.
        let minority = match kind {
            Kind::Partition | Kind::Kill | Kind::Pause => {
                rng.gen_range(1..=((members as usize - 1) / 2).max(1))
            }
            _ => 1,
        };
        let hold_ms = match kind {
            Kind::Pause => rng.gen_range(500..8_000),
            Kind::DiskFull => rng.gen_range(1_000..4_000),
            _ => rng.gen_range(500..5_000),
        };
        faults.push(Fault { at_ms: at, kind, target, minority, hold_ms });
        at += hold_ms + rng.gen_range(1_000..4_000);
    }
    faults
}

/// What the faults came to.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Faults injected, by kind.
    pub injected: BTreeMap<Kind, u32>,
    /// Snapshot kills that caught a snapshot file being written.
    pub snapshot_caught: u32,
    /// Disk-full faults after which the member had exited by itself.
    pub disk_full_exited: u32,
    /// Disk-full faults after which the member still ran but did not serve, and was killed
    /// and restarted by the harness.
    pub disk_full_stuck: u32,
    /// Members that exited without being killed, outside a disk-full fault: (member, status,
    /// log tail).
    pub unexpected_exits: Vec<(u64, String, String)>,
    /// Intervals in which a fault could hide a client from the servers (for the session
    /// checker), on the run's time axis.
    pub disturbances: Vec<(SimTime, SimTime)>,
    /// Faults that could not be carried out (e.g. no leader to kill), with why.
    pub skipped: Vec<String>,
}

/// Carries out the schedule against `cluster`.
pub struct Nemesis<'a> {
    /// The members.
    pub cluster: &'a mut Cluster,
    /// The run's time zero.
    pub start: Instant,
    /// Extra time after a fault in which clients may still be misjudged (stale leaders,
    /// restarts).
    pub stale_ms: u64,
    /// The results.
    pub tally: Tally,
    /// Picks minority members.
    pub rng: ChaCha8Rng,
    /// Print each fault as it happens.
    pub verbose: bool,
}

impl Nemesis<'_> {
    fn now(&self) -> SimTime {
        SimTime(self.start.elapsed().as_micros() as u64)
    }

    /// Runs every fault of `faults` that starts before `until_ms`, then heals everything.
    pub fn run(&mut self, faults: &[Fault], until_ms: u64) -> Result<()> {
        for fault in faults {
            if fault.at_ms >= until_ms {
                break;
            }
            while (self.start.elapsed().as_millis() as u64) < fault.at_ms {
                self.supervise(false);
                std::thread::sleep(Duration::from_millis(50));
            }
            self.supervise(false);
            let began = self.now();
            let done = self.inject(fault)?;
            if done {
                *self.tally.injected.entry(fault.kind).or_insert(0) += 1;
                let end = self.now().plus_ms(self.stale_ms);
                self.tally.disturbances.push((began, end));
            }
        }
        Ok(())
    }

    /// Restarts members that exited on their own (a supervisor's job), noting the exit.
    fn supervise(&mut self, expected: bool) {
        for index in 0..self.cluster.members.len() {
            let member = &mut self.cluster.members[index];
            if let Some(status) = member.reap() {
                let id = member.id;
                if !expected {
                    let tail = member.log_tail(15);
                    self.tally.unexpected_exits.push((id, status.to_string(), tail));
                }
                let _ = self.cluster.spawn(id);
            }
        }
    }

    fn resolve(&mut self, target: Target) -> Option<u64> {
        match target {
            Target::Member(id) => Some(id),
            Target::Leader => self.cluster.leader(),
        }
    }

    fn hold(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn say(&self, what: String) {
        if self.verbose {
            eprintln!("[nemesis {:>9}] {what}", self.now());
        }
    }

    /// Carries out one fault; false if it could not be.
    fn inject(&mut self, fault: &Fault) -> Result<bool> {
        let Some(id) = self.resolve(fault.target) else {
            self.tally.skipped.push(format!("{fault}: no leader"));
            return Ok(false);
        };
        let n = self.cluster.members.len() as u64;
        let mut minority = vec![id];
        let mut others: Vec<u64> = (1..=n).filter(|&m| m != id).collect();
        others.shuffle(&mut self.rng);
        minority.extend(others.drain(..fault.minority - 1));
        match fault.kind {
            Kind::Kill => {
                self.say(format!("kill {minority:?} for {} ms", fault.hold_ms));
                for &m in &minority {
                    self.cluster.member(m).kill();
                }
                self.hold(fault.hold_ms);
                for &m in &minority {
                    self.cluster.spawn(m)?;
                }
            }
            Kind::Pause => {
                self.say(format!("pause {minority:?} for {} ms", fault.hold_ms));
                for &m in &minority {
                    self.cluster.member(m).stop()?;
                }
                self.hold(fault.hold_ms);
                for &m in &minority {
                    self.cluster.member(m).cont()?;
                }
            }
            Kind::Partition => {
                self.say(format!("partition {minority:?} | {others:?} for {} ms", fault.hold_ms));
                self.cluster.net.cut(&minority, &others)?;
                self.hold(fault.hold_ms);
                self.cluster.net.heal()?;
            }
            Kind::DiskFull => {
                let dir = self.cluster.member(id).log_dir();
                let filled = cluster::fill(&dir)?;
                self.say(format!(
                    "disk full on m{id} ({} MiB) for {} ms",
                    filled >> 20,
                    fault.hold_ms
                ));
                self.hold(fault.hold_ms);
                let exited = self.cluster.member(id).reap();
                cluster::unfill(&dir);
                if exited.is_some() {
                    self.tally.disk_full_exited += 1;
                    self.say(format!("m{id} exited on the full disk ({exited:?}); restarting"));
                    self.cluster.spawn(id)?;
                } else {
                    // Space is back; a member that still neither serves nor exits within a
                    // few seconds is stuck (a supervisor would not notice): restart it.
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let mut serving = false;
                    while Instant::now() < deadline {
                        if self.cluster.member(id).reap().is_some() {
                            self.tally.disk_full_exited += 1;
                            self.cluster.spawn(id)?;
                            serving = true;
                            break;
                        }
                        if self.cluster.member(id).mode().is_some() && self.writes_reach(id) {
                            serving = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    if !serving {
                        self.tally.disk_full_stuck += 1;
                        self.say(format!("m{id} stuck after the full disk; restarting it"));
                        self.cluster.member(id).kill();
                        self.cluster.spawn(id)?;
                    }
                }
            }
            Kind::SnapshotKill => {
                let data = self.cluster.member(id).data_dir();
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut caught = false;
                while Instant::now() < deadline {
                    if snapshot_in_progress(&data) {
                        caught = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(300));
                }
                self.cluster.member(id).kill();
                self.tally.snapshot_caught += u32::from(caught);
                self.say(format!(
                    "killed leader m{id} {} a snapshot; down {} ms",
                    if caught { "while writing" } else { "(timer) without catching" },
                    fault.hold_ms
                ));
                self.hold(fault.hold_ms);
                self.cluster.spawn(id)?;
            }
        }
        Ok(true)
    }

    /// Whether member `id` reports a zxid at least the leader's of a moment ago (it applies
    /// what is committed again).
    fn writes_reach(&self, id: u64) -> bool {
        let Some(leader) = self.cluster.leader() else { return false };
        let Some(target) = self.cluster.members[leader as usize - 1].zxid() else { return false };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.cluster.members[id as usize - 1].zxid().is_some_and(|z| z >= target) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Undoes every fault: SIGCONT, links restored, disks freed, every member running.
    pub fn heal(&mut self) -> Result<()> {
        for member in &mut self.cluster.members {
            member.cont()?;
            cluster::unfill(&member.log_dir());
        }
        self.cluster.net.heal()?;
        self.supervise(false);
        for id in 1..=self.cluster.members.len() as u64 {
            if !self.cluster.member(id).running() {
                self.cluster.spawn(id)?;
            }
        }
        Ok(())
    }
}

/// Whether `dir` holds a snapshot being written (`snapshot.<zxid>.tmp`).
fn snapshot_in_progress(dir: &std::path::Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("snapshot.") && name.ends_with(".tmp")
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_round_has_every_kind_and_never_hits_a_quorum() {
        for members in [3u64, 5] {
            let mut rng = ChaCha8Rng::seed_from_u64(members);
            let faults = schedule(&mut rng, members, &Kind::ALL, 600_000);
            for round in faults.chunks_exact(Kind::ALL.len()) {
                let mut kinds: Vec<Kind> = round.iter().map(|f| f.kind).collect();
                kinds.sort();
                assert_eq!(kinds, Kind::ALL.to_vec());
            }
            assert!(faults.iter().all(|f| (f.minority as u64) <= (members - 1) / 2));
            assert!(faults.windows(2).all(|w| w[1].at_ms > w[0].at_ms + w[0].hold_ms));
        }
    }

    #[test]
    fn a_seed_describes_its_schedule() {
        let draw = || schedule(&mut ChaCha8Rng::seed_from_u64(9), 5, &Kind::ALL, 60_000);
        let lines = |f: Vec<Fault>| f.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(lines(draw()), lines(draw()));
    }
}
