//! The tokio runtime: the only code that touches sockets, files and clocks.

pub mod config;
pub mod disk;
pub mod fourlw;
