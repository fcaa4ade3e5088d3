//! A standalone HTML timeline of a run (`replay --html out.html`): one lane per member and one
//! for the clients, time flowing left to right; roles as coloured bands, peer messages as
//! arrows from the sender's lane at the send to the receiver's lane when it took the message,
//! client requests and replies as arrows between the client lane and the server, faults
//! (crash, restart, pause, clock jump, wall step, partition, clog, reset) marked, and the
//! formatted trace lines of the visible window underneath.
//!
//! The page needs nothing outside itself: the data is one JSON block, drawn as SVG by a small
//! inline script. A full run is large (10^5–10^6 records), so the page draws only a time window
//! (an overview strip selects it, the wheel zooms, the arrows pan) and caps the shapes it draws;
//! `--from-ms/--to-ms` cut the data itself down before it is written.
//!
//! Matching sends to receipts: a peer link is FIFO and loses messages only when it breaks, so
//! the k-th message taken from `a` by `b` is the oldest one `a` sent to `b` that is still in
//! flight with that name, and a link reset drops what is in flight. Client requests are matched
//! to the next frame the server took on that connection after the invocation, and replies to
//! the last frame the server sent on it before the client saw the reply; pings are not traced,
//! so a client arrow may be off by one ping (never by more than a message delay).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};

use ensemble::core::ids::{ConnId, ServerId};
use ensemble::core::zab::PeerRole;

use crate::history::{self, Entry, History, OpOutcome};
use crate::options::Options;
use crate::simulator::Simulator;
use crate::time::SimTime;
use crate::trace::{EffectTrace, InputTrace, TraceEvent, TraceRecord};
use crate::tracefmt::{Lines, Window};

/// What the page says about the run besides its trace.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// One line: verdict, time, events.
    pub verdict: String,
    /// The violations, one per line.
    pub violations: Vec<String>,
}

/// Writes the HTML page of a run's kept `records` within `window`.
pub fn write_html(
    options: &Options,
    history: &History,
    records: &[TraceRecord],
    window: Window,
    summary: &Summary,
    out: &mut impl fmt::Write,
) -> fmt::Result {
    let data = Timeline::build(options, history, records, window);
    let mut json = String::new();
    data.write_json(options, summary, &mut json)?;
    let title = format!("ensemble-sim seed {:#x}", options.seed);
    let page = TEMPLATE
        .replace("{{TITLE}}", &escape_html(&title))
        .replace("{{DATA}}", &json.replace("</", "<\\/"));
    out.write_str(&page)
}

impl Simulator {
    /// The HTML timeline of the run so far (kept records only) within `window`.
    pub fn trace_html(&self, window: Window, summary: &Summary) -> String {
        let mut page = String::new();
        write_html(
            self.options(),
            self.history(),
            self.trace_records(),
            window,
            summary,
            &mut page,
        )
        .expect("writing to a String");
        page
    }
}

/// A peer message or client frame drawn as an arrow.
struct Arrow {
    from: (SimTime, usize),
    to: (SimTime, usize),
    label: u32,
    /// For a client request or reply: the index of its operation in `Timeline::ops`.
    op: Option<usize>,
}

/// A trace line, its columns apart so the page can share the repeated ones.
struct TextLine {
    at: SimTime,
    actor: u32,
    role: u32,
    text: String,
}

/// A role band of one lane.
struct Band {
    lane: usize,
    from: SimTime,
    to: SimTime,
    role: &'static str,
}

/// A fault or notable moment on a lane, possibly lasting.
struct Mark {
    at: SimTime,
    lane: usize,
    kind: &'static str,
    until: Option<SimTime>,
    text: String,
}

/// A client operation: invoke and return on the client lane.
struct Op {
    invoked: SimTime,
    returned: Option<SimTime>,
    outcome: &'static str,
    text: String,
}

/// Everything the page draws, already cut to the window.
struct Timeline {
    lanes: Vec<String>,
    start: SimTime,
    end: SimTime,
    phases: Vec<(SimTime, String)>,
    bands: Vec<Band>,
    marks: Vec<Mark>,
    arrows: Vec<Arrow>,
    labels: Vec<String>,
    ops: Vec<Op>,
    /// Actor and role column values, indexed by `TextLine::actor` / `role`.
    columns: Vec<String>,
    lines: Vec<TextLine>,
}

