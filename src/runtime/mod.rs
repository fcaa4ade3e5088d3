//! The tokio runtime: the only code that touches sockets, files and clocks. It turns bytes and
//! events into `core::Input`s and carries out the node's `Effect`s.

pub mod config;
pub mod disk;
pub mod fourlw;
pub mod net;
pub mod peer;
pub mod server;
pub mod slow;
pub mod tls;

pub use server::{
    start, start_with, Seams, ServerError, ServerFailure, ServerHandle, EXIT_DATA_DIR_UNUSABLE,
    EXIT_STORAGE_FAILURE,
};

/// A random `u64` (node seeds, backoff jitter), from the standard library's hash keys, which
/// come from the OS. Not `rand::random()`: rand 0.8 reaches the OS through getrandom 0.2's raw
/// `syscall(SYS_getrandom)`, which madsim cannot intercept, so simulations would stop being
/// reproducible; std calls libc's `getrandom`, which madsim replaces with its seeded generator.
/// SipHash under secret keys, so the values are as unpredictable as the keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher as _;
    std::collections::hash_map::RandomState::new().hash_one(0u8)
}
