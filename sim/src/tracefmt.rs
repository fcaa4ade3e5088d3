//! The text layer of the trace: records become aligned lines of time, actor, role and event.
//!
//! Recording (`trace.rs`) stays small and fast; everything about presentation lives here and
//! in [`crate::html`]. A [`Lines`] walks the records in order and keeps what a line needs that a
//! record does not carry: each member's current role (from the `Role` records, `down` after a
//! crash) and the server each client's connection is on.
//!
//! ```text
//!    0.615122s  c5    @n3         invoke #0 xid=1 create /k0/c1 c5-1 flags=0
//!    0.615964s  n3    leader      input frame conn#10 57B
//!    0.615964s  n3    leader      send PROPOSAL to n2
//!    0.619148s  n2    follower    input PROPOSAL from n3
//!    0.625001s  c5    @n3         ok    #0 create /k0/c1 c5-1 flags=0 -> ok zxid=0x100000002
//! ```
//!
//! The role column shows a member's role (`looking`, `leader`, `follower`, `observer`,
//! `standalone`; a trailing `~` means elected or joined but not serving yet; `down` after a
//! crash), and for a client `@nN`, the server its connection is on.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use ensemble::core::ids::{ConnId, ServerId};

use crate::history::{self, Entry, History, OpOutcome};
use crate::options::Options;
use crate::simulator::Simulator;
use crate::time::SimTime;
use crate::trace::{EffectTrace, InputTrace, RoleTrace, TraceEvent, TraceRecord};
use crate::workload::ClientId;

/// Who a line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Actor {
    /// A server.
    Node(ServerId),
    /// A client.
    Client(ClientId),
    /// The network (connections, links, partitions).
    Net,
    /// The simulator (phases).
    Sim,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Padding is applied by the caller through `pad`, so the name is built first.
        let name = match self {
            Actor::Node(id) => format!("n{}", id.0),
            Actor::Client(id) => format!("c{}", id.0),
            Actor::Net => "net".into(),
            Actor::Sim => "sim".into(),
        };
        f.pad(&name)
    }
}

/// What the role column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleCell {
    /// Nothing (network and simulator lines; a member before its first step).
    Blank,
    /// A member that crashed and has not restarted.
    Down,
    /// A member's role.
    Role(RoleTrace),
    /// The server a client's connection is on.
    At(ServerId),
}

impl fmt::Display for RoleCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleCell::Blank => f.pad(""),
            RoleCell::Down => f.pad("down"),
            RoleCell::Role(role) => f.pad(role.name()),
            RoleCell::At(server) => f.pad(&format!("@n{}", server.0)),
        }
    }
}

/// One formatted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// When.
    pub at: SimTime,
    /// Who.
    pub actor: Actor,
    /// The actor's role (after the record, for a role change or a crash).
    pub role: RoleCell,
    /// What happened.
    pub text: String,
}

impl fmt::Display for Line {
    /// The aligned columns: time, actor, role, event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>12}  {:<4}  {:<10}  {}",
            self.at.to_string(),
            self.actor,
            self.role,
            self.text
        )
    }
}

/// A part of a run, in true time (both ends included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first instant shown.
    pub from: SimTime,
    /// The last instant shown.
    pub to: SimTime,
}

impl Window {
    /// The whole run.
    pub const ALL: Window = Window { from: SimTime::ZERO, to: SimTime(u64::MAX) };

    /// From `from_ms` to `to_ms` (open ends when absent).
    pub fn ms(from_ms: Option<u64>, to_ms: Option<u64>) -> Window {
        Window {
            from: from_ms.map_or(SimTime::ZERO, SimTime::from_ms),
            to: to_ms.map_or(SimTime(u64::MAX), SimTime::from_ms),
        }
    }

    /// Whether `at` is inside.
    pub fn contains(&self, at: SimTime) -> bool {
        self.from <= at && at <= self.to
    }
}

