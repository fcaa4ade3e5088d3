//! Fast leader election as a pure state machine.
//!
//! ZK compat: `FastLeaderElection.lookForLeader`. Every member starts by voting for itself with
//! its (current epoch, last logged zxid); a member adopts any greater vote it hears in its round
//! and rebroadcasts. A vote backed by a quorum of voters becomes the decision once no better vote
//! arrives for `FINALIZE_WAIT_MS` (or at once when every voter whose link is not known down has
//! voted for it). A member that hears from peers which already follow or lead an established
//! leader joins that leader when a quorum of them agree and the leader itself says it leads
//! (ZOOKEEPER-1732).
//!
//! Observers run the same machine but their votes are never counted, so they can only end up
//! observing.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::canary::{Canaries, Canary};
use crate::core::ids::ServerId;
use crate::core::zab::messages::{PeerMsg, PeerState, Vote};
use crate::core::zab::quorum::Membership;

/// How long a quorum-backed vote must stand unchallenged before it is final.
/// ZK compat: `finalizeWait` is 200 ms; we wait less and skip the wait when every voter in reach
/// agrees.
pub const FINALIZE_WAIT_MS: u64 = 50;
/// First interval between rebroadcasts of our notification while nothing changes.
const RESEND_FIRST_MS: u64 = 100;
/// Longest interval between rebroadcasts.
const RESEND_MAX_MS: u64 = 1_000;

/// The outcome of an election for this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This member leads.
    Lead,
    /// This member follows (or, for an observer, observes) `leader`.
    Learn {
        /// The elected leader.
        leader: ServerId,
    },
}

/// One member's election in progress.
#[derive(Clone, Debug)]
pub struct Election {
    me: ServerId,
    round: u64,
    initial: Vote,
    proposal: Vote,
    received: BTreeMap<ServerId, (Vote, PeerState)>,
    out_of_election: BTreeMap<ServerId, (Vote, u64, PeerState)>,
    finalize_at: Option<u64>,
    /// Members whose link the driver reported down (and not up since): such a voter cannot
    /// send a better vote, so agreement need not wait for it.
    unreachable: BTreeSet<ServerId>,
    resend_at: u64,
    resend_interval: u64,
    decided: Option<Vote>,
    canaries: Canaries,
}

impl Election {
    /// Starts a new round after `round`, voting for ourselves; the notification to broadcast
    /// goes to `out`.
    pub fn start(
        me: ServerId,
        round: u64,
        initial: Vote,
        now_ms: u64,
        members: &Membership,
        out: &mut Vec<(ServerId, PeerMsg)>,
    ) -> Election {
        // ZK compat: getInitId() — a non-voter proposes the least possible vote, so it adopts
        // whatever the voters propose and can never be elected itself.
        let initial = if members.is_voter(me) {
            initial
        } else {
            Vote { leader: ServerId(0), zxid: crate::core::ids::Zxid::ZERO, epoch: 0 }
        };
        let mut election = Election {
            me,
            round: round + 1,
            initial,
            proposal: initial,
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalize_at: None,
            unreachable: BTreeSet::new(),
            resend_at: now_ms + RESEND_FIRST_MS,
            resend_interval: RESEND_FIRST_MS,
            decided: None,
            canaries: Canaries::NONE,
        };
        if members.is_voter(me) {
            election.received.insert(me, (initial, PeerState::Looking));
        }
        election.broadcast(members, out);
        election
    }

    /// The round (ZooKeeper's `logicalclock`).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The vote this member currently proposes.
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// The vote this member decided on. Every member that decided in the same election holds
    /// the same vote, and answers looking members with it (ZK compat: `getCurrentVote`).
    pub fn decided_vote(&self) -> Option<Vote> {
        self.decided
    }

    /// Switches on deliberate bugs (simulator canaries).
    pub fn set_canaries(&mut self, canaries: Canaries) {
        self.canaries = canaries;
    }

    /// Whether `a` beats `b`. ZK compat: `totalOrderPredicate`.
    fn better(&self, a: Vote, b: Vote) -> bool {
        if self.canaries.on(Canary::VoteOrderNotTotal) {
            // ZOOKEEPER-1419: the id tie-break is not guarded by equal epochs.
            return a.epoch > b.epoch
                || (a.epoch == b.epoch && a.zxid > b.zxid)
                || (a.zxid == b.zxid && a.leader > b.leader);
        }
        a > b
    }

    /// When `on_tick` should run next.
    pub fn deadline(&self) -> u64 {
        self.finalize_at.map_or(self.resend_at, |at| at.min(self.resend_at))
    }

    /// Our current notification.
    pub fn notification(&self) -> PeerMsg {
        PeerMsg::Notification { vote: self.proposal, round: self.round, state: PeerState::Looking }
    }

