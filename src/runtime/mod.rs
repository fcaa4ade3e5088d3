//! The tokio runtime: the only code that touches sockets, files and clocks. It turns bytes and
//! events into `core::Input`s and carries out the node's `Effect`s.

pub mod config;
pub mod disk;
pub mod fourlw;
pub mod net;
pub mod peer;
pub mod server;

pub use server::{start, ServerError, ServerHandle};