/// Writes the options header and every record in `window` as aligned lines.
pub fn write_text_window(
    options: &Options,
    history: &History,
    records: &[TraceRecord],
    window: Window,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    for line in options.to_string().lines() {
        writeln!(out, "# {line}")?;
    }
    let mut lines = Lines::new(history);
    for record in records {
        // Every record goes through `Lines` so roles are right at the window's start.
        let line = lines.line(record);
        if window.contains(record.at) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Writes the options header and every record as aligned lines.
pub fn write_text(
    options: &Options,
    history: &History,
    records: &[TraceRecord],
    out: &mut impl fmt::Write,
) -> fmt::Result {
    write_text_window(options, history, records, Window::ALL, out)
}

impl Simulator {
    /// The trace as text (options header, then one aligned line per kept record in `window`).
    pub fn trace_text_window(&self, window: Window) -> String {
        let mut text = String::new();
        write_text_window(self.options(), self.history(), self.trace_records(), window, &mut text)
            .expect("writing to a String");
        text
    }

    /// The kept trace records.
    pub fn trace_records(&self) -> &[TraceRecord] {
        self.trace.records()
    }
}

/// Turns records into [`Line`]s, in order, keeping the roles and connections they imply.
pub struct Lines<'a> {
    history: &'a History,
    roles: BTreeMap<ServerId, RoleCell>,
    clients: BTreeMap<ClientId, ServerId>,
}

impl<'a> Lines<'a> {
    /// A walk over the records of a run with this history.
    pub fn new(history: &'a History) -> Lines<'a> {
        Lines { history, roles: BTreeMap::new(), clients: BTreeMap::new() }
    }

    /// The current role column of `server`.
    pub fn role(&self, server: ServerId) -> RoleCell {
        self.roles.get(&server).copied().unwrap_or(RoleCell::Blank)
    }

    /// The line of the next record.
    pub fn line(&mut self, record: &TraceRecord) -> Line {
        let mut text = String::new();
        let actor = self.describe(&record.event, &mut text);
        let role = match actor {
            Actor::Node(server) => self.role(server),
            Actor::Client(client) => {
                self.clients.get(&client).map_or(RoleCell::Blank, |s| RoleCell::At(*s))
            }
            Actor::Net | Actor::Sim => RoleCell::Blank,
        };
        Line { at: record.at, actor, role, text }
    }

    /// Writes the event's text to `out`, updates the roles, and returns the actor.
    fn describe(&mut self, event: &TraceEvent, out: &mut String) -> Actor {
        // Writing to a String cannot fail.
        let _ = self.describe_into(event, out);
        match event {
            TraceEvent::History(index) => self.entry_actor(*index as usize),
            TraceEvent::Phase(_) => Actor::Sim,
            TraceEvent::ConnReset { .. }
            | TraceEvent::ConnClog { .. }
            | TraceEvent::ConnUnclog { .. }
            | TraceEvent::LinkUp { .. }
            | TraceEvent::LinkReset { .. }
            | TraceEvent::Partition { .. }
            | TraceEvent::PartitionHeal
            | TraceEvent::PeerStall { .. } => Actor::Net,
            TraceEvent::ConnOpen { client, .. }
            | TraceEvent::Connect { client, .. }
            | TraceEvent::ClientClose { client, .. } => Actor::Client(*client),
            TraceEvent::NodeStart { server, .. }
            | TraceEvent::NodeCrash { server, .. }
            | TraceEvent::NodePause { server, .. }
            | TraceEvent::NodeResume { server, .. }
            | TraceEvent::ClockJump { server, .. }
            | TraceEvent::Input { server, .. }
            | TraceEvent::Effect { server, .. }
            | TraceEvent::FsyncStart { server, .. }
            | TraceEvent::FsyncDone { server, .. }
            | TraceEvent::Buggify { server, .. }
            | TraceEvent::Role { server, .. } => Actor::Node(*server),
        }
    }

    fn describe_into(&mut self, event: &TraceEvent, out: &mut String) -> fmt::Result {
        match event {
            TraceEvent::Phase(phase) => write!(out, "=== phase {phase:?} ==="),
            TraceEvent::NodeStart { server, incarnation, zxid } => {
                self.roles.insert(*server, RoleCell::Blank);
                write!(out, "start (life {incarnation}) at zxid {zxid:#x}")
            }
            TraceEvent::NodeCrash { server, kept, lost } => {
                self.roles.insert(*server, RoleCell::Down);
                write!(out, "CRASH: {lost} unsynced writes lost, {kept} kept")
            }
            TraceEvent::NodePause { ms, .. } => write!(out, "PAUSE for {ms} ms"),
            TraceEvent::NodeResume { inputs, .. } => {
                write!(out, "resume with {inputs} queued inputs")
            }
            TraceEvent::ClockJump { forward_ms, wall_ms, .. } => {
                write!(out, "CLOCK jumps +{forward_ms} ms, wall {wall_ms:+} ms")
            }
            TraceEvent::Role { server, role } => {
                let before = self.role(*server);
                self.roles.insert(*server, RoleCell::Role(*role));
                match before {
                    RoleCell::Role(old) => write!(out, "role {} -> {}", old.name(), role.name()),
                    _ => write!(out, "role {}", role.name()),
                }
            }
            TraceEvent::Input { input, .. } => match input {
                InputTrace::Tick => write!(out, "input tick"),
                InputTrace::Connected(c) => write!(out, "input connected {c}"),
                InputTrace::Frame(c, len) => write!(out, "input frame {c} {len}B"),
                InputTrace::Closed(c) => write!(out, "input closed {c}"),
                InputTrace::Persisted(id) => write!(out, "input persisted up_to=#{id}"),
                InputTrace::Peer(from, name) => write!(out, "input {name} from n{}", from.0),
                InputTrace::LinkUp(peer) => write!(out, "input link up n{}", peer.0),
                InputTrace::LinkDown(peer) => write!(out, "input link DOWN n{}", peer.0),
            },
            TraceEvent::Effect { effect, .. } => match effect {
                EffectTrace::Send(c, len) => write!(out, "send {c} {len}B"),
                EffectTrace::Close(c) => write!(out, "close {c}"),
                EffectTrace::Append(id, zxid) => write!(out, "write #{id} append {zxid:#x}"),
                EffectTrace::Snapshot(id, zxid) => write!(out, "write #{id} snapshot {zxid:#x}"),
                EffectTrace::Truncate(id, after) => {
                    write!(out, "write #{id} truncate after {after:#x}")
                }
                EffectTrace::Epoch(id, epoch, accepted) => {
                    let which = if *accepted { "acceptedEpoch" } else { "currentEpoch" };
                    write!(out, "write #{id} {which} {epoch}")
                }
                EffectTrace::Peer(to, name, sent) => {
                    let lost = if *sent { "" } else { " (link down: lost)" };
                    write!(out, "send {name} to n{}{lost}", to.0)
                }
            },
            TraceEvent::FsyncStart { up_to, .. } => write!(out, "fsync start up_to=#{up_to}"),
            TraceEvent::FsyncDone { up_to, .. } => write!(out, "fsync done up_to=#{up_to}"),
            TraceEvent::ConnOpen { client, server, conn } => {
                self.clients.insert(*client, *server);
                write!(out, "open {conn} to n{}", server.0)
            }
            TraceEvent::ConnReset { conn } => write!(out, "RESET {conn}"),
            TraceEvent::ConnClog { conn, ms } => write!(out, "CLOG {conn} for {ms} ms"),
            TraceEvent::ConnUnclog { conn } => write!(out, "unclog {conn}"),
            TraceEvent::LinkUp { a, b, generation } => {
                write!(out, "link n{}-n{} up (gen {generation})", a.0, b.0)
            }
            TraceEvent::LinkReset { a, b } => write!(out, "link n{}-n{} RESET", a.0, b.0),
            TraceEvent::Partition { a, b } => write!(out, "PARTITION n{} | n{}", a.0, b.0),
            TraceEvent::PartitionHeal => write!(out, "partitions healed"),
            TraceEvent::PeerStall { from, to, ms } => {
                write!(out, "STALL link n{}->n{} for {ms} ms", from.0, to.0)
            }
            TraceEvent::Buggify { site, power_loss, delay_us, .. } => {
                let what = if *power_loss { "POWER LOSS" } else { "CRASH" };
                write!(out, "BUGGIFY {}: {what} in {delay_us} µs", site.name())
            }
            TraceEvent::Connect { conn, session, last_zxid, .. } => {
                write!(out, "connect {conn} session={session} last_zxid={last_zxid:#x}")
            }
            TraceEvent::ClientClose { conn, why, .. } => write!(out, "close {conn} ({why:?})"),
            TraceEvent::History(index) => self.describe_entry(*index as usize, out),
        }
    }

    fn entry_actor(&self, index: usize) -> Actor {
        let Some((_, entry)) = self.history.entries.get(index) else { return Actor::Sim };
        Actor::Client(match entry {
            Entry::Invoke(id) | Entry::Return(id) => self.history.op(*id).client,
            Entry::Notify(n) => self.history.notifications[*n as usize].client,
            Entry::Pong { client, .. }
            | Entry::Connected { client, .. }
            | Entry::Disconnected { client, .. }
            | Entry::SessionExpired { client, .. } => *client,
            Entry::Anomaly(a) => self.history.anomalies[*a as usize].client,
            Entry::Recipe(r) => self.history.recipes[*r as usize].client,
        })
    }

    fn describe_entry(&mut self, index: usize, out: &mut String) -> fmt::Result {
        let history = self.history;
        let Some((_, entry)) = history.entries.get(index) else {
            return write!(out, "history entry {index} (missing)");
        };
        match entry {
            Entry::Invoke(id) | Entry::Return(id) => {
                let op = history.op(*id);
                let request = history::describe_request(&op.request);
                if matches!(entry, Entry::Invoke(_)) {
                    write!(out, "invoke #{} xid={} {request}", id.0, op.xid)
                } else {
                    let tag = match op.outcome {
                        OpOutcome::Ok { .. } => "ok   ",
                        OpOutcome::Fail { .. } => "fail ",
                        _ => "unkwn",
                    };
                    write!(out, "{tag} #{} {request} -> {}", id.0, op.outcome)
                }
            }
            Entry::Notify(n) => {
                let n = &history.notifications[*n as usize];
                let name = history::event_name(n.event.event_type);
                write!(out, "watch {name} {} zxid={:#x} on {}", n.event.path, n.zxid, n.conn)
            }
            Entry::Pong { zxid, .. } => write!(out, "pong zxid={zxid:#x}"),
            Entry::Connected { client, session, server, conn, created } => {
                self.clients.insert(*client, *server);
                let how = if *created { "new" } else { "resumed" };
                write!(out, "session {session} {how} on n{} {conn}", server.0)
            }
            Entry::Disconnected { client, conn } => {
                self.clients.remove(client);
                write!(out, "disconnected {conn}")
            }
            Entry::SessionExpired { session, .. } => write!(out, "SESSION EXPIRED {session}"),
            Entry::Anomaly(a) => {
                let a = &history.anomalies[*a as usize];
                write!(out, "ANOMALY on {}: {:?}", a.conn, a.what)
            }
            Entry::Recipe(r) => {
                let note = &history.recipes[*r as usize];
                write!(out, "{} {} (session {})", note.role, note.event, note.session)
            }
        }
    }
}

/// The connection of a client-side record, if it names one.
pub fn record_conn(event: &TraceEvent, history: &History) -> Option<ConnId> {
    match event {
        TraceEvent::ConnOpen { conn, .. }
        | TraceEvent::Connect { conn, .. }
        | TraceEvent::ClientClose { conn, .. } => Some(*conn),
        TraceEvent::History(index) => match history.entries.get(*index as usize)? {
            (_, Entry::Invoke(id) | Entry::Return(id)) => Some(history.op(*id).conn),
            (_, Entry::Pong { conn, .. } | Entry::Connected { conn, .. }) => Some(*conn),
            (_, Entry::Disconnected { conn, .. }) => Some(*conn),
            (_, Entry::Notify(n)) => Some(history.notifications[*n as usize].conn),
            (_, Entry::Anomaly(a)) => Some(history.anomalies[*a as usize].conn),
            (_, Entry::SessionExpired { .. } | Entry::Recipe(_)) => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;
    use crate::Phase;
    use ensemble::core::report::Mode;

    fn text_of(records: &[(u64, TraceEvent)]) -> Vec<String> {
        let mut trace = Trace::new(true);
        for (at, event) in records {
            trace.push(SimTime(*at), *event);
        }
        let mut text = String::new();
        trace.format(&Options::quiet(1), &History::new(), &mut text).expect("a String");
        text.lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect()
    }

    #[test]
    fn lines_have_aligned_columns_of_time_actor_role_and_event() {
        let n1 = ServerId(1);
        let lines = text_of(&[
            (0, TraceEvent::Phase(Phase::Safety)),
            (5, TraceEvent::NodeStart { server: n1, incarnation: 0, zxid: 0 }),
            (5, TraceEvent::Role { server: n1, role: RoleTrace::of(Mode::Looking, false) }),
            (12_345, TraceEvent::Input { server: n1, input: InputTrace::Persisted(7) }),
            (12_346, TraceEvent::Role { server: n1, role: RoleTrace::of(Mode::Leader, true) }),
            (20_000, TraceEvent::NodeCrash { server: n1, kept: 0, lost: 2 }),
            (1_020_000, TraceEvent::ConnOpen { client: ClientId(3), server: n1, conn: ConnId(4) }),
        ]);
        assert_eq!(
            lines,
            [
                "   0.000000s  sim               === phase Safety ===",
                "   0.000005s  n1                start (life 0) at zxid 0x0",
                "   0.000005s  n1    looking     role looking",
                "   0.012345s  n1    looking     input persisted up_to=#7",
                "   0.012346s  n1    leader      role looking -> leader",
                "   0.020000s  n1    down        CRASH: 2 unsynced writes lost, 0 kept",
                "   1.020000s  c3    @n1         open conn#4 to n1",
            ]
        );
        let event_column = |l: &String| l.char_indices().nth(32).map(|(i, _)| i);
        let starts: Vec<_> = lines.iter().map(event_column).collect();
        assert!(starts.iter().all(|s| *s == starts[0]), "{lines:#?}");
    }

    #[test]
    fn a_window_keeps_the_roles_of_earlier_records() {
        let n2 = ServerId(2);
        let mut trace = Trace::new(true);
        trace.push(SimTime(1), TraceEvent::Role { server: n2, role: RoleTrace::Follower });
        trace.push(SimTime::from_ms(5), TraceEvent::Input { server: n2, input: InputTrace::Tick });
        let mut text = String::new();
        let window = Window::ms(Some(2), None);
        write_text_window(&Options::quiet(1), &History::new(), trace.records(), window, &mut text)
            .expect("a String");
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body, ["   0.005000s  n2    follower    input tick"]);
    }
}
