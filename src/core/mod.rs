//! The sans-IO server core. No tokio, clock, socket, file, thread or OS randomness lives here:
//! time, client bytes and durability arrive as `Input`s, and everything the node wants done
//! leaves as `Effect`s.

#![warn(missing_docs)]

pub mod auth;
pub mod canary;
pub mod config;
pub mod ids;
pub mod io;
pub mod node;
pub mod prep;
pub mod report;
pub mod session;
pub mod snapshot;
pub mod time;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zab;

pub use config::NodeConfig;
pub use ids::{ConnId, ServerId, SessionId, WriteId, Zxid};
pub use io::{DurableWrite, Effect, Input};
pub use node::Node;
pub use time::Now;

#[cfg(test)]
mod node_tests;

#[cfg(test)]
mod zab_tests;
