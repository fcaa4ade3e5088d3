//! The committed history, rebuilt from the members' data directories after the run (every
//! member stopped, nothing purged), for the simulator's checkers.
//!
//! The simulator builds its `Committed` log online from what established leaders applied; a
//! real process shows nothing of the kind, so the harness reads every member's log segments
//! and snapshots instead. Two facts of Zab make the union of the logs usable:
//!
//! * a zxid names one proposal: only the one established leader of its epoch proposes in it,
//!   so every copy of a zxid in any log must be the same txn (a difference is reported as a
//!   violation: members disagree);
//! * in each epoch the committed txns are a prefix (counters `1..=k`). What a log holds past
//!   `k` is an uncommitted tail that a later sync would have cut, but a member synced by a
//!   SNAP keeps older segments untouched, so such tails can survive on disk.
//!
//! So the harness needs each epoch's `k`, and takes only what it can prove:
//! * the final zxid every member reported (`srvr`) once they converged is committed (when it
//!   is a fresh epoch's `(e, 0)`, which no txn carries, what every member recovers to is);
//! * where a member's log holds `x` immediately followed by the first txn of a later epoch
//!   (`counter == 1`), with no snapshot of that member strictly between them, the member
//!   logged that epoch's leader's history right after `x`, and an established leader's
//!   initial history is committed, so `x` is committed.
//!
//! Every epoch's `k` is the highest proven counter; the committed log is every txn of the
//! union at or below it. A counter missing below `k` in every log is reported (the harness
//! could not see part of the history), and txns of epochs without proof are left out and
//! counted in the notes (a durability violation would then name any acknowledged write among
//! them). Commit times, for the session and lock checkers, are the txns' own `time_ms` (the
//! leader's wall clock, read once per drain of its input queue) on the run's time axis; see
//! `judge` in `lib.rs` for why the linearizable-writes checker gets none.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use bytes::Bytes;
use ensemble::core::ids::{ServerId, Zxid};
use ensemble::core::txn::Txn;
use ensemble::storage::log::scan_segment;
use ensemble::storage::names::{parse_file_name, FileKind};
use ensemble::storage::recovery::recover_files;
use ensemble_sim::checker::sessions::Member;
use ensemble_sim::checker::Committed;
use ensemble_sim::SimTime;

