//! DIGEST-MD5 (the sans-IO mechanism of `core::auth`) behind the peer links' SASL seams, with
//! ZooKeeper's quorum service and server name.
//!
//! ZK compat: `SaslQuorumAuthLearner` / `SaslQuorumAuthServer` create their SASL ends with
//! protocol `zookeeper-quorum` and server name `zk-quorum-sasl-md5`; the learner's user and
//! password come from the `QuorumLearner` JAAS section, the accepted users from the
//! `user_<name>` options of `QuorumServer`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

use super::auth::{AuthFailure, LearnerFactory, SaslLearner, SaslServer, ServerFactory};
use crate::core::auth::digest_md5::{
    DigestMd5Client, DigestMd5Server, ServerStep, QUORUM_SERVER_NAME, QUORUM_SERVICE,
};

/// A learner that authenticates as `user` with `password`.
pub fn learner(user: String, password: String) -> LearnerFactory {
    Arc::new(move || {
        Box::new(Learner {
            mechanism: DigestMd5Client::new(
                QUORUM_SERVICE,
                QUORUM_SERVER_NAME,
                &user,
                &password,
                None,
            ),
            rng: fresh_rng(),
        })
    })
}

/// A server that accepts `users` (name → password).
pub fn server(users: BTreeMap<String, String>) -> ServerFactory {
    let users = Arc::new(users);
    Arc::new(move || {
        Box::new(Server {
            mechanism: DigestMd5Server::new(QUORUM_SERVICE, QUORUM_SERVER_NAME),
            users: users.clone(),
            user: None,
            rng: fresh_rng(),
        })
    })
}

/// A generator for one exchange's nonces, seeded from the process's random source (which
/// madsim replaces with its seeded one).
fn fresh_rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(crate::runtime::random_u64())
}

struct Learner {
    mechanism: DigestMd5Client,
    rng: ChaCha20Rng,
}

impl SaslLearner for Learner {
    fn start(&mut self) -> Result<Vec<u8>, AuthFailure> {
        Ok(self.mechanism.initial_response())
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, AuthFailure> {
        self.mechanism.evaluate(challenge, &mut self.rng).map_err(|e| AuthFailure(e.to_string()))
    }

    fn is_complete(&self) -> bool {
        self.mechanism.is_complete()
    }
}

struct Server {
    mechanism: DigestMd5Server,
    users: Arc<BTreeMap<String, String>>,
    user: Option<String>,
    rng: ChaCha20Rng,
}

impl SaslServer for Server {
    fn respond(&mut self, response: &[u8]) -> Result<Vec<u8>, AuthFailure> {
        let users = &self.users;
        let password_of = |name: &str| users.get(name).cloned();
        match self.mechanism.evaluate(response, &mut self.rng, &password_of) {
            Ok(ServerStep::Challenge(challenge)) => Ok(challenge),
            Ok(ServerStep::Complete { token, authentication_id, .. }) => {
                self.user = Some(authentication_id);
                Ok(token)
            }
            Err(error) => Err(AuthFailure(error.to_string())),
        }
    }

    fn is_complete(&self) -> bool {
        self.mechanism.is_complete()
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }
}
