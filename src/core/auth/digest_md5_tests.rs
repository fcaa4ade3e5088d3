use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn users(name: &str) -> Option<String> {
    match name {
        "bob" => Some("secret".to_string()),
        "super" => Some("adminpw".to_string()),
        _ => None,
    }
}

fn run(
    username: &str,
    password: &str,
    authzid: Option<&str>,
) -> Result<(ServerStep, DigestMd5Client), DigestError> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    let mut client =
        DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, username, password, authzid);
    let ServerStep::Challenge(challenge) =
        server.evaluate(&client.initial_response(), &mut rng, &users)?
    else {
        panic!("first step must challenge");
    };
    let response = client.evaluate(&challenge, &mut rng)?.expect("a response");
    let done = server.evaluate(&response, &mut rng, &users)?;
    if let ServerStep::Complete { token, .. } = &done {
        assert!(server.is_complete());
        assert_eq!(client.evaluate(token, &mut rng)?, None);
        assert!(client.is_complete());
    }
    Ok((done, client))
}

#[test]
fn client_against_server() {
    let (done, _) = run("bob", "secret", None).unwrap();
    let ServerStep::Complete { authentication_id, authorization_id, .. } = done else {
        panic!("not complete: {done:?}");
    };
    assert_eq!(authentication_id, "bob");
    assert_eq!(authorization_id, None);
}

#[test]
fn authzid_is_reported_and_bound_into_the_digest() {
    let (done, _) = run("bob", "secret", Some("alice")).unwrap();
    let ServerStep::Complete { authorization_id, .. } = done else { panic!() };
    assert_eq!(authorization_id.as_deref(), Some("alice"));
}

#[test]
fn wrong_password_and_unknown_user_fail() {
    assert_eq!(run("bob", "nope", None).unwrap_err(), DigestError::WrongPassword("bob".into()));
    assert_eq!(run("eve", "x", None).unwrap_err(), DigestError::UnknownUser("eve".into()));
}

#[test]
fn rfc2831_example_vectors() {
    // RFC 2831 §4: response and rspauth of the IMAP example.
    let input = DigestInput {
        username: "chris",
        realm: "elwood.innosoft.com",
        password: "secret",
        nonce: "OA6MG9tEQGm2hh",
        cnonce: "OA6MHXh6VqTrRk",
        nc: "00000001",
        qop: "auth",
        digest_uri: "imap/elwood.innosoft.com",
        authzid: None,
        utf8: false,
    };
    assert_eq!(input.response_value(true), "d388dad90d4bbd760a152321f2143af7");
    assert_eq!(input.response_value(false), "ea40f60335c427b5527b84dbabcdfffd");
}

#[test]
fn server_accepts_the_rfc_example_response() {
    // The RFC's client response, replayed against a server whose nonce is the RFC's.
    let mut server = DigestMd5Server::new("imap", "elwood.innosoft.com");
    server.state = ServerState::Challenged { nonce: "OA6MG9tEQGm2hh".into() };
    let response = br#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pw = |u: &str| (u == "chris").then(|| "secret".to_string());
    let step = server.evaluate(response, &mut rng, &pw).unwrap();
    assert_eq!(
        step,
        ServerStep::Complete {
            token: b"rspauth=ea40f60335c427b5527b84dbabcdfffd".to_vec(),
            authentication_id: "chris".into(),
            authorization_id: None,
        }
    );
}

#[test]
fn server_accepts_a_pure_sasl_style_response() {
    // pure-sasl (kazoo) sends no charset, an unquoted qop and quoted other values.
    let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    server.state = ServerState::Challenged { nonce: "N0nce".into() };
    let input = DigestInput {
        username: "bob",
        realm: "zk-sasl-md5",
        password: "secret",
        nonce: "N0nce",
        cnonce: "123456",
        nc: "00000001",
        qop: "auth",
        digest_uri: "zookeeper/zk-sasl-md5",
        authzid: None,
        utf8: false,
    };
    let token = format!(
        "qop=auth,realm=\"zk-sasl-md5\",username=\"bob\",nonce=\"N0nce\",cnonce=\"123456\",\
         nc=00000001,digest-uri=\"zookeeper/zk-sasl-md5\",response={}",
        input.response_value(true)
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert!(matches!(
        server.evaluate(token.as_bytes(), &mut rng, &users),
        Ok(ServerStep::Complete { .. })
    ));
}

#[test]
fn challenge_looks_like_javas_and_nonce_comes_from_the_rng() {
    let challenge = |seed| {
        let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match server.evaluate(b"", &mut rng, &users).unwrap() {
            ServerStep::Challenge(c) => String::from_utf8(c).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let c = challenge(3);
    assert!(c.starts_with("realm=\"zk-sasl-md5\",nonce=\""), "{c}");
    assert!(c.ends_with("\",charset=utf-8,algorithm=md5-sess"), "{c}");
    assert_eq!(c, challenge(3));
    assert_ne!(c, challenge(4));
}

#[test]
fn replayed_and_out_of_order_tokens_fail() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    let mut client =
        DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, "bob", "secret", None);
    let ServerStep::Challenge(challenge) = server.evaluate(b"", &mut rng, &users).unwrap() else {
        panic!()
    };
    let response = client.evaluate(&challenge, &mut rng).unwrap().unwrap();
    // A response to a different server's nonce is refused.
    let mut other = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    other.evaluate(b"", &mut rng, &users).unwrap();
    assert!(matches!(
        other.evaluate(&response, &mut rng, &users),
        Err(DigestError::BadValue { name: "nonce", .. })
    ));
    assert!(server.evaluate(&response, &mut rng, &users).is_ok());
    // Replaying the response to the finished server fails.
    assert!(server.evaluate(&response, &mut rng, &users).is_err());
    // An initial response is refused, and the failure sticks.
    let mut fresh = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    assert!(fresh.evaluate(&response, &mut rng, &users).is_err());
    assert_eq!(fresh.evaluate(b"", &mut rng, &users), Err(DigestError::Failed));
    // A forged rspauth fails the client.
    let mut c2 = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, "bob", "secret", None);
    c2.evaluate(&challenge, &mut rng).unwrap();
    assert_eq!(
        c2.evaluate(b"rspauth=00000000000000000000000000000000", &mut rng),
        Err(DigestError::BadRspAuth)
    );
}