    /// Handles a notification from `from`. Replies and rebroadcasts go to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_notification(
        &mut self,
        from: ServerId,
        vote: Vote,
        round: u64,
        state: PeerState,
        now_ms: u64,
        members: &Membership,
        out: &mut Vec<(ServerId, PeerMsg)>,
    ) -> Option<Decision> {
        if !members.members.contains_key(&from) || !members.is_voter(vote.leader) {
            // ZK compat: validVoter(n.sid) / validVoter(n.leader) — only answer the sender.
            if state == PeerState::Looking && members.members.contains_key(&from) {
                out.push((from, self.notification()));
            }
            return None;
        }
        if state != PeerState::Looking {
            return self.on_established_peer(from, vote, round, state, members);
        }
        if round > self.round {
            self.round = round;
            self.received.clear();
            self.proposal = if self.better(vote, self.initial) { vote } else { self.initial };
            self.finalize_at = None;
            self.broadcast(members, out);
        } else if round < self.round {
            // ZK compat: WorkerReceiver sends our vote back to a member in an older round.
            out.push((from, self.notification()));
            return None;
        } else if self.better(vote, self.proposal) {
            self.proposal = vote;
            self.finalize_at = None;
            self.broadcast(members, out);
        } else if self.better(self.proposal, vote) {
            // The sender has not seen our better vote (it may have been following when we
            // sent it): tell it now rather than at the next resend.
            out.push((from, self.notification()));
        }
        if members.is_voter(from) {
            self.received.insert(from, (vote, PeerState::Looking));
        }
        if members.is_voter(self.me) {
            self.received.insert(self.me, (self.proposal, PeerState::Looking));
        }
        self.consider_finalizing(now_ms, members)
    }

    /// Rebroadcasts when quiet for a while; finalizes a standing quorum vote.
    pub fn on_tick(
        &mut self,
        now_ms: u64,
        members: &Membership,
        out: &mut Vec<(ServerId, PeerMsg)>,
    ) -> Option<Decision> {
        if self.finalize_at.is_some_and(|at| now_ms >= at) {
            self.finalize_at = None;
            if self.quorum_for(&self.proposal, members) {
                return Some(self.decide(self.proposal));
            }
        }
        if now_ms >= self.resend_at {
            self.broadcast(members, out);
            self.resend_interval = (self.resend_interval * 2).min(RESEND_MAX_MS);
            self.resend_at = now_ms + self.resend_interval;
        }
        None
    }

    /// The members whose link is down as the election starts; from then on it follows them
    /// through `on_link_up` / `on_link_down`.
    pub fn set_unreachable(&mut self, unreachable: BTreeSet<ServerId>) {
        self.unreachable = unreachable;
    }

    /// A link to `peer` came up: tell it our vote right away.
    pub fn on_link_up(&mut self, peer: ServerId, out: &mut Vec<(ServerId, PeerMsg)>) {
        self.unreachable.remove(&peer);
        out.push((peer, self.notification()));
    }

    /// The link to `peer` went down: its vote can no longer arrive, so the voters still in
    /// reach may now all agree.
    pub fn on_link_down(
        &mut self,
        peer: ServerId,
        now_ms: u64,
        members: &Membership,
    ) -> Option<Decision> {
        if !self.unreachable.insert(peer) || self.decided.is_some() {
            return None;
        }
        self.consider_finalizing(now_ms, members)
    }

    /// Whether `voter` may still send us a vote: any member whose link is not known down.
    fn in_reach(&self, voter: ServerId) -> bool {
        voter == self.me || !self.unreachable.contains(&voter)
    }

    fn on_established_peer(
        &mut self,
        from: ServerId,
        vote: Vote,
        round: u64,
        state: PeerState,
        members: &Membership,
    ) -> Option<Decision> {
        if round == self.round && members.is_voter(from) {
            self.received.insert(from, (vote, state));
            let in_round = self.received.iter().map(|(id, (v, s))| (*id, *v, *s));
            if quorum_agrees(in_round, &vote, members)
                && self.check_leader(&self.received, vote.leader, round)
            {
                return Some(self.decide(vote));
            }
        }
        self.out_of_election.insert(from, (vote, round, state));
        let established = self.out_of_election.iter().map(|(id, (v, _, s))| (*id, *v, *s));
        let leader_says_so =
            matches!(self.out_of_election.get(&vote.leader), Some((_, _, PeerState::Leading)));
        if quorum_agrees(established, &vote, members) && (vote.leader != self.me && leader_says_so)
        {
            self.round = round;
            return Some(self.decide(vote));
        }
        None
    }

    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, (Vote, PeerState)>,
        leader: ServerId,
        round: u64,
    ) -> bool {
        if leader == self.me {
            self.round == round
        } else {
            matches!(votes.get(&leader), Some((_, PeerState::Leading)))
        }
    }

    fn consider_finalizing(&mut self, now_ms: u64, members: &Membership) -> Option<Decision> {
        if !self.quorum_for(&self.proposal, members) {
            self.finalize_at = None;
            return None;
        }
        // Every voter in reach agrees: no better vote can come within the finalize wait (a
        // voter without a link would have to reconnect first). ZK compat: FastLeaderElection
        // always waits `finalizeWait` (200 ms); with a member dead that wait was most of a
        // failover here, and it did nothing (the dead member never votes).
        let unanimous = members
            .voters()
            .filter(|id| self.in_reach(*id))
            .all(|id| self.received.get(&id).is_some_and(|(v, _)| *v == self.proposal));
        if unanimous {
            return Some(self.decide(self.proposal));
        }
        if self.finalize_at.is_none() {
            self.finalize_at = Some(now_ms + FINALIZE_WAIT_MS);
        }
        None
    }

    fn quorum_for(&self, vote: &Vote, members: &Membership) -> bool {
        let votes = self.received.iter().map(|(id, (v, s))| (*id, *v, *s));
        quorum_agrees(votes, vote, members)
    }

    fn decide(&mut self, vote: Vote) -> Decision {
        self.decided = Some(vote);
        if vote.leader == self.me {
            Decision::Lead
        } else {
            Decision::Learn { leader: vote.leader }
        }
    }

    fn broadcast(&mut self, members: &Membership, out: &mut Vec<(ServerId, PeerMsg)>) {
        for peer in members.others(self.me) {
            out.push((peer, self.notification()));
        }
    }
}