/// Per-connection frame times at the server, for matching client arrows.
#[derive(Default)]
struct ConnFrames {
    server: Option<ServerId>,
    taken: Vec<SimTime>,
    sent: Vec<SimTime>,
}

impl Timeline {
    fn build(
        options: &Options,
        history: &History,
        records: &[TraceRecord],
        window: Window,
    ) -> Timeline {
        let members = options.members();
        let lane_of: BTreeMap<ServerId, usize> =
            members.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
        let client_lane = members.len();
        let mut lanes: Vec<String> = members
            .iter()
            .map(|(id, role)| match role {
                _ if members.len() == 1 => format!("n{id} standalone"),
                PeerRole::Participant => format!("n{id} voter"),
                PeerRole::Observer => format!("n{id} observer"),
            })
            .collect();
        lanes.push("clients".into());
        let in_window = |at: SimTime| window.contains(at);
        let first = records.iter().map(|r| r.at).find(|at| in_window(*at));
        let last = records.iter().rev().map(|r| r.at).find(|at| in_window(*at));
        let (start, end) = (first.unwrap_or(SimTime::ZERO), last.unwrap_or(SimTime::ZERO));
        let mut t = Timeline {
            lanes,
            start,
            end,
            phases: Vec::new(),
            bands: Vec::new(),
            marks: Vec::new(),
            arrows: Vec::new(),
            labels: Vec::new(),
            ops: Vec::new(),
            columns: Vec::new(),
            lines: Vec::new(),
        };
        let mut column_ids: BTreeMap<String, u32> = BTreeMap::new();
        let mut column = |t: &mut Timeline, value: String| -> u32 {
            *column_ids.entry(value).or_insert_with_key(|value| {
                t.columns.push(value.clone());
                t.columns.len() as u32 - 1
            })
        };
        let mut label_ids: BTreeMap<String, u32> = BTreeMap::new();
        let mut label = |name: &str| -> u32 {
            let next = label_ids.len() as u32;
            *label_ids.entry(name.to_string()).or_insert(next)
        };
        let request_label = label("request");
        let reply_label = label("reply");

        let mut roles: BTreeMap<usize, (SimTime, &'static str)> = BTreeMap::new();
        let mut in_flight: BTreeMap<(ServerId, ServerId), VecDeque<(SimTime, &'static str)>> =
            BTreeMap::new();
        let mut conns: BTreeMap<ConnId, ConnFrames> = BTreeMap::new();
        let mut partition_since: Option<SimTime> = None;
        let mut partitioned: BTreeMap<usize, Vec<ServerId>> = BTreeMap::new();
        let mut lines = Lines::new(history);
        let mut band = |t: &mut Timeline, lane: usize, to: SimTime, next: Option<&'static str>| {
            let now = next.map(|role| (to, role));
            let before = match now {
                Some(now) => roles.insert(lane, now),
                None => roles.remove(&lane),
            };
            if let Some((from, role)) = before {
                if from <= window.to && to >= window.from && from < to {
                    t.bands.push(Band { lane, from, to, role });
                }
            }
        };

        for record in records {
            let at = record.at;
            let line = lines.line(record);
            let shown = in_window(at);
            if shown {
                let actor = column(&mut t, line.actor.to_string());
                let role = column(&mut t, line.role.to_string());
                t.lines.push(TextLine { at, actor, role, text: line.text });
            }
            let mark = |t: &mut Timeline,
                        lane: usize,
                        kind: &'static str,
                        until: Option<SimTime>,
                        text: String| {
                let visible = shown || until.is_some_and(|u| u >= window.from && at <= window.to);
                if visible {
                    t.marks.push(Mark { at, lane, kind, until, text });
                }
            };
            match &record.event {
                TraceEvent::Phase(phase) if shown => t.phases.push((at, format!("{phase:?}"))),
                TraceEvent::Role { server, role } => {
                    if let Some(&lane) = lane_of.get(server) {
                        band(&mut t, lane, at, Some(role.name()));
                    }
                }
                TraceEvent::NodeStart { server, incarnation, zxid } => {
                    if let Some(&lane) = lane_of.get(server) {
                        band(&mut t, lane, at, None);
                        if *incarnation > 0 {
                            let text =
                                format!("n{server} restarts (life {incarnation}) at {zxid:#x}");
                            mark(&mut t, lane, "restart", None, text);
                        }
                    }
                }
                TraceEvent::NodeCrash { server, kept, lost } => {
                    if let Some(&lane) = lane_of.get(server) {
                        band(&mut t, lane, at, Some("down"));
                        let text =
                            format!("n{server} CRASH: {lost} unsynced writes lost, {kept} kept");
                        mark(&mut t, lane, "crash", None, text);
                    }
                    for ((a, b), queue) in in_flight.iter_mut() {
                        if a == server || b == server {
                            queue.clear();
                        }
                    }
                }
                TraceEvent::NodePause { server, ms } => {
                    if let Some(&lane) = lane_of.get(server) {
                        let until = Some(at.plus_ms(*ms));
                        mark(&mut t, lane, "pause", until, format!("n{server} PAUSE for {ms} ms"));
                    }
                }
                TraceEvent::ClockJump { server, forward_ms, wall_ms } => {
                    if let Some(&lane) = lane_of.get(server) {
                        let (kind, text) = if *forward_ms > 0 {
                            ("clock", format!("n{server} CLOCK jumps +{forward_ms} ms"))
                        } else {
                            ("wall", format!("n{server} wall clock stepped {wall_ms:+} ms"))
                        };
                        mark(&mut t, lane, kind, None, text);
                    }
                }
                TraceEvent::PeerStall { from, to, ms } => {
                    if let Some(&lane) = lane_of.get(from) {
                        let until = Some(at.plus_ms(*ms));
                        let text = format!("link n{from}->n{to} STALLS for {ms} ms");
                        mark(&mut t, lane, "stall", until, text);
                    }
                }
                TraceEvent::Buggify { server, site, power_loss, delay_us } => {
                    if let Some(&lane) = lane_of.get(server) {
                        let what = if *power_loss { "POWER LOSS" } else { "CRASH" };
                        let text =
                            format!("n{server} BUGGIFY {}: {what} in {delay_us} µs", site.name());
                        mark(&mut t, lane, "buggify", None, text);
                    }
                }
                TraceEvent::Partition { a, b } => {
                    partition_since.get_or_insert(at);
                    for (me, other) in [(a, b), (b, a)] {
                        if let Some(&lane) = lane_of.get(me) {
                            partitioned.entry(lane).or_default().push(*other);
                        }
                    }
                }
                TraceEvent::PartitionHeal => {
                    if let Some(since) = partition_since.take() {
                        for (lane, others) in std::mem::take(&mut partitioned) {
                            let names: Vec<String> =
                                others.iter().map(|o| format!("n{o}")).collect();
                            let text = format!("PARTITION: cut off from {}", names.join(", "));
                            if since <= window.to && at >= window.from {
                                t.marks.push(Mark {
                                    at: since,
                                    lane,
                                    kind: "partition",
                                    until: Some(at),
                                    text,
                                });
                            }
                        }
                    }
                }
                TraceEvent::LinkReset { a, b } => {
                    in_flight.remove(&(*a, *b));
                    in_flight.remove(&(*b, *a));
                }
                TraceEvent::Effect { server, effect: EffectTrace::Peer(to, name, true) } => {
                    in_flight.entry((*server, *to)).or_default().push_back((at, name));
                }
                TraceEvent::Effect { server, effect: EffectTrace::Send(conn, _) } => {
                    let frames = conns.entry(*conn).or_default();
                    frames.server = Some(*server);
                    frames.sent.push(at);
                }
                TraceEvent::Input { server, input: InputTrace::Frame(conn, _) } => {
                    let frames = conns.entry(*conn).or_default();
                    frames.server = Some(*server);
                    frames.taken.push(at);
                }
                TraceEvent::Input { server, input: InputTrace::Peer(from, name) } => {
                    let queue = in_flight.entry((*from, *server)).or_default();
                    while let Some((sent, sent_name)) = queue.pop_front() {
                        if sent_name != *name {
                            continue; // lost without a reset we saw: skip it
                        }
                        let ends = (lane_of.get(from), lane_of.get(server));
                        if let (Some(&a), Some(&b)) = ends {
                            if sent <= window.to && at >= window.from {
                                t.arrows.push(Arrow {
                                    from: (sent, a),
                                    to: (at, b),
                                    label: label(name),
                                    op: None,
                                });
                            }
                        }
                        break;
                    }
                }
                TraceEvent::ConnClog { conn, ms } => {
                    let until = Some(at.plus_ms(*ms));
                    mark(&mut t, client_lane, "clog", until, format!("CLOG {conn} for {ms} ms"));
                }
                TraceEvent::ConnReset { conn } => {
                    mark(&mut t, client_lane, "reset", None, format!("RESET {conn}"));
                }
                TraceEvent::ClientClose { client, conn, why } => {
                    mark(
                        &mut t,
                        client_lane,
                        "close",
                        None,
                        format!("c{} closes {conn} ({why:?})", client.0),
                    );
                }
                TraceEvent::History(index) => {
                    let Some((_, entry)) = history.entries.get(*index as usize) else { continue };
                    match entry {
                        Entry::SessionExpired { client, session } => {
                            let text = format!("c{} SESSION EXPIRED {session}", client.0);
                            mark(&mut t, client_lane, "expired", None, text);
                        }
                        Entry::Anomaly(a) => {
                            let a = &history.anomalies[*a as usize];
                            let text =
                                format!("c{} ANOMALY on {}: {:?}", a.client.0, a.conn, a.what);
                            mark(&mut t, client_lane, "anomaly", None, text);
                        }
                        Entry::Connected { client, session, server, created, .. } => {
                            let how = if *created { "new" } else { "resumed" };
                            let text =
                                format!("c{} session {session} {how} on n{server}", client.0);
                            mark(&mut t, client_lane, "session", None, text);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let close = t.end.max(start);
        for lane in 0..members.len() {
            band(&mut t, lane, close, None);
        }
        if let Some(since) = partition_since {
            for (lane, _) in partitioned {
                if since <= window.to {
                    let text = "PARTITION (not healed)".to_string();
                    t.marks.push(Mark {
                        at: since,
                        lane,
                        kind: "partition",
                        until: Some(close),
                        text,
                    });
                }
            }
        }

        // Client operations and their arrows.
        for op in &history.ops {
            let returned = op.completed_at;
            let visible =
                op.invoked_at <= window.to && returned.unwrap_or(op.invoked_at) >= window.from;
            if !visible {
                continue;
            }
            let outcome = match op.outcome {
                OpOutcome::Ok { .. } => "ok",
                OpOutcome::Fail { .. } => "fail",
                _ => "unknown",
            };
            let request = history::describe_request(&op.request);
            let text = format!("c{} #{} {request} -> {}", op.client.0, op.id.0, op.outcome);
            let index = Some(t.ops.len());
            if let (Some(frames), Some(&lane)) = (conns.get(&op.conn), lane_of.get(&op.server)) {
                // Frame times are in order: the first taken at or after the invocation, the
                // last sent at or before the reply arrived.
                let first = frames.taken.partition_point(|at| *at < op.invoked_at);
                let taken = frames.taken.get(first).copied();
                if let Some(taken) = taken.filter(|at| returned.is_none_or(|r| *at <= r)) {
                    t.arrows.push(Arrow {
                        from: (op.invoked_at, client_lane),
                        to: (taken, lane),
                        label: request_label,
                        op: index,
                    });
                    let reply = returned.filter(|_| outcome != "unknown").and_then(|r| {
                        let after = frames.sent.partition_point(|at| *at <= r);
                        after.checked_sub(1).map(|i| frames.sent[i]).filter(|at| *at >= taken)
                    });
                    if let (Some(sent), Some(r)) = (reply, returned) {
                        t.arrows.push(Arrow {
                            from: (sent, lane),
                            to: (r, client_lane),
                            label: reply_label,
                            op: index,
                        });
                    }
                }
            }
            t.ops.push(Op { invoked: op.invoked_at, returned, outcome, text });
        }
        let mut labels: Vec<(u32, String)> = label_ids.into_iter().map(|(k, v)| (v, k)).collect();
        labels.sort();
        t.labels = labels.into_iter().map(|(_, name)| name).collect();
        t
    }

    fn write_json(&self, options: &Options, summary: &Summary, out: &mut String) -> fmt::Result {
        let us = |at: SimTime| at.0;
        write!(
            out,
            "{{\"seed\":\"{:#018x}\",\"start\":{},\"end\":{},",
            options.seed,
            us(self.start),
            us(self.end)
        )?;
        out.push_str("\"verdict\":");
        json_str(&summary.verdict, out);
        out.push_str(",\"violations\":");
        json_list(out, &summary.violations, |v, out| {
            json_str(v, out);
            Ok(())
        })?;
        out.push_str(",\"options\":");
        json_str(&options.to_string(), out);
        out.push_str(",\"lanes\":");
        json_list(out, &self.lanes, |l, out| {
            json_str(l, out);
            Ok(())
        })?;
        out.push_str(",\"labels\":");
        json_list(out, &self.labels, |l, out| {
            json_str(l, out);
            Ok(())
        })?;
        out.push_str(",\"phases\":");
        json_list(out, &self.phases, |(at, name), out| {
            write!(out, "[{},", us(*at))?;
            json_str(name, out);
            out.push(']');
            Ok(())
        })?;
        out.push_str(",\"bands\":");
        json_list(out, &self.bands, |b, out| {
            write!(out, "[{},{},{},", b.lane, us(b.from), us(b.to))?;
            json_str(b.role, out);
            out.push(']');
            Ok(())
        })?;
        out.push_str(",\"marks\":");
        json_list(out, &self.marks, |m, out| {
            let until = m.until.map_or(-1, |u| u.0 as i64);
            write!(out, "[{},{},\"{}\",{until},", us(m.at), m.lane, m.kind)?;
            json_str(&m.text, out);
            out.push(']');
            Ok(())
        })?;
        out.push_str(",\"arrows\":");
        json_list(out, &self.arrows, |a, out| {
            let op = a.op.map_or(-1, |op| op as i64);
            let (from, to) = (us(a.from.0), us(a.to.0));
            write!(out, "[{from},{},{to},{},{},{op}]", a.from.1, a.to.1, a.label)
        })?;
        out.push_str(",\"ops\":");
        json_list(out, &self.ops, |o, out| {
            let returned = o.returned.map_or(-1, |r| r.0 as i64);
            write!(out, "[{},{returned},\"{}\",", us(o.invoked), o.outcome)?;
            json_str(&o.text, out);
            out.push(']');
            Ok(())
        })?;
        out.push_str(",\"columns\":");
        json_list(out, &self.columns, |c, out| {
            json_str(c, out);
            Ok(())
        })?;
        out.push_str(",\"lines\":");
        json_list(out, &self.lines, |line, out| {
            write!(out, "[{},{},{},", us(line.at), line.actor, line.role)?;
            json_str(&line.text, out);
            out.push(']');
            Ok(())
        })?;
        out.push('}');
        Ok(())
    }
}

fn json_list<T>(
    out: &mut String,
    items: &[T],
    mut each: impl FnMut(&T, &mut String) -> fmt::Result,
) -> fmt::Result {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(item, out)?;
    }
    out.push(']');
    Ok(())
}

/// Appends `text` as a JSON string literal.
fn json_str(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page: styles, the viewer script, and `{{DATA}}` for the JSON.
const TEMPLATE: &str = include_str!("timeline.html");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;
    use crate::Phase;

    const N1: ServerId = ServerId(1);
    const N2: ServerId = ServerId(2);

    fn three_nodes() -> Options {
        let mut options = Options::quiet(1);
        options.set_nodes(3);
        options
    }

    fn send(from: ServerId, to: ServerId, name: &'static str) -> TraceEvent {
        TraceEvent::Effect { server: from, effect: EffectTrace::Peer(to, name, true) }
    }

    fn take(at: ServerId, from: ServerId, name: &'static str) -> TraceEvent {
        TraceEvent::Input { server: at, input: InputTrace::Peer(from, name) }
    }

    fn trace(records: &[(u64, TraceEvent)]) -> Trace {
        let mut trace = Trace::new(true);
        for (ms, event) in records {
            trace.push(SimTime::from_ms(*ms), *event);
        }
        trace
    }

    #[test]
    fn peer_messages_become_arrows_and_a_link_reset_drops_what_was_in_flight() {
        let trace = trace(&[
            (1, send(N1, N2, "PROPOSAL")),
            (2, send(N1, N2, "COMMIT")),
            (3, take(N2, N1, "PROPOSAL")),
            (4, TraceEvent::LinkReset { a: N1, b: N2 }),
            (5, send(N1, N2, "PING")),
            (6, take(N2, N1, "PING")),
        ]);
        let history = History::new();
        let t = Timeline::build(&three_nodes(), &history, trace.records(), Window::ALL);
        let arrows: Vec<(u64, usize, u64, usize, &str)> = t
            .arrows
            .iter()
            .map(|a| {
                (
                    a.from.0.as_ms(),
                    a.from.1,
                    a.to.0.as_ms(),
                    a.to.1,
                    t.labels[a.label as usize].as_str(),
                )
            })
            .collect();
        // The COMMIT was in flight when the link broke: no arrow, and the PING is not taken
        // for it.
        assert_eq!(arrows, [(1, 0, 3, 1, "PROPOSAL"), (5, 0, 6, 1, "PING")]);
        assert_eq!(t.lanes, ["n1 voter", "n2 voter", "n3 voter", "clients"]);
    }

    #[test]
    fn roles_become_bands_and_faults_become_marks() {
        let trace = trace(&[
            (0, TraceEvent::Phase(Phase::Safety)),
            (1, TraceEvent::Role { server: N1, role: crate::trace::RoleTrace::Leading }),
            (2, TraceEvent::Role { server: N1, role: crate::trace::RoleTrace::Leader }),
            (5, TraceEvent::NodeCrash { server: N1, kept: 0, lost: 1 }),
            (6, TraceEvent::NodePause { server: N2, ms: 100 }),
            (9, TraceEvent::NodeStart { server: N1, incarnation: 1, zxid: 0 }),
        ]);
        let history = History::new();
        let t = Timeline::build(&three_nodes(), &history, trace.records(), Window::ALL);
        let bands: Vec<(usize, u64, u64, &str)> =
            t.bands.iter().map(|b| (b.lane, b.from.as_ms(), b.to.as_ms(), b.role)).collect();
        assert_eq!(bands, [(0, 1, 2, "leader~"), (0, 2, 5, "leader"), (0, 5, 9, "down")]);
        let marks: Vec<(u64, usize, &str, Option<u64>)> = t
            .marks
            .iter()
            .map(|m| (m.at.as_ms(), m.lane, m.kind, m.until.map(|u| u.as_ms())))
            .collect();
        assert_eq!(
            marks,
            [(5, 0, "crash", None), (6, 1, "pause", Some(106)), (9, 0, "restart", None)]
        );
        assert_eq!(t.phases.len(), 1);
    }

    #[test]
    fn a_window_keeps_only_its_part_of_the_run() {
        let trace = trace(&[
            (1, send(N1, N2, "PING")),
            (2, take(N2, N1, "PING")),
            (50, send(N1, N2, "ACK")),
            (51, take(N2, N1, "ACK")),
        ]);
        let history = History::new();
        let window = Window::ms(Some(10), Some(60));
        let t = Timeline::build(&three_nodes(), &history, trace.records(), window);
        assert_eq!(t.arrows.len(), 1);
        assert_eq!(t.lines.len(), 2);
        assert_eq!((t.start.as_ms(), t.end.as_ms()), (50, 51));
    }

    #[test]
    fn the_page_is_standalone_and_its_data_cannot_close_the_script() {
        let trace = trace(&[(1, TraceEvent::Phase(Phase::Safety))]);
        let summary = Summary {
            verdict: "FAIL".into(),
            violations: vec!["a note with </script><script>alert(1)</script>".into()],
        };
        let mut page = String::new();
        write_html(
            &three_nodes(),
            &History::new(),
            trace.records(),
            Window::ALL,
            &summary,
            &mut page,
        )
        .expect("a String");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(page.matches("</script>").count(), 2, "only the two real script ends");
        for external in ["src=", "href=", "<link", "@import", "url(http"] {
            assert!(!page.contains(external), "the page loads {external}");
        }
        let data = &page[page.find("id=\"data\">").expect("the data block")..];
        assert!(data.contains("\"lanes\":[\"n1 voter\",\"n2 voter\",\"n3 voter\",\"clients\"]"));
    }
}
