//! Ensemble: a ZooKeeper-compatible coordination service with a sans-IO core.

#![forbid(unsafe_code)]

pub mod core;
pub mod runtime;
pub mod storage;
pub mod wire;
