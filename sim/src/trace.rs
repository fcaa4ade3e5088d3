//! The event trace: one small record per happening, hashed as it is pushed, formatted only
//! when someone asks.
//!
//! A record is a `Copy` enum of ids and numbers (no strings, no frames), so tracing costs a
//! push and a few hash rounds per event. Operations, notifications and anomalies refer to the
//! [`History`] by index and are formatted from it. The rolling FNV-1a hash over every record
//! is the run's fingerprint: the same seed must give the same hash, which the determinism test
//! checks, and it is kept even when the records themselves are not.
//!
//! Formatted, a trace reads as aligned columns — time, actor, event:
//! ```text
//!     0.012345s  n0      input frame conn#3 45B
//!     0.012345s  n0      write #7 append 0x5
//!     0.020000s  c3      ok     #12 create /k1 c3-4 flags=0 -> ok zxid=0x5 path=/k1
//! ```

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use ensemble::core::ids::{ConnId, ServerId, SessionId};

use crate::history::{self, Entry, History, OpOutcome};
use crate::options::Options;
use crate::time::SimTime;
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
    hasher: Fnv64,
    count: u64,
}

impl Trace {
    /// A trace that keeps its records if `keep`, and hashes them always.
    pub fn new(keep: bool) -> Trace {
        Trace { records: Vec::new(), keep, hasher: Fnv64::new(), count: 0 }
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

    /// Writes the options header and every kept record as aligned text.
    pub fn format(
        &self,
        options: &Options,
        history: &History,
        out: &mut impl fmt::Write,
    ) -> fmt::Result {
        for line in options.to_string().lines() {
            writeln!(out, "# {line}")?;
        }
        let mut text = String::new();
        for record in &self.records {
            text.clear();
            let actor = describe(&record.event, history, &mut text)?;
            writeln!(out, "{:>14}  {:<6}  {}", record.at.to_string(), actor, text)?;
        }
        Ok(())
    }
}

/// Writes the event's text to `out` and returns its actor column (`n0`, `c3`, `sim`).
fn describe(event: &TraceEvent, history: &History, out: &mut String) -> Result<String, fmt::Error> {
    let node = |s: &ServerId| format!("n{}", s.0);
    let client = |c: &ClientId| format!("c{}", c.0);
    Ok(match event {
        TraceEvent::Phase(phase) => {
            write!(out, "=== phase {phase:?} ===")?;
            "sim".into()
        }
        TraceEvent::NodeStart { server, incarnation, zxid } => {
            write!(out, "start (life {incarnation}) at zxid {zxid:#x}")?;
            node(server)
        }
        TraceEvent::NodeCrash { server, kept, lost } => {
            write!(out, "CRASH: {lost} unsynced writes lost, {kept} kept")?;
            node(server)
        }
        TraceEvent::NodePause { server, ms } => {
            write!(out, "PAUSE for {ms} ms")?;
            node(server)
        }
        TraceEvent::NodeResume { server, inputs } => {
            write!(out, "resume with {inputs} queued inputs")?;
            node(server)
        }
        TraceEvent::ClockJump { server, forward_ms, wall_ms } => {
            write!(out, "CLOCK jumps +{forward_ms} ms, wall {wall_ms:+} ms")?;
            node(server)
        }
        TraceEvent::Input { server, input } => {
            match input {
                InputTrace::Tick => write!(out, "input tick")?,
                InputTrace::Connected(c) => write!(out, "input connected {c}")?,
                InputTrace::Frame(c, len) => write!(out, "input frame {c} {len}B")?,
                InputTrace::Closed(c) => write!(out, "input closed {c}")?,
                InputTrace::Persisted(id) => write!(out, "input persisted up_to=#{id}")?,
                InputTrace::Peer(from, name) => write!(out, "input {name} from n{}", from.0)?,
                InputTrace::LinkUp(peer) => write!(out, "input link up n{}", peer.0)?,
                InputTrace::LinkDown(peer) => write!(out, "input link DOWN n{}", peer.0)?,
            }
            node(server)
        }
        TraceEvent::Effect { server, effect } => {
            match effect {
                EffectTrace::Send(c, len) => write!(out, "send {c} {len}B")?,
                EffectTrace::Close(c) => write!(out, "close {c}")?,
                EffectTrace::Append(id, zxid) => write!(out, "write #{id} append {zxid:#x}")?,
                EffectTrace::Snapshot(id, zxid) => write!(out, "write #{id} snapshot {zxid:#x}")?,
                EffectTrace::Truncate(id, after) => {
                    write!(out, "write #{id} truncate after {after:#x}")?
                }
                EffectTrace::Epoch(id, epoch, accepted) => {
                    let which = if *accepted { "acceptedEpoch" } else { "currentEpoch" };
                    write!(out, "write #{id} {which} {epoch}")?
                }
                EffectTrace::Peer(to, name, sent) => {
                    let lost = if *sent { "" } else { " (link down: lost)" };
                    write!(out, "send {name} to n{}{lost}", to.0)?
                }
            }
            node(server)
        }
        TraceEvent::FsyncStart { server, up_to } => {
            write!(out, "fsync start up_to=#{up_to}")?;
            node(server)
        }
        TraceEvent::FsyncDone { server, up_to } => {
            write!(out, "fsync done up_to=#{up_to}")?;
            node(server)
        }
        TraceEvent::ConnOpen { client: c, server, conn } => {
            write!(out, "open {conn} to n{}", server.0)?;
            client(c)
        }
        TraceEvent::ConnReset { conn } => {
            write!(out, "RESET {conn}")?;
            "net".into()
        }
        TraceEvent::ConnClog { conn, ms } => {
            write!(out, "CLOG {conn} for {ms} ms")?;
            "net".into()
        }
        TraceEvent::ConnUnclog { conn } => {
            write!(out, "unclog {conn}")?;
            "net".into()
        }
        TraceEvent::LinkUp { a, b, generation } => {
            write!(out, "link n{}-n{} up (gen {generation})", a.0, b.0)?;
            "net".into()
        }
        TraceEvent::LinkReset { a, b } => {
            write!(out, "link n{}-n{} RESET", a.0, b.0)?;
            "net".into()
        }
        TraceEvent::Partition { a, b } => {
            write!(out, "PARTITION n{} | n{}", a.0, b.0)?;
            "net".into()
        }
        TraceEvent::PartitionHeal => {
            write!(out, "partitions healed")?;
            "net".into()
        }
        TraceEvent::PeerStall { from, to, ms } => {
            write!(out, "STALL link n{}->n{} for {ms} ms", from.0, to.0)?;
            "net".into()
        }
        TraceEvent::Buggify { server, site, power_loss, delay_us } => {
            let what = if *power_loss { "POWER LOSS" } else { "CRASH" };
            write!(out, "BUGGIFY {}: {what} in {delay_us} µs", site.name())?;
            node(server)
        }
        TraceEvent::Connect { client: c, conn, session, last_zxid } => {
            write!(out, "connect {conn} session={session} last_zxid={last_zxid:#x}")?;
            client(c)
        }
        TraceEvent::ClientClose { client: c, conn, why } => {
            write!(out, "close {conn} ({why:?})")?;
            client(c)
        }
        TraceEvent::History(index) => describe_entry(history, *index as usize, out)?,
    })
}

fn describe_entry(history: &History, index: usize, out: &mut String) -> Result<String, fmt::Error> {
    let Some((_, entry)) = history.entries.get(index) else {
        write!(out, "history entry {index} (missing)")?;
        return Ok("?".into());
    };
    let client = |c: ClientId| format!("c{}", c.0);
    Ok(match entry {
        Entry::Invoke(id) | Entry::Return(id) => {
            let op = history.op(*id);
            let request = history::describe_request(&op.request);
            if matches!(entry, Entry::Invoke(_)) {
                write!(out, "invoke #{} xid={} {request}", id.0, op.xid)?;
            } else {
                let tag = match op.outcome {
                    OpOutcome::Ok { .. } => "ok    ",
                    OpOutcome::Fail { .. } => "fail  ",
                    _ => "unkwn ",
                };
                write!(out, "{tag}#{} {request} -> {}", id.0, op.outcome)?;
            }
            client(op.client)
        }
        Entry::Notify(n) => {
            let n = &history.notifications[*n as usize];
            let name = history::event_name(n.event.event_type);
            write!(out, "watch  {name} {} zxid={:#x} on {}", n.event.path, n.zxid, n.conn)?;
            client(n.client)
        }
        Entry::Pong { client: c, zxid, .. } => {
            write!(out, "pong zxid={zxid:#x}")?;
            client(*c)
        }
        Entry::Connected { client: c, session, server, conn, created } => {
            let how = if *created { "new" } else { "resumed" };
            write!(out, "session {session} {how} on n{} {conn}", server.0)?;
            client(*c)
        }
        Entry::Disconnected { client: c, conn } => {
            write!(out, "disconnected {conn}")?;
            client(*c)
        }
        Entry::SessionExpired { client: c, session } => {
            write!(out, "SESSION EXPIRED {session}")?;
            client(*c)
        }
        Entry::Anomaly(a) => {
            let a = &history.anomalies[*a as usize];
            write!(out, "ANOMALY on {}: {:?}", a.conn, a.what)?;
            client(a.client)
        }
    })
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

    #[test]
    fn formatting_aligns_columns() {
        let mut trace = Trace::new(true);
        trace.push(
            SimTime(12_345),
            TraceEvent::Input { server: ServerId(0), input: InputTrace::Persisted(7) },
        );
        let mut text = String::new();
        trace.format(&Options::quiet(1), &History::new(), &mut text).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(last, "     0.012345s  n0      input persisted up_to=#7");
    }
}
