//! Who votes, and what counts as a quorum. ZK compat: `QuorumMaj` (majority of voters;
//! observers never count).

use std::collections::{BTreeMap, BTreeSet};

use crate::core::ids::ServerId;

/// A member's role in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerRole {
    /// Votes in elections and acknowledges proposals.
    Participant,
    /// Receives committed txns, never votes.
    Observer,
}

/// The ensemble's membership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Every member with its role.
    pub members: BTreeMap<ServerId, PeerRole>,
}

impl Membership {
    /// The voters, in id order.
    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.members.iter().filter(|(_, r)| **r == PeerRole::Participant).map(|(id, _)| *id)
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: ServerId) -> bool {
        self.members.get(&id) == Some(&PeerRole::Participant)
    }

    /// Number of voters.
    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    /// Whether `ids` contains a majority of the voters (non-voters in `ids` are ignored).
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let unique: BTreeSet<ServerId> = ids.into_iter().copied().collect();
        let votes = unique.iter().filter(|id| self.is_voter(**id)).count();
        votes * 2 > self.voter_count()
    }

    /// Every member other than `me`, in id order.
    pub fn others(&self, me: ServerId) -> impl Iterator<Item = ServerId> + '_ {
        self.members.keys().copied().filter(move |id| *id != me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(voters: &[u64], observers: &[u64]) -> Membership {
        let mut members = BTreeMap::new();
        for v in voters {
            members.insert(ServerId(*v), PeerRole::Participant);
        }
        for o in observers {
            members.insert(ServerId(*o), PeerRole::Observer);
        }
        Membership { members }
    }

    #[test]
    fn a_quorum_is_a_strict_majority_of_voters_and_observers_do_not_count() {
        let m = membership(&[1, 2, 3], &[4, 5]);
        assert!(!m.is_quorum(&[ServerId(1)]));
        assert!(!m.is_quorum(&[ServerId(1), ServerId(4), ServerId(5)]));
        assert!(m.is_quorum(&[ServerId(1), ServerId(3)]));
        assert!(!m.is_quorum(&[ServerId(1), ServerId(1)]), "duplicates count once");
        let even = membership(&[1, 2, 3, 4], &[]);
        assert!(!even.is_quorum(&[ServerId(1), ServerId(2)]));
        assert!(even.is_quorum(&[ServerId(1), ServerId(2), ServerId(3)]));
    }
}
