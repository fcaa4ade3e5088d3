//! Role watch: after every step of a member, its role (mode, and whether it serves yet) is
//! traced when it changes, and the leaders checker ([`crate::checker::leaders`]) is fed with
//! what the node reports.
//!
//! This is the cheap part of the step path: a mode and a serving flag compared with the last
//! ones. Only a leader that is not established yet is asked for its full report (its learners:
//! who acknowledged NEWLEADER), which lasts a few steps per election.

use ensemble::core::ids::ServerId;
use ensemble::core::zab::PeerRole;

use crate::checker::leaders::{LeaderLog, Report};
use crate::checker::Violation;
use crate::simulator::Simulator;
use crate::trace::{RoleTrace, TraceEvent};

/// The last role traced for each member, and the leaders checker.
pub(crate) struct RoleWatch {
    /// Per server index: (life, role) after its last step.
    last: Vec<Option<(u32, RoleTrace)>>,
    leaders: LeaderLog,
}

impl RoleWatch {
    /// A watch over `members` (in server index order).
    pub(crate) fn new(members: &[(ServerId, PeerRole)]) -> RoleWatch {
        RoleWatch { last: vec![None; members.len()], leaders: LeaderLog::new(members) }
    }
}

impl Simulator {
    /// Traces a role change of server `idx` after its step and feeds the leaders checker.
    pub(crate) fn observe_role(&mut self, idx: usize) {
        let slot = &self.servers[idx];
        let Some(node) = slot.node.as_ref() else { return };
        let (server, life) = (slot.id, slot.incarnation);
        let (mode, serving) = (node.mode(), node.is_serving());
        let role = RoleTrace::of(mode, serving);
        let changed = self.roles.last[idx] != Some((life, role));
        let leaders = &mut self.roles.leaders;
        let wants_learners =
            leaders.active() && leaders.wants_learners(server, life, mode, serving);
        if !changed && !wants_learners {
            return;
        }
        if changed {
            self.roles.last[idx] = Some((life, role));
            self.trace.push(self.now, TraceEvent::Role { server, role });
        }
        if !leaders.active() {
            return;
        }
        let (report, durable) = if wants_learners {
            let durable: Vec<(ServerId, Option<u32>)> =
                self.servers.iter().map(|s| (s.id, s.disk.durable().current_epoch)).collect();
            (Some(node.report()), durable)
        } else {
            (None, Vec::new())
        };
        let report = Report {
            mode,
            serving,
            epoch: node.epochs().1,
            leader: node.leader(),
            learners: report.as_ref().map_or(&[], |r| &r.learners),
            durable_epochs: &durable,
        };
        let violations = leaders.observe(self.now, server, life, &report);
        if !violations.is_empty() {
            self.violations.extend(violations.into_iter().map(Violation::Leaders));
            self.halted = true;
        }
    }
}
