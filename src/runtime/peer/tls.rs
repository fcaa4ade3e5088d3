//! Quorum TLS: wrapping a peer connection in TLS on the dialing and the accepting side, and
//! `portUnification` (TLS and plain on the quorum port, told apart by the first byte).
//!
//! ZK compat: `QuorumCnxManager.initiateConnection` opens a TLS socket when `sslQuorum` is
//! set; its listener is a `UnifiedServerSocket` when `sslQuorum` or `portUnification` is set,
//! which takes plain connections only with `portUnification`. That gives the rolling switch:
//! `portUnification=true` everywhere (every port takes both, everyone still dials plain), then
//! `sslQuorum=true` (everyone dials TLS), then `portUnification=false` (plain is refused).
//!
//! A peer frame opens with its length prefix, whose first byte is 0 for any frame within
//! [`super::PEER_FRAME_MAX_BYTES`], so it is never a TLS handshake record (0x16).
//!
//! Both members' certificates are verified: the acceptor asks for the dialer's
//! (`ssl.quorum.clientAuth`, `need` by default) and, with `ssl.quorum.clientHostnameVerification`
//! (on by default for the quorum), checks it is valid for the dialer's address; the dialer
//! checks the acceptor's against the host of its `server.N` line
//! (`ssl.quorum.hostnameVerification`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::{read_more, write_frame, AuthStatus, LinkFrame, PeerError, PeerStream};
use crate::runtime::tls::{looks_like_tls, verify_peer_address, Rewind, TlsContext};

/// Quorum TLS as this member runs it.
#[derive(Clone)]
pub struct PeerTls {
    /// The `ssl.quorum.*` configs (reloaded in place with `sslQuorumReloadCertFiles`).
    pub context: Arc<TlsContext>,
    /// `sslQuorum`: dial with TLS, and refuse plain connections unless `accept_plain`.
    pub dial_tls: bool,
    /// `portUnification` (or no `sslQuorum`): plain connections are welcome too.
    pub accept_plain: bool,
    /// `sslQuorumReloadCertFiles`.
    pub reload: bool,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("dial_tls", &self.dial_tls)
            .field("accept_plain", &self.accept_plain)
            .field("reload", &self.reload)
            .finish_non_exhaustive()
    }
}

/// The accepting side: sniffs the first byte when the port takes TLS, and runs the server
/// handshake for a TLS connection. Returns the stream, the bytes already read from a plain
/// one, and whether it is TLS.
pub(super) async fn accept(
    tls: Option<&PeerTls>,
    stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(PeerStream, BytesMut, bool), PeerError> {
    let mut sniffed = BytesMut::with_capacity(256);
    let Some(tls) = tls else {
        return Ok((Box::new(stream), sniffed, false));
    };
    let mut stream = stream;
    read_more(&mut stream, &mut sniffed, timeout).await?;
    if !looks_like_tls(sniffed[0]) {
        if tls.accept_plain {
            return Ok((Box::new(stream), sniffed, false));
        }
        let reason = "this quorum port takes TLS only (sslQuorum=true, portUnification=false)";
        // Said in plain text, so the dialer can log why.
        let refusal = LinkFrame::Auth {
            status: AuthStatus::Error,
            token: bytes::Bytes::from_static(reason.as_bytes()),
        };
        let _ = write_frame(&mut stream, &refusal).await;
        return Err(PeerError::Tls(format!(
            "a plain-text connection from {addr} refused: {reason}; the dialing member does not \
             use quorum TLS"
        )));
    }
    let config = tls.context.server_config().ok_or_else(|| {
        PeerError::Tls("no TLS server config for the quorum port (ssl.quorum.keyStore)".into())
    })?;
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(Rewind::new(sniffed, stream));
    let stream = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| PeerError::Idle(timeout))?
        .map_err(|error| PeerError::Tls(format!("TLS handshake with {addr} failed: {error}")))?;
    if tls.context.settings().client_hostname_verification {
        let certificate = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        // No certificate passes only with `ssl.quorum.clientAuth=none|want`: nothing to check.
        if let Some(certificate) = certificate {
            if !verify_peer_address(certificate, addr.ip()) {
                return Err(PeerError::Tls(format!(
                    "the certificate of {addr} is not valid for its address \
                     (ssl.quorum.clientHostnameVerification)"
                )));
            }
        }
    }
    Ok((Box::new(stream), BytesMut::with_capacity(256), true))
}

/// The dialing side: runs the client handshake when `sslQuorum` is set. Returns the stream
/// and whether it is TLS.
pub(super) async fn dial(
    tls: Option<&PeerTls>,
    stream: TcpStream,
    host: &str,
    timeout: Duration,
) -> Result<(PeerStream, bool), PeerError> {
    let Some(tls) = tls.filter(|tls| tls.dial_tls) else {
        return Ok((Box::new(stream), false));
    };
    let config = tls.context.client_config().ok_or_else(|| {
        PeerError::Tls("no TLS client config for the quorum port (ssl.quorum.trustStore)".into())
    })?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|error| PeerError::Tls(format!("'{host}' is not a TLS server name: {error}")))?;
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
    let stream = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| PeerError::Idle(timeout))?
        .map_err(|error| {
            PeerError::Tls(format!(
                "TLS handshake with {host} failed: {error} (does it run with sslQuorum or \
                 portUnification?)"
            ))
        })?;
    Ok((Box::new(stream), true))
}

#[cfg(all(test, not(madsim)))]
mod tests;
