//! Zab: leader election, discovery, synchronisation and broadcast, as pure state machines used
//! by `Node`. See `docs/protocol.md` for the message timelines.

pub mod election;
pub mod messages;
pub mod quorum;

pub use messages::{Forwarded, PeerMsg, PeerState, SnapBody, Vote};
pub use quorum::{Membership, PeerRole};
