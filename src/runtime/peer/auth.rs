//! Quorum SASL: the authentication step of a peer link, after the `Hello`s and before the link
//! is reported up.
//!
//! ZK compat: `QuorumCnxManager` runs `authLearner.authenticate` on the connection it initiated
//! and `authServer.authenticate` on the one it accepted, so the dialing member (the larger id)
//! is the SASL client ("learner", JAAS section `QuorumLearner`) and the accepting member the
//! SASL server ("server", `QuorumServer`), whatever their Zab roles. The three flags give
//! ZooKeeper's rolling-upgrade semantics (`SaslQuorumAuthLearner`, `SaslQuorumAuthServer`):
//! - `quorum.auth.enableSasl=false`: neither side authenticates; a dialer that tries is
//!   answered with an error (its credentials could not be checked).
//! - `learnerRequireSasl`: only then does the dialer authenticate, and it drops the link unless
//!   the acceptor answers `Success`.
//! - `serverRequireSasl`: the acceptor drops a dialer that does not authenticate or fails to;
//!   without it a failure is answered with `Error` (which ends the link, since a dialer that
//!   tried requires success) and a dialer that does not try is let through.
//!
//! The exchange: the dialer sends `Auth { InProgress, first token }`; the acceptor answers
//! `InProgress` with each challenge, `Success` with the last one (DIGEST-MD5's `rspauth`, which
//! the dialer checks) or `Error`. A dialer that does not authenticate sends one `Heartbeat`
//! right after the `Hello`s, so an acceptor with SASL enabled learns at once that no `Auth`
//! is coming (ZooKeeper peeks at its stream for the auth magic number instead).
//!
//! The mechanisms are behind [`SaslLearner`] and [`SaslServer`]; DIGEST-MD5 implements them.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{read_frame, write_frame, LinkFrame, PeerError, PeerStream};
use crate::core::ids::ServerId;

/// ZK compat: `SaslQuorumAuthServer.MAX_RETRIES`: challenges the acceptor sends before it
/// gives up on a dialer that never completes.
pub const AUTH_ROUNDS_MAX: usize = 5;

/// The status of an `Auth` frame. ZK compat: `QuorumAuth.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthStatus {
    /// More tokens follow.
    InProgress,
    /// The acceptor accepted the dialer; the token is its last challenge.
    Success,
    /// Refused; the token is the reason, as UTF-8 text, for the dialer's log.
    Error,
}

/// A mechanism's refusal: bad credentials, a malformed token, a protocol error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthFailure(pub String);

/// The client side of a SASL mechanism, for one link (ZooKeeper's `SaslClient`).
pub trait SaslLearner: Send {
    /// The token the exchange starts with (empty for DIGEST-MD5, which has no initial
    /// response).
    fn start(&mut self) -> Result<Vec<u8>, AuthFailure>;
    /// Answers a challenge; `None` when there is nothing more to send.
    fn respond(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, AuthFailure>;
    /// Whether the exchange is complete (for DIGEST-MD5: the server's `rspauth` checked).
    fn is_complete(&self) -> bool;
}

/// The server side of a SASL mechanism, for one link (ZooKeeper's `SaslServer`).
pub trait SaslServer: Send {
    /// Evaluates the learner's token; returns the next challenge (or the final one, once
    /// [`SaslServer::is_complete`]).
    fn respond(&mut self, response: &[u8]) -> Result<Vec<u8>, AuthFailure>;
    /// Whether the learner is authenticated.
    fn is_complete(&self) -> bool;
    /// The authenticated user, once complete.
    fn user(&self) -> Option<String>;
}

/// Makes a fresh mechanism for each link.
pub type LearnerFactory = Arc<dyn Fn() -> Box<dyn SaslLearner> + Send + Sync>;
/// Makes a fresh mechanism for each link.
pub type ServerFactory = Arc<dyn Fn() -> Box<dyn SaslServer> + Send + Sync>;

/// Quorum SASL as this member runs it; built once at start-up from `quorum.auth.*` and the
/// JAAS file.
#[derive(Clone)]
pub struct PeerSasl {
    /// `quorum.auth.learnerRequireSasl`: authenticate when dialing, require success.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: refuse dialers that do not authenticate.
    pub server_require: bool,
    /// The `QuorumLearner` credentials (required when `learner_require`).
    pub learner: Option<LearnerFactory>,
    /// The `QuorumServer` users.
    pub server: ServerFactory,
}

impl fmt::Debug for PeerSasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSasl")
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .field("learner", &self.learner.is_some())
            .finish_non_exhaustive()
    }
}

