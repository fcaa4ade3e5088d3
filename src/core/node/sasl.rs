//! The `sasl` request (DIGEST-MD5) and `enforce.auth`, on a client connection.
//!
//! ZK compat: `ZooKeeperServer.processSasl` and `AuthenticationHelper.enforceAuthentication`.
//! Both answer at once with zxid 0, outside the request pipeline, as ZooKeeper does. Nonces
//! come from the node's seeded RNG, drawn only when a client speaks SASL, so runs without SASL
//! are unchanged.

use bytes::Bytes;
use tracing::{error, info, warn};

use super::Node;
use crate::core::auth::ServerStep;
use crate::core::ids::{ConnId, SessionId};
use crate::core::io::Effect;
use crate::wire::proto::{ReplyHeader, Response};
use crate::wire::types::{ErrorCode, Id};

impl Node {
    /// One token of a client's SASL exchange.
    pub(super) fn on_sasl(
        &mut self,
        conn_id: ConnId,
        session: SessionId,
        xid: i32,
        token: &[u8],
        effects: &mut Vec<Effect>,
    ) {
        let Some(sasl) = self.config.auth.sasl.as_ref() else {
            // ZK compat: without a JAAS Server section the connection has no SASL server;
            // ZooKeeper logs the NullPointerException and answers OK with no token.
            error!(%conn_id, "sasl request, but this server has no SASL login (no JAAS file \
                   or no server section in it): answering with no token");
            let reply = ReplyHeader { xid, zxid: 0, err: 0 };
            self.reply(conn_id, reply, Some(&Response::Sasl { token: None }), None, effects);
            return;
        };
        let Some(conn) = self.conns.get_mut(&conn_id) else { return };
        let exchange = conn.sasl.get_or_insert_with(|| Box::new(sasl.new_exchange()));
        let password_of = |user: &str| sasl.password_of(user);
        let step = exchange.evaluate(token, &mut self.rng, &password_of);
        let token = match step {
            Ok(ServerStep::Challenge(challenge)) => Some(Bytes::from(challenge)),
            Ok(ServerStep::Complete { token, authentication_id, .. }) => {
                let authorization_id = sasl.authorization_id(&authentication_id);
                info!(
                    "Session 0x{:x}: adding SASL authorization for authorizationID: {}",
                    session.0, authorization_id
                );
                let mut added = vec![Id::new("sasl", &authorization_id)];
                if self.config.auth.is_super_user(&authorization_id) {
                    info!(
                        "Session 0x{:x}: Authenticated Id '{}' as super user",
                        session.0, authorization_id
                    );
                    added.push(Id::new("super", ""));
                }
                for id in added {
                    if !conn.ids.contains(&id) {
                        conn.ids.push(id);
                    }
                }
                Some(Bytes::from(token))
            }
            Err(failure) => {
                warn!("Client {} failed to SASL authenticate: {failure}", conn.addr);
                let auth = &self.config.auth;
                if auth.allow_sasl_failed_clients && !auth.sasl_required() {
                    warn!("Maintaining client connection despite SASL authentication failure.");
                    None
                } else {
                    let code = if auth.sasl_required() {
                        warn!(
                            "Closing client connection due to server requires client SASL \
                             authentication, but client SASL authentication has failed, or \
                             client is not configured with SASL authentication."
                        );
                        ErrorCode::SessionClosedRequireSaslAuth
                    } else {
                        warn!("Closing client connection due to SASL authentication failure.");
                        ErrorCode::AuthFailed
                    };
                    let reply = ReplyHeader { xid, zxid: 0, err: code.code() };
                    let body = Response::Sasl { token: None };
                    self.send(conn_id, crate::wire::encode_error_reply(reply, &body), effects);
                    self.close_conn(conn_id, effects);
                    return;
                }
            }
        };
        let reply = ReplyHeader { xid, zxid: 0, err: 0 };
        self.reply(conn_id, reply, Some(&Response::Sasl { token }), None, effects);
    }

    /// ZK compat: `AuthenticationHelper.enforceAuthentication`: with `enforce.auth`, a request
    /// from a connection without an id of a required scheme is answered
    /// `SessionClosedRequireSaslAuth` and the connection closed. True when it may go on.
    pub(super) fn enforce_auth(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        effects: &mut Vec<Effect>,
    ) -> bool {
        let auth = &self.config.auth;
        if auth.enforce_schemes.is_empty() {
            return true;
        }
        let Some(conn) = self.conns.get(&conn_id) else { return false };
        if auth.allows(conn.ids.iter().map(|id| id.scheme.as_str())) {
            return true;
        }
        let schemes: Vec<&str> = conn.ids.iter().map(|id| id.scheme.as_str()).collect();
        error!(
            "Client authentication scheme(s) {:?} does not match with any of the expected \
             authentication scheme {:?}, closing session.",
            schemes, auth.enforce_schemes
        );
        let err = ErrorCode::SessionClosedRequireSaslAuth.code();
        self.reply(conn_id, ReplyHeader { xid, zxid: 0, err }, None, None, effects);
        self.close_conn(conn_id, effects);
        false
    }
}
