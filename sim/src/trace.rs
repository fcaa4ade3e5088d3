//! The event trace: one small record per happening, hashed as it is pushed, formatted only
//! when someone asks.
//!
//! A record is a `Copy` enum of ids and numbers (no strings, no frames), so tracing costs a
//! push and a few hash rounds per event. Operations, notifications and anomalies refer to the
//! [`History`] by index and are formatted from it. The rolling hash over every record
//! ([`RecordHasher`], a word at a time) is the run's fingerprint: the same seed must give the same hash, which the determinism test
//! checks, and it is kept even when the records themselves are not.
//!
//! Formatting is a separate layer: [`crate::tracefmt`] turns records into aligned text
//! (time, actor, role, event), [`crate::html`] into a standalone HTML timeline.

use std::fmt;
use std::hash::{Hash, Hasher};

use ensemble::core::ids::{ConnId, ServerId, SessionId};
use ensemble::core::report::Mode;

use crate::history::History;
use crate::options::Options;
use crate::time::SimTime;
use crate::tracefmt;
use crate::workload::ClientId;
use crate::Phase;

/// One traced happening.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceEvent {
    /// The run entered a phase.
    Phase(Phase),
    /// A node process started (fresh or recovered) with this last zxid.
    NodeStart {
        /// The node.
        server: ServerId,
        /// Its life number.
        incarnation: u32,
        /// The last zxid it recovered.
        zxid: u64,
    },
    /// A node crashed.
    NodeCrash {
        /// The node.
        server: ServerId,
        /// Unsynced writes that survived.
        kept: u32,
        /// Unsynced writes lost.
        lost: u32,
    },
    /// A node stopped processing.
    NodePause {
        /// The node.
        server: ServerId,
        /// For how long.
        ms: u64,
    },
    /// A paused node continues with the inputs that queued up.
    NodeResume {
        /// The node.
        server: ServerId,
        /// Inputs waiting.
        inputs: u32,
    },
    /// A node's clocks jumped.
    ClockJump {
        /// The node.
        server: ServerId,
        /// Forward jump of both clocks.
        forward_ms: u64,
        /// Extra wall-clock step (either sign).
        wall_ms: i64,
    },
    /// An input handed to a node.
    Input {
        /// The node.
        server: ServerId,
        /// What.
        input: InputTrace,
    },
    /// An effect a node asked for.
    Effect {
        /// The node.
        server: ServerId,
        /// What.
        effect: EffectTrace,
    },
    /// An fsync started.
    FsyncStart {
        /// The node.
        server: ServerId,
        /// Last write covered.
        up_to: u64,
    },
    /// An fsync completed.
    FsyncDone {
        /// The node.
        server: ServerId,
        /// Last write covered.
        up_to: u64,
    },
    /// A client opened a connection.
    ConnOpen {
        /// The client.
        client: ClientId,
        /// The server.
        server: ServerId,
        /// The connection.
        conn: ConnId,
    },
    /// A connection was reset (both ends will hear of it).
    ConnReset {
        /// The connection.
        conn: ConnId,
    },
    /// A connection stopped moving bytes.
    ConnClog {
        /// The connection.
        conn: ConnId,
        /// For how long.
        ms: u64,
    },
    /// A connection flows again.
    ConnUnclog {
        /// The connection.
        conn: ConnId,
    },
    /// A client sent a ConnectRequest.
    Connect {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// The session to resume (0 = new).
        session: SessionId,
        /// The client's last seen zxid.
        last_zxid: i64,
    },
    /// A client gave up on its connection.
    ClientClose {
        /// The client.
        client: ClientId,
        /// The connection.
        conn: ConnId,
        /// Why.
        why: CloseReason,
    },
    /// A peer link was established.
    LinkUp {
        /// One end.
        a: ServerId,
        /// The other.
        b: ServerId,
        /// Its generation.
        generation: u64,
    },
    /// A peer link broke (both ends will hear of it).
    LinkReset {
        /// One end.
        a: ServerId,
        /// The other.
        b: ServerId,
    },
    /// A partition now separates two servers.
    Partition {
        /// One side.
        a: ServerId,
        /// The other.
        b: ServerId,
    },
    /// Every partition healed.
    PartitionHeal,
    /// One direction of a peer link stalls.
    PeerStall {
        /// The sending end.
        from: ServerId,
        /// The receiving end.
        to: ServerId,
        /// For how long.
        ms: u64,
    },
    /// A fault point fired: a crash of the node (or a power loss) will land after the delay.
    Buggify {
        /// The node that reached the site.
        server: ServerId,
        /// The site.
        site: crate::faults::Site,
        /// Every node goes down, not only this one.
        power_loss: bool,
        /// When the crash lands, after the step.
        delay_us: u64,
    },
    /// A history entry (operation invoked or returned, notification, session change, ...).
    History(u32),
    /// A member's role changed (traced after the step that changed it).
    Role {
        /// The member.
        server: ServerId,
        /// Its new role.
        role: RoleTrace,
    },
}

