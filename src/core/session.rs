//! The session table: live sessions, their passwords and timeouts, and expiry in buckets.
//!
//! ZK compat: `SessionTrackerImpl`. Expiry times are rounded up to the next multiple of
//! `tickTime` so that sessions expire in batches ("buckets") and the node needs one timer for all
//! of them. Times are the node's monotonic milliseconds (`Now::mono_ms`); nothing here reads a
//! clock.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ids::SessionId;

/// One live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Negotiated timeout.
    pub timeout_ms: i32,
    /// The 16-byte password a reconnecting client must present.
    pub password: [u8; 16],
    /// Monotonic ms at which it expires unless touched (a bucket boundary).
    pub expires_at_ms: u64,
    /// Set once a closeSession txn is on its way: requests then get SessionExpired.
    pub closing: bool,
}

/// All sessions this node knows, with their expiry buckets.
#[derive(Clone, Debug, Default)]
pub struct SessionTable {
    sessions: BTreeMap<SessionId, Session>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
    tick_ms: u64,
}

impl SessionTable {
    /// An empty table whose buckets are `tick_ms` wide.
    pub fn new(tick_ms: u64) -> SessionTable {
        assert!(tick_ms > 0, "tickTime must be positive");
        SessionTable { sessions: BTreeMap::new(), buckets: BTreeMap::new(), tick_ms }
    }

    /// Adds (or replaces) a session and starts its timer at `now_ms`.
    pub fn add(&mut self, id: SessionId, timeout_ms: i32, password: [u8; 16], now_ms: u64) {
        self.remove(id);
        let session = Session { timeout_ms, password, expires_at_ms: 0, closing: false };
        self.sessions.insert(id, session);
        self.touch(id, now_ms);
    }

    /// Restarts a session's timer. Returns false if the session is unknown or closing.
    pub fn touch(&mut self, id: SessionId, now_ms: u64) -> bool {
        let Some(session) = self.sessions.get_mut(&id) else {
            return false;
        };
        if session.closing {
            return false;
        }
        let expires = round_up(now_ms + session.timeout_ms.max(0) as u64, self.tick_ms);
        if expires == session.expires_at_ms {
            return true;
        }
        unlink(&mut self.buckets, session.expires_at_ms, id);
        session.expires_at_ms = expires;
        self.buckets.entry(expires).or_default().insert(id);
        true
    }

    /// Changes a session's timeout (a reconnect may negotiate a new one) and touches it.
    pub fn set_timeout(&mut self, id: SessionId, timeout_ms: i32, now_ms: u64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.timeout_ms = timeout_ms;
        }
        self.touch(id, now_ms);
    }

    /// Marks a session as closing; it no longer expires by timer.
    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.closing = true;
            unlink(&mut self.buckets, session.expires_at_ms, id);
        }
    }

    /// Forgets a session (its closeSession txn was applied).
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        unlink(&mut self.buckets, session.expires_at_ms, id);
        Some(session)
    }

    /// The session, if known.
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Whether the session is known and not closing.
    pub fn is_live(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Sessions whose expiry is at or before `now_ms`, in id order. They are marked closing.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            expired.extend(entry.remove());
        }
        expired.sort_unstable();
        for id in &expired {
            if let Some(session) = self.sessions.get_mut(id) {
                session.closing = true;
            }
        }
        expired
    }

    /// The next instant a session may expire.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Every live or closing session, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SessionId, &Session)> {
        self.sessions.iter().map(|(id, s)| (*id, s))
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

fn unlink(buckets: &mut BTreeMap<u64, BTreeSet<SessionId>>, at: u64, id: SessionId) {
    if let Some(bucket) = buckets.get_mut(&at) {
        bucket.remove(&id);
        if bucket.is_empty() {
            buckets.remove(&at);
        }
    }
}

fn round_up(ms: u64, tick_ms: u64) -> u64 {
    ms.div_ceil(tick_ms) * tick_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_rounded_to_the_next_tick_and_touch_postpones_it() {
        let mut table = SessionTable::new(100);
        table.add(SessionId(1), 250, [0; 16], 1_000);
        assert_eq!(table.get(SessionId(1)).map(|s| s.expires_at_ms), Some(1_300));
        assert!(table.take_expired(1_299).is_empty());
        assert!(table.touch(SessionId(1), 1_200));
        assert!(table.take_expired(1_300).is_empty());
        assert_eq!(table.take_expired(1_500), vec![SessionId(1)]);
        assert!(!table.is_live(SessionId(1)), "an expired session is closing");
        assert!(!table.touch(SessionId(1), 1_600), "a closing session cannot be revived");
    }

    #[test]
    fn sessions_expire_in_id_order_and_removal_clears_buckets() {
        let mut table = SessionTable::new(10);
        for id in [5, 3, 9] {
            table.add(SessionId(id), 20, [0; 16], 0);
        }
        table.remove(SessionId(9));
        assert_eq!(table.next_expiry_ms(), Some(20));
        assert_eq!(table.take_expired(20), vec![SessionId(3), SessionId(5)]);
        assert_eq!(table.next_expiry_ms(), None);
    }
}
