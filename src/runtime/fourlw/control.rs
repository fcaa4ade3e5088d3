//! The four-letter words that change or expose server-wide state rather than describe it:
//! `crst`, `srst` (reset counters), `gtmk`, `stmk` (the trace mask) and `hash` (the digest
//! history).
//!
//! ZK compat: `CnxnStatResetCommand`, `StatResetCommand`, `TraceMaskCommand`,
//! `SetTraceMaskCommand`, `DigestCommand` and the `stmk` branch of
//! `NIOServerCnxn.checkFourLetterWord` (ZooKeeper 3.8).

use crate::core::report::{ServerReport, StatsReset};

use super::{FourLetterWord, RuntimeInfo, NOT_SERVING};

/// ZK compat: `ZooTrace`'s initial mask, `CLIENT_REQUEST_TRACE_MASK | SERVER_PACKET_TRACE_MASK
/// | SESSION_TRACE_MASK | WARNING_TRACE_MASK` (2 | 16 | 32 | 256). Ensemble's logging does not
/// consult it (tracing filters do that job); `gtmk` and `stmk` keep and print it so scripts that
/// set and read it back work.
pub const TRACE_MASK_DEFAULT: i64 = 306;

/// What the runtime does with a four-letter word: write `text`, then close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FourLetterAnswer {
    /// The bytes to write.
    pub text: String,
    /// Counters the node must reset (`crst`, `srst`), queued before `text` is written.
    pub reset: Option<StatsReset>,
    /// The new trace mask (`stmk`).
    pub trace_mask: Option<i64>,
}

impl FourLetterAnswer {
    /// An answer that changes nothing.
    pub fn text(text: String) -> FourLetterAnswer {
        FourLetterAnswer { text, reset: None, trace_mask: None }
    }
}

/// The answer of a whitelisted control word, or `None` for a word that only describes.
pub(super) fn control(
    word: FourLetterWord,
    report: Option<&ServerReport>,
    info: &RuntimeInfo<'_>,
) -> Option<FourLetterAnswer> {
    let serving = report.is_some_and(|report| report.serving);
    let answer = match word {
        // ZK compat: a reset on a server that is not serving resets nothing.
        FourLetterWord::Crst if serving => FourLetterAnswer {
            reset: Some(StatsReset::Connections),
            ..FourLetterAnswer::text("Connection stats reset.\n".to_string())
        },
        FourLetterWord::Srst if serving => FourLetterAnswer {
            reset: Some(StatsReset::Server),
            ..FourLetterAnswer::text("Server stats reset.\n".to_string())
        },
        FourLetterWord::Crst | FourLetterWord::Srst => {
            FourLetterAnswer::text(NOT_SERVING.to_string())
        }
        // `pw.print(long)`: no newline. Answered whether or not the server is serving.
        FourLetterWord::Gtmk => FourLetterAnswer::text(info.trace_mask.to_string()),
        FourLetterWord::Stmk => match info.argument {
            Some(mask) => FourLetterAnswer {
                trace_mask: Some(mask),
                ..FourLetterAnswer::text(mask.to_string())
            },
            // ZooKeeper fails reading the missing long and closes the connection.
            None => FourLetterAnswer::text(String::new()),
        },
        // ZK compat: `DigestCommand` prints `pw.print(ZK_NOT_SERVING)`, without the newline
        // the other words add. Serving, it prints one `<zxid hex>: <digest>` line per entry of
        // `DataTree.getDigestLog`. Ensemble keeps no ZooKeeper-compatible tree digest, so the
        // history is empty: exactly ZooKeeper's answer with `zookeeper.digest.enabled=false`.
        FourLetterWord::Hash if serving => FourLetterAnswer::text(String::new()),
        FourLetterWord::Hash => FourLetterAnswer::text(NOT_SERVING.trim_end().to_string()),
        _ => return None,
    };
    Some(answer)
}
