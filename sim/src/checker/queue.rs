//! The FIFO queue recipe loses nothing, duplicates nothing it need not, and hands items out in
//! sequence order.
//!
//! Producers (`recipes.rs`, Curator's `DistributedQueue`) create PERSISTENT_SEQUENTIAL items
//! with unique payloads; a consumer lists, reads the lowest item and deletes it with the
//! version it read, and owns the item if the delete succeeds. What ZooKeeper guarantees, and
//! what is checked, against the committed log:
//!
//! * **at most once**: no item is owned by two consumers; and no payload is owned more often
//!   than the committed log has items carrying it. A producer whose create was lost in a
//!   disconnect looks for the item by its protected name and creates it again only if it is
//!   not there — but a consumer may have taken the item before the producer looked, or the
//!   first create may commit only later (a request sent on a dead connection can outlive it),
//!   so a payload may legitimately be queued twice (seed 0xa shows the first case); each copy
//!   may then be consumed once. Per item node, nothing is ever duplicated.
//! * **owned items are real**: an owned item was committed with the payload the consumer read,
//!   and deleted by the consumer's session.
//! * **nothing lost**: every acknowledged item (its create was answered, or the producer found
//!   it) was committed with its payload and, at the end, is still in the queue, or was owned by
//!   a consumer, or was deleted by a delete whose outcome its consumer never learned (the
//!   connection dropped first). That last case is lost *to the application*: the recipe is
//!   at-most-once, as Curator's is; the item did not vanish from ZooKeeper.
//! * **FIFO**: sequence numbers follow commit order, so a consumer that takes the lowest item
//!   of its listing, and on losing a race the next one, only ever deletes the item that is the
//!   lowest still in the queue: every item it skipped was gone already, and items created
//!   after its listing sort after everything in it. So **whenever an item's delete commits, no
//!   item with a lower sequence number is in the queue**. It follows that each consumer takes
//!   items in sequence order, hence each producer's items in the order they were produced
//!   (a producer creates an item only after the previous one was acknowledged), and that a
//!   single consumer takes the whole queue in order. The converse does not hold across
//!   consumers: two consumers' deletes may *complete* in either order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use ensemble::core::ids::{SessionId, Zxid};
use ensemble::core::txn::{Txn, TxnOp};
use ensemble::wire::proto::{MultiOp, Request};

use crate::checker::Committed;
use crate::history::{History, OpOutcome};
use crate::recipes::{self, RecipeEvent, QUEUE};
use crate::workload::ClientId;

/// Most violations of each kind reported per run.
const REPORT_MAX: usize = 10;

/// A broken queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueViolation {
    /// Two consumers own the same item.
    ConsumedTwice {
        /// The item.
        path: String,
        /// The owners, in order.
        consumers: Vec<ClientId>,
    },
    /// A payload was owned more often than items carrying it were committed.
    PayloadDuplicated {
        /// The payload.
        payload: String,
        /// Times owned.
        consumed: usize,
        /// Committed items carrying it.
        committed: usize,
    },
    /// A consumer owns an item the committed log does not justify.
    PhantomConsumption {
        /// The consumer.
        client: ClientId,
        /// The item.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// An acknowledged item is neither in the queue, nor owned, nor taken by a delete of
    /// unknown outcome.
    Lost {
        /// The producer.
        client: ClientId,
        /// The item.
        path: String,
        /// Its payload.
        payload: String,
        /// What happened to it.
        why: String,
    },
    /// An item was deleted while an item with a lower sequence number was in the queue.
    OutOfOrder {
        /// The deleted item.
        path: String,
        /// The delete's zxid.
        zxid: Zxid,
        /// The lowest item then.
        lowest: String,
    },
}

/// The history of one item in the committed log.
#[derive(Clone, Debug, Default)]
struct Item {
    payload: Option<Bytes>,
    /// (zxid, session, cxid) of the delete.
    deleted: Option<(Zxid, SessionId, i32)>,
}

