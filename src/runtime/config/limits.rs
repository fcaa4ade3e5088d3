//! The client port's limits: connection throttling, request throttling and the per-connection
//! byte budgets.
//!
//! ZK compat: ZooKeeper reads the throttles only as system properties
//! (`zookeeper.connection_throttle_*` in `BlueThrottle`, `zookeeper.request_throttle_*` in
//! `RequestThrottler`); its administrator's guide names them `connectionMaxTokens`,
//! `requestThrottleLimit`, ... (the JMX attribute names). A `zoo.cfg` line becomes the system
//! property `zookeeper.<key>`, so both spellings are accepted here, with or without the
//! `zookeeper.` prefix. The byte budgets have no ZooKeeper counterpart (ZooKeeper queues
//! replies without a bound); they are Ensemble keys.

use super::properties::{self, Property};
use super::{bad, ConfigError};

/// The reply budget of a connection when `ensemble.connReplyBudgetBytes` is not set.
pub const REPLY_BUDGET_DEFAULT_BYTES: usize = 32 << 20;
/// The reply budget of the whole server when `ensemble.replyBudgetBytes` is not set.
pub const SERVER_REPLY_BUDGET_DEFAULT_BYTES: usize = 64 << 20;
/// The request budget of a connection when `ensemble.connRequestBudgetBytes` is not set.
pub const REQUEST_BUDGET_DEFAULT_BYTES: usize = 4 << 20;

/// What the client port enforces, besides `maxClientCnxns` and the handshake deadline.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLimits {
    /// `connectionMaxTokens` / `zookeeper.connection_throttle_tokens`: the token bucket of the
    /// connection throttle (0, the default, turns it off).
    pub connection_max_tokens: u32,
    /// `connectionTokenFillTime` / `zookeeper.connection_throttle_fill_time`: ms per refill.
    pub connection_fill_time_ms: u32,
    /// `connectionTokenFillCount` / `zookeeper.connection_throttle_fill_count`: tokens per refill.
    pub connection_fill_count: u32,
    /// `connectionFreezeTime` / `zookeeper.connection_throttle_freeze_time`: ms between
    /// adjustments of the random drop chance (-1, the default, turns random drops off).
    pub connection_freeze_time_ms: i64,
    /// `connectionDropIncrease` / `zookeeper.connection_throttle_drop_increase`.
    pub connection_drop_increase: f64,
    /// `connectionDropDecrease` / `zookeeper.connection_throttle_drop_decrease`.
    pub connection_drop_decrease: f64,
    /// `connectionDecreaseRatio` / `zookeeper.connection_throttle_decrease_ratio`.
    pub connection_decrease_ratio: f64,
    /// `requestThrottleLimit` / `zookeeper.request_throttle_max_requests`: requests the node
    /// may hold before new ones wait (0, the default, turns it off).
    pub request_throttle_limit: u32,
    /// `requestThrottleStallTime` / `zookeeper.request_throttle_stall_time`: ms a waiting
    /// request sleeps before it looks again.
    pub request_throttle_stall_ms: u32,
    /// `requestThrottleDropStale` / `zookeeper.request_throttle_drop_stale`: a request whose
    /// connection closed while it waited is dropped.
    pub request_throttle_drop_stale: bool,
    /// `ensemble.connReplyBudgetBytes`: unsent reply bytes a connection may have before it is
    /// dropped as a slow reader (reading from it pauses at half of this).
    pub reply_budget_bytes: usize,
    /// `ensemble.replyBudgetBytes`: unsent reply bytes of all connections together; a
    /// connection with unsent replies whose next reply would pass it is dropped as a slow
    /// reader.
    pub server_reply_budget_bytes: usize,
    /// `ensemble.connRequestBudgetBytes`: bytes of unanswered requests a connection may have
    /// before the server stops reading from it.
    pub request_budget_bytes: usize,
}

// The ratios are parsed within 0..=1, never NaN, so equality is an equivalence.
impl Eq for ClientLimits {}