fn quorum_agrees(
    votes: impl Iterator<Item = (ServerId, Vote, PeerState)>,
    vote: &Vote,
    members: &Membership,
) -> bool {
    let agreeing: Vec<ServerId> = votes
        .filter(|(_, v, _)| v.leader == vote.leader && v == vote)
        .map(|(id, _, _)| id)
        .collect();
    members.is_quorum(&agreeing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Zxid;
    use crate::core::zab::quorum::PeerRole;

    fn members(voters: &[u64], observers: &[u64]) -> Membership {
        let mut m = Membership::default();
        for v in voters {
            m.members.insert(ServerId(*v), PeerRole::Participant);
        }
        for o in observers {
            m.members.insert(ServerId(*o), PeerRole::Observer);
        }
        m
    }

    fn vote(leader: u64, epoch: u32, counter: u32) -> Vote {
        Vote { leader: ServerId(leader), zxid: Zxid::new(epoch, counter), epoch }
    }

    /// Runs a full exchange among `voters` with the given initial votes, delivering every
    /// message in FIFO order, and returns each member's decision.
    fn run(m: &Membership, initial: &[(u64, Vote)]) -> BTreeMap<ServerId, Decision> {
        let mut out = Vec::new();
        let mut elections: BTreeMap<ServerId, Election> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::new();
        for (id, v) in initial {
            let e = Election::start(ServerId(*id), 0, *v, 0, m, &mut out);
            elections.insert(ServerId(*id), e);
            queue.extend(out.drain(..).map(|(to, msg)| (ServerId(*id), to, msg)));
        }
        let mut decisions = BTreeMap::new();
        let mut now = 0;
        while decisions.len() < elections.len() && now < 10_000 {
            while let Some((from, to, msg)) = queue.pop_front() {
                if decisions.contains_key(&to) {
                    continue;
                }
                let PeerMsg::Notification { vote, round, state } = msg else { continue };
                let e = elections.get_mut(&to).expect("member");
                if let Some(d) = e.on_notification(from, vote, round, state, now, m, &mut out) {
                    decisions.insert(to, d);
                }
                queue.extend(out.drain(..).map(|(t, msg)| (to, t, msg)));
            }
            now += 10;
            for (id, e) in elections.iter_mut() {
                if decisions.contains_key(id) {
                    continue;
                }
                if let Some(d) = e.on_tick(now, m, &mut out) {
                    decisions.insert(*id, d);
                }
                queue.extend(out.drain(..).map(|(t, msg)| (*id, t, msg)));
            }
        }
        decisions
    }

    #[test]
    fn votes_are_ordered_by_epoch_then_zxid_then_server_id() {
        assert!(vote(1, 2, 0) > vote(3, 1, 9));
        assert!(vote(1, 1, 5) > vote(3, 1, 4));
        assert!(vote(3, 1, 5) > vote(2, 1, 5));
    }

    #[test]
    fn the_member_with_the_newest_history_wins_and_everyone_agrees() {
        let m = members(&[1, 2, 3], &[]);
        let decisions = run(&m, &[(1, vote(1, 1, 7)), (2, vote(2, 1, 9)), (3, vote(3, 1, 8))]);
        assert_eq!(decisions.get(&ServerId(2)), Some(&Decision::Lead));
        assert_eq!(decisions.get(&ServerId(1)), Some(&Decision::Learn { leader: ServerId(2) }));
        assert_eq!(decisions.get(&ServerId(3)), Some(&Decision::Learn { leader: ServerId(2) }));
    }

    #[test]
    fn observers_never_win_and_end_up_learning_from_the_voters_choice() {
        let m = members(&[1, 2, 3], &[4]);
        let decisions = run(
            &m,
            &[(1, vote(1, 1, 1)), (2, vote(2, 1, 1)), (3, vote(3, 1, 1)), (4, vote(4, 9, 9))],
        );
        assert_eq!(decisions.get(&ServerId(3)), Some(&Decision::Lead));
        assert_eq!(decisions.get(&ServerId(4)), Some(&Decision::Learn { leader: ServerId(3) }));
    }

    #[test]
    fn a_member_rejoining_an_established_ensemble_follows_its_leader() {
        let m = members(&[1, 2, 3], &[]);
        let mut out = Vec::new();
        // Member 3 restarts with a newer-looking vote, but 1 and 2 already follow/lead 2.
        let mut e = Election::start(ServerId(3), 0, vote(3, 5, 5), 0, &m, &mut out);
        let established = vote(2, 1, 9);
        let d1 =
            e.on_notification(ServerId(1), established, 7, PeerState::Following, 0, &m, &mut out);
        assert_eq!(d1, None, "one follower is not a quorum, and the leader has not spoken");
        let d2 =
            e.on_notification(ServerId(2), established, 7, PeerState::Leading, 0, &m, &mut out);
        assert_eq!(d2, Some(Decision::Learn { leader: ServerId(2) }));
        assert_eq!(e.round(), 7);
    }

    #[test]
    fn a_quorum_vote_is_final_only_after_the_finalize_wait() {
        let m = members(&[1, 2, 3], &[]);
        let mut out = Vec::new();
        let mut e = Election::start(ServerId(1), 0, vote(1, 1, 9), 0, &m, &mut out);
        let d =
            e.on_notification(ServerId(2), vote(1, 1, 9), 1, PeerState::Looking, 0, &m, &mut out);
        assert_eq!(d, None, "member 3 has not voted yet: wait for a better vote");
        assert_eq!(e.deadline(), FINALIZE_WAIT_MS);
        assert_eq!(e.on_tick(FINALIZE_WAIT_MS, &m, &mut out), Some(Decision::Lead));
    }

    #[test]
    fn a_vote_every_voter_in_reach_backs_is_final_without_the_finalize_wait() {
        // Issue #10 item 5: member 3 (the old leader) died and its link is down; members 1
        // and 2 agree, and no better vote can come, so waiting FINALIZE_WAIT_MS is useless.
        let m = members(&[1, 2, 3], &[]);
        let mut out = Vec::new();
        let mut e = Election::start(ServerId(1), 0, vote(1, 1, 9), 0, &m, &mut out);
        assert_eq!(e.on_link_down(ServerId(3), 0, &m), None, "no quorum yet");
        let d =
            e.on_notification(ServerId(2), vote(1, 1, 9), 1, PeerState::Looking, 0, &m, &mut out);
        assert_eq!(d, Some(Decision::Lead));

        // The same once the link goes down while the vote waits out the finalize wait.
        let mut e = Election::start(ServerId(1), 0, vote(1, 1, 9), 0, &m, &mut out);
        let d =
            e.on_notification(ServerId(2), vote(1, 1, 9), 1, PeerState::Looking, 0, &m, &mut out);
        assert_eq!(d, None, "member 3 is in reach and has not voted: wait");
        assert_eq!(e.on_link_down(ServerId(3), 5, &m), Some(Decision::Lead));

        // A voter whose link came back up is waited for again.
        let mut e = Election::start(ServerId(1), 0, vote(1, 1, 9), 0, &m, &mut out);
        e.set_unreachable(BTreeSet::from([ServerId(3)]));
        e.on_link_up(ServerId(3), &mut out);
        let d =
            e.on_notification(ServerId(2), vote(1, 1, 9), 1, PeerState::Looking, 0, &m, &mut out);
        assert_eq!(d, None);
        assert_eq!(e.deadline(), FINALIZE_WAIT_MS);
    }

    #[test]
    fn a_member_in_an_older_round_is_answered_and_its_vote_ignored() {
        let m = members(&[1, 2, 3], &[]);
        let mut out = Vec::new();
        let mut e = Election::start(ServerId(1), 4, vote(1, 1, 1), 0, &m, &mut out);
        out.clear();
        let d =
            e.on_notification(ServerId(2), vote(2, 9, 9), 2, PeerState::Looking, 0, &m, &mut out);
        assert_eq!(d, None);
        assert_eq!(e.proposal(), vote(1, 1, 1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, ServerId(2));
    }
}