/// A member's role: its mode and, for a leader or learner, whether it serves yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleTrace {
    /// Electing a leader.
    Looking,
    /// Elected leader, syncing its learners; not established yet.
    Leading,
    /// Established leader.
    Leader,
    /// Follower, syncing with its leader.
    Following,
    /// Serving follower.
    Follower,
    /// Observer, syncing with its leader.
    Observing,
    /// Serving observer.
    Observer,
    /// A standalone server.
    Standalone,
}

impl RoleTrace {
    /// The role of a node in `mode`, serving or not.
    pub fn of(mode: Mode, serving: bool) -> RoleTrace {
        match (mode, serving) {
            (Mode::Looking, _) => RoleTrace::Looking,
            (Mode::Leader, false) => RoleTrace::Leading,
            (Mode::Leader, true) => RoleTrace::Leader,
            (Mode::Follower, false) => RoleTrace::Following,
            (Mode::Follower, true) => RoleTrace::Follower,
            (Mode::Observer, false) => RoleTrace::Observing,
            (Mode::Observer, true) => RoleTrace::Observer,
            (Mode::Standalone, _) => RoleTrace::Standalone,
        }
    }

    /// The short name the trace prints: a trailing `~` means "not serving yet".
    pub fn name(self) -> &'static str {
        match self {
            RoleTrace::Looking => "looking",
            RoleTrace::Leading => "leader~",
            RoleTrace::Leader => "leader",
            RoleTrace::Following => "follower~",
            RoleTrace::Follower => "follower",
            RoleTrace::Observing => "observer~",
            RoleTrace::Observer => "observer",
            RoleTrace::Standalone => "standalone",
        }
    }
}

/// What a node was handed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputTrace {
    /// `Input::Tick`.
    Tick,
    /// `Input::ClientConnected`.
    Connected(ConnId),
    /// `Input::ClientFrame` with the payload length.
    Frame(ConnId, u32),
    /// `Input::ClientClosed`.
    Closed(ConnId),
    /// `Input::Persisted`.
    Persisted(u64),
    /// `Input::PeerMessage` (sender, message name).
    Peer(ServerId, &'static str),
    /// `Input::PeerLinkUp`.
    LinkUp(ServerId),
    /// `Input::PeerLinkDown`.
    LinkDown(ServerId),
}

/// What a node asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EffectTrace {
    /// `Effect::SendClient` with the frame length.
    Send(ConnId, u32),
    /// `Effect::CloseClient`.
    Close(ConnId),
    /// `DurableWrite::Append` (write id, zxid).
    Append(u64, u64),
    /// `DurableWrite::Snapshot` (write id, zxid).
    Snapshot(u64, u64),
    /// `DurableWrite::Truncate` (write id, after).
    Truncate(u64, u64),
    /// `DurableWrite::AcceptedEpoch` / `CurrentEpoch` (write id, epoch, accepted?).
    Epoch(u64, u32, bool),
    /// `Effect::SendPeer` (receiver, message name, whether the link took it).
    Peer(ServerId, &'static str, bool),
}