/// Checks the queue notes in `history` against `committed`.
pub fn check(history: &History, committed: &Committed) -> Vec<QueueViolation> {
    let mut violations = Vec::new();
    let items = replay(committed.txns(), &mut violations);
    let mut committed_payloads: BTreeMap<&Bytes, usize> = BTreeMap::new();
    for item in items.values() {
        if let Some(payload) = &item.payload {
            *committed_payloads.entry(payload).or_default() += 1;
        }
    }
    // Deletes whose outcome their client never learned, by (session, xid).
    let unknown: BTreeSet<(SessionId, i32)> = history
        .ops
        .iter()
        .filter(|op| matches!(op.outcome, OpOutcome::Unknown(_)))
        .filter(|op| request_path(&op.request).is_some_and(|p| p.starts_with(QUEUE)))
        .map(|op| (op.session, op.xid))
        .collect();
    let mut owners: BTreeMap<&str, Vec<ClientId>> = BTreeMap::new();
    let mut consumed_payloads: BTreeMap<&Bytes, usize> = BTreeMap::new();
    let mut phantoms = Vec::new();
    for note in &history.recipes {
        let RecipeEvent::Consumed { path, payload } = &note.event else { continue };
        owners.entry(path).or_default().push(note.client);
        *consumed_payloads.entry(payload).or_default() += 1;
        let why = match items.get(path.as_str()) {
            None => Some("no such item was committed".to_string()),
            Some(item) if item.payload.as_ref() != Some(payload) => {
                Some(format!("it read {}, the item holds {}", text(payload), opt(&item.payload)))
            }
            Some(Item { deleted: None, .. }) => Some("the item was never deleted".to_string()),
            Some(Item { deleted: Some((zxid, session, _)), .. }) if *session != note.session => {
                Some(format!("the delete at {zxid} was by session {session}"))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            phantoms.push(QueueViolation::PhantomConsumption {
                client: note.client,
                path: path.clone(),
                why,
            });
        }
    }
    violations.extend(phantoms.into_iter().take(REPORT_MAX));
    let twice = owners.iter().filter(|(_, consumers)| consumers.len() > 1);
    violations.extend(twice.take(REPORT_MAX).map(|(path, consumers)| {
        QueueViolation::ConsumedTwice { path: path.to_string(), consumers: consumers.clone() }
    }));
    let duplicated = consumed_payloads.iter().filter_map(|(payload, &consumed)| {
        let committed = committed_payloads.get(payload).copied().unwrap_or(0);
        (consumed > committed).then(|| QueueViolation::PayloadDuplicated {
            payload: text(payload),
            consumed,
            committed,
        })
    });
    violations.extend(duplicated.take(REPORT_MAX));
    let mut lost = Vec::new();
    for note in &history.recipes {
        let RecipeEvent::Produced { path, payload } = &note.event else { continue };
        let why = match items.get(path.as_str()) {
            None => Some("its create is not in the committed log".to_string()),
            Some(item) if item.payload.as_ref() != Some(payload) => {
                Some(format!("the committed item holds {}", opt(&item.payload)))
            }
            Some(Item { deleted: Some((zxid, session, cxid)), .. })
                if !owners.contains_key(path.as_str()) && !unknown.contains(&(*session, *cxid)) =>
            {
                Some(format!(
                    "session {session} deleted it at {zxid} (cxid {cxid}) and no consumer owns it"
                ))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            lost.push(QueueViolation::Lost {
                client: note.client,
                path: path.clone(),
                payload: text(payload),
                why,
            });
        }
    }
    violations.extend(lost.into_iter().take(REPORT_MAX));
    violations
}

/// Replays the queue's part of the committed log: every item with its payload and delete,
/// and the FIFO check at every delete.
fn replay(txns: &[Txn], violations: &mut Vec<QueueViolation>) -> BTreeMap<String, Item> {
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    // The items in the queue, by sequence number.
    let mut present: BTreeMap<u64, String> = BTreeMap::new();
    let mut out_of_order = 0;
    for txn in txns {
        let ops = match &txn.op {
            TxnOp::Multi(ops) => ops.iter().collect(),
            op => vec![op],
        };
        for op in ops {
            match op {
                TxnOp::Create { path, data, .. } => {
                    let Some(seq) = queue_item(path) else { continue };
                    present.insert(seq, path.clone());
                    items.insert(path.clone(), Item { payload: data.clone(), deleted: None });
                }
                TxnOp::Delete { path } => {
                    let Some(seq) = queue_item(path) else { continue };
                    if let Some((&lowest_seq, lowest)) = present.first_key_value() {
                        if lowest_seq < seq && out_of_order < REPORT_MAX {
                            out_of_order += 1;
                            violations.push(QueueViolation::OutOfOrder {
                                path: path.clone(),
                                zxid: txn.zxid,
                                lowest: lowest.clone(),
                            });
                        }
                    }
                    present.remove(&seq);
                    if let Some(item) = items.get_mut(path) {
                        item.deleted = Some((txn.zxid, txn.session, txn.cxid));
                    }
                }
                _ => {}
            }
        }
    }
    items
}

/// The sequence number of a queue item's path (a direct child of the queue directory).
fn queue_item(path: &str) -> Option<u64> {
    let name = path.strip_prefix(QUEUE)?.strip_prefix('/')?;
    if name.contains('/') {
        return None;
    }
    recipes::sequence(name)
}

/// The path a request names (the first op's, for a multi).
pub(crate) fn request_path(request: &Request) -> Option<&str> {
    match request {
        Request::Create(_, create) => Some(&create.path),
        Request::Delete { path, .. }
        | Request::SetData { path, .. }
        | Request::GetData { path, .. }
        | Request::Exists { path, .. }
        | Request::GetChildren { path, .. } => Some(path),
        Request::Multi(ops) => match ops.first()? {
            MultiOp::Create(_, create) => Some(&create.path),
            MultiOp::SetData { path, .. }
            | MultiOp::Delete { path, .. }
            | MultiOp::Check { path, .. } => Some(path),
        },
        _ => None,
    }
}

fn text(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn opt(bytes: &Option<Bytes>) -> String {
    bytes.as_ref().map_or("null".to_string(), text)
}

impl fmt::Display for QueueViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueViolation::ConsumedTwice { path, consumers } => {
                let names: Vec<String> = consumers.iter().map(|c| c.to_string()).collect();
                write!(f, "{path} consumed by {}", names.join(" and "))
            }
            QueueViolation::PayloadDuplicated { payload, consumed, committed } => write!(
                f,
                "payload {payload} consumed {consumed} times but committed in {committed} item(s)"
            ),
            QueueViolation::PhantomConsumption { client, path, why } => {
                write!(f, "{client} consumed {path}, but {why}")
            }
            QueueViolation::Lost { client, path, payload, why } => {
                write!(f, "{client}'s acknowledged item {path} ({payload}) is lost: {why}")
            }
            QueueViolation::OutOfOrder { path, zxid, lowest } => {
                write!(f, "{path} was deleted at {zxid} while {lowest} was still queued")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ensemble::core::txn::TxnOp;

    use super::*;
    use crate::checker::fixtures::*;
    use crate::checker::lock::tests::note;
    use crate::history::UnknownReason;
    use crate::recipes::Role;

    fn item(n: u64) -> String {
        format!("{QUEUE}/_c_c0-{n}-item-{n:010}")
    }

    fn create(zxid: u64, n: u64, payload: &str) -> Txn {
        create_txn(zxid, 0, zxid as i32, &item(n), payload)
    }

    fn delete(zxid: u64, c: u32, cxid: i32, n: u64) -> Txn {
        txn(zxid, c, cxid, TxnOp::Delete { path: item(n) })
    }

    fn produced(history: &mut History, n: u64, payload: &str) {
        let event =
            RecipeEvent::Produced { path: item(n), payload: Bytes::from(payload.to_string()) };
        note(history, Role::Producer, 0, 10 + n, event);
    }

    fn consumed(history: &mut History, c: u32, n: u64, payload: &str) {
        let event =
            RecipeEvent::Consumed { path: item(n), payload: Bytes::from(payload.to_string()) };
        note(history, Role::Consumer, c, 100 + n, event);
    }

    /// Two items produced, the first consumed by c1, the second still queued.
    fn good() -> (History, Vec<Txn>) {
        let mut history = History::new();
        produced(&mut history, 1, "p1");
        produced(&mut history, 2, "p2");
        consumed(&mut history, 1, 1, "p1");
        (history, vec![create(1, 1, "p1"), create(2, 2, "p2"), delete(3, 1, 7, 1)])
    }

    #[test]
    fn a_well_behaved_queue_passes() {
        let (history, txns) = good();
        assert_eq!(check(&history, &Committed::new(txns)), vec![]);
    }

    #[test]
    fn an_item_consumed_twice_is_flagged() {
        let (mut history, txns) = good();
        consumed(&mut history, 2, 1, "p1");
        let violations = check(&history, &Committed::new(txns));
        assert!(violations.iter().any(|v| matches!(v, QueueViolation::ConsumedTwice { .. })));
        assert!(violations.iter().any(|v| matches!(v, QueueViolation::PayloadDuplicated { .. })));
        // c2 also claims an item deleted by c1's session.
        assert!(violations.iter().any(|v| matches!(v, QueueViolation::PhantomConsumption { .. })));
    }

    #[test]
    fn a_payload_queued_twice_may_be_consumed_twice_but_not_three_times() {
        // The producer's first create was lost in a disconnect and committed late: two items
        // carry p1, each consumed once.
        let mut history = History::new();
        produced(&mut history, 2, "p1");
        consumed(&mut history, 1, 1, "p1");
        consumed(&mut history, 1, 2, "p1");
        let txns =
            vec![create(1, 1, "p1"), create(2, 2, "p1"), delete(3, 1, 7, 1), delete(4, 1, 8, 2)];
        assert_eq!(check(&history, &Committed::new(txns.clone())), vec![]);
        consumed(&mut history, 2, 2, "p1");
        let violations = check(&history, &Committed::new(txns));
        assert!(violations.iter().any(|v| matches!(
            v,
            QueueViolation::PayloadDuplicated { consumed: 3, committed: 2, .. }
        )));
    }

    #[test]
    fn an_acknowledged_item_deleted_by_nobody_who_owns_it_is_lost() {
        let (history, mut txns) = good();
        txns.push(delete(4, 2, 9, 2)); // c2 deleted item 2 but never said it owns it
        let violations = check(&history, &Committed::new(txns.clone()));
        assert!(matches!(&violations[..], [QueueViolation::Lost { .. }]), "{violations:?}");
        // ... unless c2's delete had an unknown outcome: then c2 could not know it owned it.
        let mut history = history;
        let request = Request::Delete { path: item(2), version: 0 };
        op(&mut history, 50, 2, 9, request, OpOutcome::Unknown(UnknownReason::Disconnected));
        assert_eq!(check(&history, &Committed::new(txns)), vec![]);
    }

    #[test]
    fn an_acknowledged_item_missing_from_the_log_is_lost() {
        let (mut history, txns) = good();
        produced(&mut history, 3, "p3");
        let violations = check(&history, &Committed::new(txns));
        assert!(matches!(&violations[..], [QueueViolation::Lost { .. }]), "{violations:?}");
    }

    #[test]
    fn consuming_what_was_not_committed_is_flagged() {
        let (mut history, txns) = good();
        consumed(&mut history, 1, 2, "p2-forged");
        let violations = check(&history, &Committed::new(txns));
        assert!(violations.iter().any(|v| matches!(v,
            QueueViolation::PhantomConsumption { path, .. } if *path == item(2))));
    }

    #[test]
    fn deleting_past_a_lower_item_is_out_of_order() {
        let (history, mut txns) = good();
        txns[2] = delete(3, 1, 7, 2); // item 2 taken while item 1 is still queued
        let violations = check(&history, &Committed::new(txns));
        assert!(violations.iter().any(|v| matches!(v,
            QueueViolation::OutOfOrder { path, lowest, .. } if *path == item(2) && *lowest == item(1))),
            "{violations:?}");
    }

    #[test]
    fn request_paths() {
        let request = Request::GetChildren { path: QUEUE.into(), watch: true, with_stat: false };
        assert_eq!(request_path(&request), Some(QUEUE));
        assert_eq!(request_path(&Request::CloseSession), None);
    }
}