#[test]
fn wrong_digest_uri_is_refused() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
    let mut client =
        DigestMd5Client::new(QUORUM_SERVICE, CLIENT_SERVER_NAME, "bob", "secret", None);
    let ServerStep::Challenge(challenge) = server.evaluate(b"", &mut rng, &users).unwrap() else {
        panic!()
    };
    let response = client.evaluate(&challenge, &mut rng).unwrap().unwrap();
    assert!(matches!(
        server.evaluate(&response, &mut rng, &users),
        Err(DigestError::BadValue { name: "digest-uri", .. })
    ));
}

#[test]
fn directive_parsing() {
    let d = Directives::parse(br#" a = "x\"y" , ,B=plain , c="" "#).unwrap();
    assert_eq!(d.required("a").unwrap(), "x\"y");
    assert_eq!(d.required("b").unwrap(), "plain");
    assert_eq!(d.required("c").unwrap(), "");
    assert!(Directives::parse(br#"a="open"#).is_err());
    assert!(Directives::parse(b"novalue").is_err());
    assert!(Directives::parse(b"a=1,a=2").unwrap().required("a").is_err());
}

proptest! {
    #[test]
    fn garbage_never_panics_or_authenticates(
        first in proptest::collection::vec(any::<u8>(), 0..64),
        second in proptest::collection::vec(any::<u8>(), 0..300),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
        let _ = server.evaluate(&first, &mut rng, &users);
        let r = server.evaluate(&second, &mut rng, &users);
        let complete = matches!(r, Ok(ServerStep::Complete { .. }));
        prop_assert!(!complete);
        let mut client = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, "bob", "pw", None);
        let _ = client.evaluate(&first, &mut rng);
        let _ = client.evaluate(&second, &mut rng);
        prop_assert!(!client.is_complete() || second.starts_with(b"rspauth="));
    }

    #[test]
    fn mutated_response_is_refused(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut server = DigestMd5Server::new(CLIENT_SERVICE, CLIENT_SERVER_NAME);
        let mut client = DigestMd5Client::new(CLIENT_SERVICE, CLIENT_SERVER_NAME, "bob", "secret", None);
        let ServerStep::Challenge(ch) = server.evaluate(b"", &mut rng, &users).unwrap() else {
            unreachable!()
        };
        let mut resp = client.evaluate(&ch, &mut rng).unwrap().unwrap();
        let i = pos.index(resp.len());
        prop_assume!(resp[i] != byte);
        let original = resp.clone();
        resp[i] = byte;
        let r = server.evaluate(&resp, &mut rng, &users);
        // Only mutations that leave the meaning intact (the case of a hex digit or name) or
        // touch the unauthenticated maxbuf directive may still authenticate.
        if r.is_ok() {
            let lower = |v: &[u8]| String::from_utf8_lossy(v).to_ascii_lowercase();
            let text = String::from_utf8_lossy(&original).to_string();
            // The charset directive only matters for non-ASCII text.
            let within = |d: &str| {
                let at = text.find(d).unwrap_or(usize::MAX);
                i >= at && i < at.saturating_add(d.len())
            };
            // So does qop, which defaults to auth when a mutated name hides it.
            let in_maxbuf =
                within("maxbuf=65536") || within("charset=utf-8") || within("qop=auth");
            prop_assert!(lower(&resp) == lower(&original) || in_maxbuf, "{} -> {}", text, String::from_utf8_lossy(&resp));
        }
    }
}