/// Why a client closed its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Nothing heard for 2/3 of the session timeout.
    ReadTimeout,
    /// No ConnectResponse in time.
    HandshakeTimeout,
    /// The fault injector told it to.
    Fault,
    /// The server said the session is gone.
    SessionExpired,
    /// The client saw a protocol anomaly.
    Anomaly,
    /// The run is over.
    Shutdown,
}

/// A traced happening and its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// When.
    pub at: SimTime,
    /// What.
    pub event: TraceEvent,
}

/// The trace of a run.
pub struct Trace {
    records: Vec<TraceRecord>,
    keep: bool,
    hasher: RecordHasher,
    count: u64,
}

impl Trace {
    /// A trace that keeps its records if `keep`, and hashes them always.
    pub fn new(keep: bool) -> Trace {
        Trace { records: Vec::new(), keep, hasher: RecordHasher::default(), count: 0 }
    }

    /// Appends a record.
    pub fn push(&mut self, at: SimTime, event: TraceEvent) {
        at.0.hash(&mut self.hasher);
        event.hash(&mut self.hasher);
        self.count += 1;
        if self.keep {
            self.records.push(TraceRecord { at, event });
        }
    }

    /// The rolling hash of every record so far.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// Records pushed (kept or not).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The kept records.
    pub fn records(&self) -> &[TraceRecord] {
        &self.records
    }

    /// Writes the options header and every kept record as aligned text (see
    /// [`crate::tracefmt`], the formatting layer).
    pub fn format(
        &self,
        options: &Options,
        history: &History,
        out: &mut impl fmt::Write,
    ) -> fmt::Result {
        tracefmt::write_text(options, history, &self.records, out)
    }
}

/// The trace fingerprint's hasher: a word at a time (a record is a handful of integers, so
/// FNV's byte-at-a-time rounds cost more than the rest of tracing), each word folded in by a
/// 64×64→128-bit multiply whose halves are xored, which spreads every input bit over the state.
/// Stable across platforms and releases (unlike `DefaultHasher`); not for adversarial input.
#[derive(Clone, Copy, Debug)]
pub struct RecordHasher(u64);

impl RecordHasher {
    const SEED: u64 = 0xcbf2_9ce4_8422_2325;
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(Self::MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Default for RecordHasher {
    fn default() -> Self {
        RecordHasher(Self::SEED)
    }
}

impl Hasher for RecordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("chunks_exact(8)")));
        }
        let tail = words.remainder();
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        // The tail's length goes in too, so "ab" and "ab\0" differ.
        self.mix(u64::from_le_bytes(last) ^ ((tail.len() as u64) << 56));
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_i64(&mut self, value: i64) {
        self.mix(value as u64);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn write_isize(&mut self, value: isize) {
        self.mix(value as u64);
    }
}

/// FNV-1a, 64 bit: tiny, fast on short inputs, and stable (unlike `DefaultHasher`).
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A fresh hasher.
    pub fn new() -> Fnv64 {
        Fnv64(Self::OFFSET)
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= *byte as u64;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        let mut h = Fnv64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn the_hash_covers_records_even_when_they_are_not_kept() {
        let mut kept = Trace::new(true);
        let mut dropped = Trace::new(false);
        for trace in [&mut kept, &mut dropped] {
            trace.push(SimTime(1), TraceEvent::Phase(Phase::Safety));
            trace.push(SimTime(2), TraceEvent::ConnReset { conn: ConnId(3) });
        }
        assert_eq!(kept.hash(), dropped.hash());
        assert_eq!(kept.records().len(), 2);
        assert!(dropped.records().is_empty());
        let mut other = Trace::new(false);
        other.push(SimTime(1), TraceEvent::Phase(Phase::Safety));
        other.push(SimTime(2), TraceEvent::ConnReset { conn: ConnId(4) });
        assert_ne!(other.hash(), kept.hash());
    }
}