impl Default for ClientLimits {
    fn default() -> ClientLimits {
        ClientLimits {
            connection_max_tokens: 0,
            connection_fill_time_ms: 1,
            connection_fill_count: 1,
            connection_freeze_time_ms: -1,
            connection_drop_increase: 0.02,
            connection_drop_decrease: 0.002,
            connection_decrease_ratio: 0.0,
            request_throttle_limit: 0,
            request_throttle_stall_ms: 100,
            request_throttle_drop_stale: true,
            reply_budget_bytes: REPLY_BUDGET_DEFAULT_BYTES,
            server_reply_budget_bytes: SERVER_REPLY_BUDGET_DEFAULT_BYTES,
            request_budget_bytes: REQUEST_BUDGET_DEFAULT_BYTES,
        }
    }
}

impl ClientLimits {
    /// Takes `p` if `name` (the key without a `zookeeper.` prefix) is one of these limits;
    /// returns whether it was.
    pub(super) fn apply(&mut self, name: &str, p: &Property) -> Result<bool, ConfigError> {
        match name {
            "connectionMaxTokens" | "connection_throttle_tokens" => {
                self.connection_max_tokens = non_negative(p)?;
            }
            "connectionTokenFillTime" | "connection_throttle_fill_time" => {
                self.connection_fill_time_ms = positive(p)?;
            }
            "connectionTokenFillCount" | "connection_throttle_fill_count" => {
                self.connection_fill_count = non_negative(p)?;
            }
            "connectionFreezeTime" | "connection_throttle_freeze_time" => {
                let ms = properties::decode_int(&p.value)
                    .filter(|&ms| ms >= -1)
                    .ok_or_else(|| bad(p, "a number of ms, or -1 (off)"))?;
                self.connection_freeze_time_ms = i64::from(ms);
            }
            "connectionDropIncrease" | "connection_throttle_drop_increase" => {
                self.connection_drop_increase = fraction(p)?;
            }
            "connectionDropDecrease" | "connection_throttle_drop_decrease" => {
                self.connection_drop_decrease = fraction(p)?;
            }
            "connectionDecreaseRatio" | "connection_throttle_decrease_ratio" => {
                self.connection_decrease_ratio = fraction(p)?;
            }
            "requestThrottleLimit" | "request_throttle_max_requests" => {
                self.request_throttle_limit = non_negative(p)?;
            }
            "requestThrottleStallTime" | "request_throttle_stall_time" => {
                self.request_throttle_stall_ms = positive(p)?;
            }
            "requestThrottleDropStale" | "request_throttle_drop_stale" => {
                // ZK compat: `Boolean.parseBoolean`: "true" in any case, anything else false.
                self.request_throttle_drop_stale = p.value.eq_ignore_ascii_case("true");
            }
            "ensemble.connReplyBudgetBytes" => self.reply_budget_bytes = bytes(p)?,
            "ensemble.connRequestBudgetBytes" => self.request_budget_bytes = bytes(p)?,
            "ensemble.replyBudgetBytes" => self.server_reply_budget_bytes = bytes(p)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn non_negative(p: &Property) -> Result<u32, ConfigError> {
    properties::decode_int(&p.value)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or_else(|| bad(p, "a non-negative integer"))
}

fn positive(p: &Property) -> Result<u32, ConfigError> {
    non_negative(p)?.checked_sub(1).map(|v| v + 1).ok_or_else(|| bad(p, "a positive integer"))
}

/// A probability or ratio in 0..=1 (`Double.parseDouble`).
fn fraction(p: &Property) -> Result<f64, ConfigError> {
    p.value
        .parse::<f64>()
        .ok()
        .filter(|value| (0.0..=1.0).contains(value))
        .ok_or_else(|| bad(p, "a number between 0 and 1"))
}

/// A byte count of at least 1 KiB (`Long.decode`).
fn bytes(p: &Property) -> Result<usize, ConfigError> {
    properties::decode_long(&p.value)
        .and_then(|value| usize::try_from(value).ok())
        .filter(|&value| value >= 1024)
        .ok_or_else(|| bad(p, "a number of bytes, at least 1024"))
}