/// What one member's directories hold.
#[derive(Debug, Default)]
pub struct MemberDisk {
    /// The member.
    pub id: u64,
    /// Its whole log, segment after segment, as written.
    pub txns: Vec<Txn>,
    /// Its snapshots' zxids.
    pub snapshots: Vec<Zxid>,
    /// Its state as a restart would recover it, if recovery succeeds.
    pub state: Option<Member>,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// Reads member `id`'s snapshot dir `data` and log dir `log`.
pub fn read_member(id: u64, data: &Path, log: &Path) -> Result<MemberDisk> {
    let mut disk = MemberDisk { id, ..MemberDisk::default() };
    let mut files: Vec<(String, Bytes)> = Vec::new();
    for dir in [data, log] {
        for entry in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if parse_file_name(&name).is_some() {
                files.push((name, Bytes::from(fs::read(entry.path())?)));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut segments: Vec<(Zxid, &Bytes, &str)> = Vec::new();
    for (name, bytes) in &files {
        match parse_file_name(name) {
            Some(FileKind::Segment(base)) => segments.push((base, bytes, name)),
            Some(FileKind::Snapshot(zxid)) => disk.snapshots.push(zxid),
            _ => {}
        }
    }
    segments.sort_by_key(|(base, _, _)| *base);
    let last = segments.len().saturating_sub(1);
    for (index, (_, bytes, name)) in segments.iter().enumerate() {
        match scan_segment(bytes, index == last) {
            Ok(scan) => disk.txns.extend(scan.txns),
            Err(error) => disk.problems.push(format!("member {id}: {name}: {error}")),
        }
    }
    disk.snapshots.sort();
    match recover_files(&files) {
        Ok(recovered) => {
            let mut tree = match &recovered.snapshot {
                Some((_, body)) => match ensemble::core::snapshot::decode(body) {
                    Ok(restored) => restored.tree,
                    Err(error) => {
                        disk.problems.push(format!("member {id}: snapshot: {error}"));
                        return Ok(disk);
                    }
                },
                None => ensemble::core::tree::DataTree::new(),
            };
            let mut events = Vec::new();
            for txn in &recovered.txns {
                tree.apply(txn, &mut events);
                events.clear();
            }
            let ephemerals = tree
                .sessions_with_ephemerals()
                .into_iter()
                .flat_map(|owner| tree.ephemerals(owner).into_iter().map(move |p| (owner, p)))
                .collect();
            disk.state =
                Some(Member { server: ServerId(id), applied: tree.zxid_applied(), ephemerals });
        }
        Err(error) => disk.problems.push(format!("member {id}: recovery: {error}")),
    }
    Ok(disk)
}

/// The committed log and what the checkers need besides.
#[derive(Debug)]
pub struct Rebuilt {
    /// The committed log, with times.
    pub committed: Committed,
    /// Every member's recovered state.
    pub members: Vec<Member>,
    /// Members' logs disagree on a zxid, or a member's state is not the committed one: real
    /// violations.
    pub violations: Vec<String>,
    /// The harness could not see part of the history (not a verdict on the server).
    pub gaps: Vec<String>,
    /// Counts worth printing.
    pub notes: Vec<String>,
}

/// Maps the servers' wall-clock milliseconds onto the run's time axis: two readings of the
/// wall clock (µs since the epoch) taken at known run times, interpolated, so a drift between
/// the wall clock and the monotonic clock during the run is corrected.
#[derive(Clone, Copy, Debug)]
pub struct WallMap {
    /// (run time, wall µs) at the start.
    pub first: (SimTime, i64),
    /// (run time, wall µs) at the end.
    pub last: (SimTime, i64),
}

impl WallMap {
    /// The run time of wall-clock millisecond `ms`, rounded up to the end of that
    /// millisecond: a txn's `time_ms` is its prepare time truncated to the millisecond, and
    /// it was committed after it was prepared, so the later bound is the fairer one.
    pub fn at(&self, ms: i64) -> SimTime {
        let wall = ms.saturating_mul(1_000) + 999;
        let (t0, w0) = (self.first.0 .0 as f64, self.first.1 as f64);
        let (t1, w1) = (self.last.0 .0 as f64, self.last.1 as f64);
        let rate = if w1 > w0 { (t1 - t0) / (w1 - w0) } else { 1.0 };
        SimTime((t0 + (wall as f64 - w0) * rate).max(0.0) as u64)
    }
}

/// Rebuilds the committed log from `disks`; `final_zxid` is what every member reported at
/// the end; `wall` maps the txns' wall-clock times onto the run's time axis.
pub fn rebuild(disks: &[MemberDisk], final_zxid: Zxid, wall: WallMap) -> Rebuilt {
    let mut violations = Vec::new();
    let mut gaps = Vec::new();
    let mut notes = Vec::new();
    let mut union: BTreeMap<Zxid, (&Txn, u64)> = BTreeMap::new();
    for disk in disks {
        gaps.extend(disk.problems.iter().cloned());
        for txn in &disk.txns {
            match union.get(&txn.zxid) {
                Some((other, holder)) if *other != txn => violations.push(format!(
                    "members {holder} and {} logged different txns at zxid {}: {other:?} vs {txn:?}",
                    disk.id, txn.zxid
                )),
                Some(_) => {}
                None => {
                    union.insert(txn.zxid, (txn, disk.id));
                }
            }
        }
    }
    // ZK compat: after an election `srvr` reports (epoch, 0) until the epoch's first txn, and
    // no txn carries that zxid. A run that ends that way (an election after the last write)
    // committed what the members recover to, provided they all agree on it: that is the
    // established leader's history, which every converged member was synced to.
    let final_zxid = if final_zxid.counter() == 0 {
        let mut applied = disks.iter().filter_map(|d| d.state.as_ref().map(|s| s.applied));
        match applied.next() {
            Some(first) if first < final_zxid && applied.all(|z| z == first) => first,
            _ => final_zxid,
        }
    } else {
        final_zxid
    };
    // Each epoch's highest counter proven committed.
    let mut proven: BTreeMap<u32, u32> = BTreeMap::new();
    let mut prove = |zxid: Zxid| {
        let k = proven.entry(zxid.epoch()).or_insert(0);
        *k = (*k).max(zxid.counter());
    };
    prove(final_zxid);
    for disk in disks {
        for pair in disk.txns.windows(2) {
            let (x, y) = (pair[0].zxid, pair[1].zxid);
            let snapshot_between = disk.snapshots.iter().any(|&z| x < z && z < y);
            if y.epoch() > x.epoch() && y.counter() == 1 && !snapshot_between {
                prove(x);
            }
        }
    }
    let mut txns = Vec::new();
    let mut unproven: BTreeMap<u32, usize> = BTreeMap::new();
    for (&zxid, (txn, _)) in &union {
        match proven.get(&zxid.epoch()) {
            Some(&k) if zxid.counter() <= k => txns.push((*txn).clone()),
            _ => *unproven.entry(zxid.epoch()).or_insert(0) += 1,
        }
    }
    for (&epoch, &k) in &proven {
        let held = txns.iter().filter(|t| t.zxid.epoch() == epoch).count();
        if k > 0 && held != k as usize {
            gaps.push(format!(
                "epoch {epoch:#x}: committed up to counter {k} but the logs hold {held} of them"
            ));
        }
    }
    if !unproven.is_empty() {
        let total: usize = unproven.values().sum();
        notes.push(format!(
            "{total} logged txns left out as uncommitted tails (by epoch: {unproven:x?})"
        ));
    }
    let times = txns.iter().map(|t| wall.at(t.time_ms)).collect();
    let committed = Committed::with_times(txns, times);
    let mut members = Vec::new();
    for disk in disks {
        if let Some(state) = &disk.state {
            if state.applied != final_zxid {
                violations.push(format!(
                    "member {} recovers to {} but every member reported {final_zxid} at the end",
                    disk.id, state.applied
                ));
            }
            members.push(state.clone());
        }
    }
    notes.push(format!(
        "committed log: {} txns over {} epochs, last {}",
        committed.txns().len(),
        proven.len(),
        committed.last_zxid()
    ));
    Rebuilt { committed, members, violations, gaps, notes }
}

#[cfg(test)]
mod tests {
    use ensemble::core::ids::SessionId;
    use ensemble::core::txn::TxnOp;

    use super::*;

    fn txn(epoch: u32, counter: u32, path: &str) -> Txn {
        Txn {
            zxid: Zxid::new(epoch, counter),
            session: SessionId(7),
            cxid: counter as i32,
            time_ms: 1_000,
            op: TxnOp::Delete { path: path.into() },
        }
    }

    fn disk(id: u64, txns: Vec<Txn>, snapshots: Vec<Zxid>) -> MemberDisk {
        MemberDisk { id, txns, snapshots, ..MemberDisk::default() }
    }

    fn wall() -> WallMap {
        WallMap { first: (SimTime(0), 0), last: (SimTime(10_000_000), 10_000_000) }
    }

    fn zxids(rebuilt: &Rebuilt) -> Vec<Zxid> {
        rebuilt.committed.txns().iter().map(|t| t.zxid).collect()
    }

    #[test]
    fn an_uncommitted_tail_kept_by_a_snap_synced_member_is_left_out() {
        // Member 1 led epoch 1 and logged (1,1..3); only (1,1..2) were committed: member 2
        // went on with epoch 2 right after (1,2). Member 1 was later synced by a SNAP at
        // (2,2), so its stale (1,3) survived in an old segment.
        let old_leader = disk(
            1,
            vec![txn(1, 1, "/a"), txn(1, 2, "/b"), txn(1, 3, "/x"), txn(2, 3, "/e")],
            vec![Zxid::new(2, 2)],
        );
        let new_leader = disk(
            2,
            vec![
                txn(1, 1, "/a"),
                txn(1, 2, "/b"),
                txn(2, 1, "/c"),
                txn(2, 2, "/d"),
                txn(2, 3, "/e"),
            ],
            vec![],
        );
        let rebuilt = rebuild(&[old_leader, new_leader], Zxid::new(2, 3), wall());
        assert_eq!(
            zxids(&rebuilt),
            vec![
                Zxid::new(1, 1),
                Zxid::new(1, 2),
                Zxid::new(2, 1),
                Zxid::new(2, 2),
                Zxid::new(2, 3)
            ]
        );
        assert!(rebuilt.violations.is_empty() && rebuilt.gaps.is_empty(), "{rebuilt:?}");
    }

    #[test]
    fn a_snapshot_between_two_epochs_proves_nothing() {
        // (1,3) followed by (3,1) across a SNAP at (2,1): epoch 1 may have ended earlier.
        let member =
            disk(1, vec![txn(1, 1, "/a"), txn(1, 3, "/x"), txn(3, 1, "/c")], vec![Zxid::new(2, 1)]);
        let rebuilt = rebuild(&[member], Zxid::new(3, 1), wall());
        assert_eq!(zxids(&rebuilt), vec![Zxid::new(3, 1)]);
    }

    #[test]
    fn members_that_disagree_on_a_zxid_are_a_violation() {
        let one = disk(1, vec![txn(1, 1, "/a")], vec![]);
        let two = disk(2, vec![txn(1, 1, "/b")], vec![]);
        let rebuilt = rebuild(&[one, two], Zxid::new(1, 1), wall());
        assert_eq!(rebuilt.violations.len(), 1, "{rebuilt:?}");
    }

    #[test]
    fn a_committed_counter_no_log_holds_is_a_gap() {
        let member = disk(1, vec![txn(1, 1, "/a"), txn(1, 3, "/c")], vec![]);
        let rebuilt = rebuild(&[member], Zxid::new(1, 3), wall());
        assert_eq!(rebuilt.gaps.len(), 1, "{rebuilt:?}");
    }

    fn recovered(mut disk: MemberDisk, applied: Zxid) -> MemberDisk {
        disk.state = Some(Member { server: ServerId(disk.id), applied, ephemerals: Vec::new() });
        disk
    }

    #[test]
    fn a_final_zxid_of_a_fresh_epoch_proves_the_history_before_it() {
        // The run ended with an election and no txn after it: `srvr` said (3,0), as ZooKeeper
        // does, and both members recover to (2,2), the leader's history when it was
        // established: committed, and not a violation.
        let logged = vec![txn(1, 1, "/a"), txn(2, 1, "/b"), txn(2, 2, "/c")];
        let one = recovered(disk(1, logged.clone(), vec![]), Zxid::new(2, 2));
        let two = recovered(disk(2, logged, vec![]), Zxid::new(2, 2));
        let rebuilt = rebuild(&[one, two], Zxid::new(3, 0), wall());
        assert_eq!(zxids(&rebuilt), vec![Zxid::new(1, 1), Zxid::new(2, 1), Zxid::new(2, 2)]);
        assert!(rebuilt.violations.is_empty() && rebuilt.gaps.is_empty(), "{rebuilt:?}");
    }

    #[test]
    fn members_recovering_apart_under_a_fresh_epoch_are_a_violation() {
        let logged = vec![txn(1, 1, "/a"), txn(2, 1, "/b"), txn(2, 2, "/c")];
        let one = recovered(disk(1, logged.clone(), vec![]), Zxid::new(2, 2));
        let two = recovered(disk(2, logged, vec![]), Zxid::new(2, 1));
        let rebuilt = rebuild(&[one, two], Zxid::new(3, 0), wall());
        assert!(!rebuilt.violations.is_empty(), "{rebuilt:?}");
    }

    #[test]
    fn wall_times_round_up_and_follow_drift() {
        let map =
            WallMap { first: (SimTime(1_000), 5_000_000), last: (SimTime(2_001_000), 7_000_000) };
        assert_eq!(map.at(5_000), SimTime(1_999));
        assert_eq!(map.at(6_000), SimTime(1_001_999));
    }
}
