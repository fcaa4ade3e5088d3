//! The ZooKeeper client wire protocol: jute encoding, typed records, framing.
//!
//! Pure functions over bytes. Decoders never panic on any input: they return `DecodeError`.
//! - `jute`: primitives and the small shared records (`Stat`, `ACL`), with the reader/writer;
//! - `frame`: length-prefixed framing and four-letter-word recognition;
//! - `request` / `response`: the per-opcode records, both directions;
//! - `codec`: the entry points the server core, the runtime and the clients call.

#![warn(missing_docs)]

pub mod codec;
pub mod frame;
pub mod jute;
pub mod proto;
mod request;
mod response;
pub mod types;

pub use codec::*;
pub use proto::*;
pub use types::*;