/// The dialer's side, right after the `Hello`s: authenticate if required, or say that we
/// will not. `sasl` is `None` when `quorum.auth.enableSasl` is false.
pub(super) async fn learn(
    sasl: Option<&PeerSasl>,
    stream: &mut PeerStream,
    buffer: &mut BytesMut,
    peer: ServerId,
    timeout: std::time::Duration,
) -> Result<(), PeerError> {
    let learner = match sasl {
        Some(PeerSasl { learner_require: true, learner: Some(factory), .. }) => factory,
        Some(PeerSasl { learner_require: true, learner: None, .. }) => {
            // Start-up refuses this configuration; a clear error rather than a panic anyway.
            return Err(PeerError::Auth(
                "quorum.auth.learnerRequireSasl without credentials".into(),
            ));
        }
        _ => {
            write_frame(stream, &LinkFrame::Heartbeat).await?;
            return Ok(());
        }
    };
    let mut mechanism = learner();
    let first = mechanism.start().map_err(|failure| PeerError::Auth(failure.0))?;
    write_frame(stream, &auth(AuthStatus::InProgress, first)).await?;
    loop {
        let answer = match read_frame(stream, buffer, timeout).await {
            Err(PeerError::Closed) => {
                return Err(PeerError::Auth(format!(
                    "server {peer} closed the connection during quorum SASL \
                     (is quorum.auth.enableSasl set there?)"
                )))
            }
            answer => answer?,
        };
        let LinkFrame::Auth { status, token } = answer else {
            return Err(PeerError::Auth(format!(
                "server {peer} answered our quorum SASL token with something else \
                 (is quorum.auth.enableSasl set there?)"
            )));
        };
        match status {
            AuthStatus::Error => {
                return Err(PeerError::Auth(format!(
                    "server {peer} refused our quorum credentials: {}",
                    String::from_utf8_lossy(&token)
                )));
            }
            AuthStatus::InProgress => {
                let answer = mechanism.respond(&token).map_err(|f| PeerError::Auth(f.0))?;
                write_frame(stream, &auth(AuthStatus::InProgress, answer.unwrap_or_default()))
                    .await?;
            }
            AuthStatus::Success => {
                if !mechanism.is_complete() {
                    let answer = mechanism.respond(&token).map_err(|f| PeerError::Auth(f.0))?;
                    if answer.is_some() {
                        return Err(PeerError::Auth(
                            "protocol error: a response after the server's success".into(),
                        ));
                    }
                }
                if !mechanism.is_complete() {
                    return Err(PeerError::Auth(format!(
                        "server {peer} reported success before our mechanism completed"
                    )));
                }
                info!(%peer, "authenticated to the peer with quorum SASL");
                return Ok(());
            }
        }
    }
}

/// The acceptor's side, right after the `Hello`s (only when `quorum.auth.enableSasl`): reads
/// the dialer's first frame; authenticates it if it is an `Auth`. Returns the frame to process
/// first when the dialer did not authenticate and that is allowed.
pub(super) async fn serve(
    sasl: &PeerSasl,
    stream: &mut PeerStream,
    buffer: &mut BytesMut,
    peer: ServerId,
    timeout: std::time::Duration,
) -> Result<Option<LinkFrame>, PeerError> {
    let token = match read_frame(stream, buffer, timeout).await? {
        LinkFrame::Auth { status: AuthStatus::InProgress, token } => token,
        LinkFrame::Auth { .. } => {
            return Err(PeerError::Auth("the first quorum SASL frame is not a request".into()))
        }
        first => {
            if sasl.server_require {
                let reason = "this server requires quorum SASL (quorum.auth.serverRequireSasl) \
                              and the dialer did not authenticate";
                let _ = write_frame(stream, &error(reason)).await;
                return Err(PeerError::Auth(format!(
                    "server {peer} did not authenticate and quorum.auth.serverRequireSasl=true"
                )));
            }
            return Ok(match first {
                LinkFrame::Heartbeat => None,
                frame => Some(frame),
            });
        }
    };
    match exchange(sasl, stream, buffer, token, timeout).await {
        Ok(user) => {
            info!(%peer, %user, "peer authenticated with quorum SASL");
            Ok(None)
        }
        Err(PeerError::Auth(reason)) => {
            let _ = write_frame(stream, &error(&reason)).await;
            if sasl.server_require {
                Err(PeerError::Auth(format!("server {peer} failed quorum SASL: {reason}")))
            } else {
                // ZK compat: "Maintaining learner connection despite SASL authentication
                // failure"; the dialer, which did try, drops the link on our `Error`.
                warn!(%peer, %reason, "quorum SASL failed; quorum.auth.serverRequireSasl=false, \
                       so the link is not refused here");
                Ok(None)
            }
        }
        Err(other) => Err(other),
    }
}

/// Runs the server mechanism over the dialer's tokens; returns the user.
async fn exchange(
    sasl: &PeerSasl,
    stream: &mut PeerStream,
    buffer: &mut BytesMut,
    mut token: Bytes,
    timeout: std::time::Duration,
) -> Result<String, PeerError> {
    let mut mechanism = (sasl.server)();
    for _ in 0..=AUTH_ROUNDS_MAX {
        let challenge = mechanism.respond(&token).map_err(|f| PeerError::Auth(f.0))?;
        if mechanism.is_complete() {
            write_frame(stream, &auth(AuthStatus::Success, challenge)).await?;
            return Ok(mechanism.user().unwrap_or_default());
        }
        write_frame(stream, &auth(AuthStatus::InProgress, challenge)).await?;
        token = match read_frame(stream, buffer, timeout).await? {
            LinkFrame::Auth { status: AuthStatus::InProgress, token } => token,
            _ => return Err(PeerError::Auth("the dialer left the quorum SASL exchange".into())),
        };
    }
    Err(PeerError::Auth(format!("no result after {AUTH_ROUNDS_MAX} rounds")))
}

fn auth(status: AuthStatus, token: Vec<u8>) -> LinkFrame {
    LinkFrame::Auth { status, token: Bytes::from(token) }
}

fn error(reason: &str) -> LinkFrame {
    LinkFrame::Auth { status: AuthStatus::Error, token: Bytes::copy_from_slice(reason.as_bytes()) }
}

#[cfg(all(test, not(madsim)))]
pub(crate) mod tests;
