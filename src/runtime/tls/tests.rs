use std::collections::BTreeMap;
use std::sync::Arc;

use rcgen::DnType;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[path = "../../../tests/common/certs.rs"]
mod certs;
use certs::TestCa;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn settings(pairs: &[(&str, &str)], prefix: &str) -> Result<TlsSettings, TlsError> {
    TlsSettings::from_properties(&props(pairs), prefix)
}

#[test]
fn store_type_comes_from_the_type_or_the_file_name() {
    let s = settings(
        &[("ssl.keyStore.location", "/k/server.p12"), ("ssl.trustStore.location", "/k/ca.pem")],
        "ssl.",
    )
    .unwrap();
    assert_eq!(s.key_store.unwrap().kind, StoreType::Pkcs12);
    assert_eq!(s.trust_store.unwrap().kind, StoreType::Pem);
    let s =
        settings(&[("ssl.keyStore.location", "/k/store"), ("ssl.keyStore.type", "pem")], "ssl.")
            .unwrap();
    assert_eq!(s.key_store.unwrap().kind, StoreType::Pem);
    let error = settings(&[("ssl.keyStore.location", "/k/store.bin")], "ssl.").unwrap_err();
    assert!(error.to_string().contains("ssl.keyStore.type"), "{error}");
    let error =
        settings(&[("ssl.keyStore.location", "/k/s"), ("ssl.keyStore.type", "XYZ")], "ssl.")
            .unwrap_err();
    assert!(error.to_string().contains("XYZ"), "{error}");
}

#[test]
fn prefixes_are_separate_and_the_system_property_spelling_counts() {
    let p = [
        ("zookeeper.ssl.quorum.keyStore.location", "/q/quorum.pem"),
        ("ssl.keyStore.location", "/c/client.pem"),
    ];
    let quorum = settings(&p, "ssl.quorum.").unwrap();
    assert_eq!(quorum.key_store.unwrap().location, std::path::Path::new("/q/quorum.pem"));
    // ZK compat: QuorumX509Util verifies client host names by default, ClientX509Util not.
    assert!(quorum.client_hostname_verification);
    let client = settings(&p, "ssl.").unwrap();
    assert_eq!(client.key_store.unwrap().location, std::path::Path::new("/c/client.pem"));
    assert!(!client.client_hostname_verification);
}

#[test]
fn client_auth_protocols_and_ciphers_are_validated() {
    assert_eq!(settings(&[], "ssl.").unwrap().client_auth, ClientAuth::Need);
    assert_eq!(
        settings(&[("ssl.clientAuth", "WANT")], "ssl.").unwrap().client_auth,
        ClientAuth::Want
    );
    assert!(settings(&[("ssl.clientAuth", "maybe")], "ssl.").is_err());
    assert_eq!(settings(&[("ssl.protocol", "TLSv1.2")], "ssl.").unwrap().protocols.len(), 1);
    assert_eq!(settings(&[], "ssl.").unwrap().protocols.len(), 2);
    let error = settings(&[("ssl.enabledProtocols", "TLSv1.2,TLSv1.1")], "ssl.").unwrap_err();
    assert!(error.to_string().contains("'TLSv1.1' is not supported"), "{error}");
    let ok = settings(
        &[("ssl.ciphersuites", "TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")],
        "ssl.",
    )
    .unwrap();
    assert_eq!(ok.cipher_suites.unwrap().len(), 2);
    let error =
        settings(&[("ssl.ciphersuites", "TLS_RSA_WITH_AES_128_CBC_SHA")], "ssl.").unwrap_err();
    assert!(
        error.to_string().contains("'TLS_RSA_WITH_AES_128_CBC_SHA' is not supported"),
        "{error}"
    );
    // Only TLS 1.3 suites with only TLS 1.2 enabled: nothing could be negotiated.
    assert!(settings(
        &[("ssl.ciphersuites", "TLS_AES_128_GCM_SHA256"), ("ssl.enabledProtocols", "TLSv1.2")],
        "ssl."
    )
    .is_err());
}

#[test]
fn password_path_overrides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let s = settings(
        &[
            ("ssl.keyStore.location", "/k/a.p12"),
            ("ssl.keyStore.password", "ignored"),
            ("ssl.keyStore.passwordPath", secret.to_str().unwrap()),
        ],
        "ssl.",
    )
    .unwrap();
    assert_eq!(s.key_store.unwrap().password, "s3cret");
}

#[test]
fn a_jks_store_is_refused_with_the_conversion_command() {
    let s = settings(&[("ssl.keyStore.location", "/k/server.jks")], "ssl.").unwrap();
    let error = server_config(&s).unwrap_err().to_string();
    assert!(
        error.contains("keytool -importkeystore -srckeystore /k/server.jks -destkeystore /k/server.p12 -deststoretype PKCS12"),
        "{error}"
    );
}

#[test]
fn subject_is_printed_as_java_prints_it() {
    let ca = TestCa::new("ca");
    let leaf = ca.leaf(&[
        (DnType::CountryName, "US"),
        (DnType::OrganizationName, "Acme, Inc."),
        (DnType::OrganizationalUnitName, "eng"),
        (DnType::CommonName, " alice=admin "),
    ]);
    assert_eq!(
        subject_dn(&leaf.cert_der).unwrap(),
        "CN=\\ alice\\=admin\\ ,OU=eng,O=Acme\\, Inc.,C=US"
    );
    // A type without an RFC 2253 keyword prints as its OID and the DER value in hex.
    let leaf = ca.leaf(&[
        (DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]), "a@b"),
        (DnType::CommonName, "bob"),
    ]);
    assert_eq!(subject_dn(&leaf.cert_der).unwrap(), "CN=bob,1.2.840.113549.1.9.1=#0c03614062");
}

/// One handshake through `acceptor`'s config; the client's view of the server certificate
/// and the server's view of the client's subject.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<(Vec<u8>, Option<String>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls =
            tokio_rustls::TlsAcceptor::from(server).accept(tcp).await.map_err(|e| e.to_string())?;
        let subject = peer_subject(tls.get_ref().1);
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        tls.write_all(&byte).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(subject)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let connected = tokio_rustls::TlsConnector::from(client).connect(name, tcp).await;
    let mut tls = match connected {
        Ok(tls) => tls,
        Err(error) => {
            let server = accept.await.unwrap();
            return Err(format!("client: {error}; server: {server:?}"));
        }
    };
    let cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let io = async {
        tls.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await
    };
    let io = io.await.map_err(|e| e.to_string());
    let subject = accept.await.unwrap();
    io?;
    Ok((cert, subject?))
}

#[tokio::test]
async fn pem_and_pkcs12_stores_make_working_configs_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let server_leaf = ca.leaf_cn("server");
    let client_leaf =
        ca.leaf(&[(DnType::OrganizationName, "Acme"), (DnType::CommonName, "client")]);
    let server_store = server_leaf.write_p12(dir.path(), "server.p12", "pw");
    let trust_p12 = ca.write_trust_p12(dir.path(), "trust.p12", "tpw");
    let client_store = client_leaf.write_pem(dir.path(), "client.pem");
    let trust_pem = ca.write_trust_pem(dir.path(), "ca.pem");
    let server = settings(
        &[
            ("ssl.keyStore.location", server_store.to_str().unwrap()),
            ("ssl.keyStore.password", "pw"),
            ("ssl.trustStore.location", trust_p12.to_str().unwrap()),
            ("ssl.trustStore.password", "tpw"),
        ],
        "ssl.",
    )
    .unwrap();
    let context = TlsContext::new(server, Role::Server).unwrap();
    let client = settings(
        &[
            ("ssl.keyStore.location", client_store.to_str().unwrap()),
            ("ssl.trustStore.location", trust_pem.to_str().unwrap()),
        ],
        "ssl.",
    )
    .unwrap();
    let client = TlsContext::new(client, Role::Client).unwrap().client_config().unwrap();
    let (cert, subject) =
        handshake(context.server_config().unwrap(), client.clone()).await.unwrap();
    assert_eq!(cert, server_leaf.cert_der);
    assert_eq!(subject.as_deref(), Some("CN=client,O=Acme"));

    // A new server certificate on disk: the next handshake sees it.
    assert!(!context.reload_if_changed().unwrap());
    let renewed = ca.leaf_cn("server renewed");
    renewed.write_p12(dir.path(), "server.p12", "pw");
    assert!(context.reload_if_changed().unwrap());
    let (cert, _) = handshake(context.server_config().unwrap(), client.clone()).await.unwrap();
    assert_eq!(cert, renewed.cert_der);

    // A store that cannot be read keeps the old config.
    std::fs::write(&server_store, b"garbage").unwrap();
    assert!(context.reload_if_changed().is_err());
    let (cert, _) = handshake(context.server_config().unwrap(), client).await.unwrap();
    assert_eq!(cert, renewed.cert_der);
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let other = TestCa::new("other ca");
    let server_store = ca.leaf_cn("server").write_pem(dir.path(), "server.pem");
    let trust = ca.write_trust_pem(dir.path(), "ca.pem");
    let stranger = other.leaf_cn("mallory").write_pem(dir.path(), "mallory.pem");
    let server = settings(
        &[
            ("ssl.keyStore.location", server_store.to_str().unwrap()),
            ("ssl.trustStore.location", trust.to_str().unwrap()),
        ],
        "ssl.",
    )
    .unwrap();
    let server = TlsContext::new(server, Role::Server).unwrap().server_config().unwrap();
    let client = |store: Option<&std::path::Path>| {
        let mut p = vec![("ssl.trustStore.location", trust.to_str().unwrap())];
        if let Some(store) = store {
            p.push(("ssl.keyStore.location", store.to_str().unwrap()));
        }
        Arc::new(client_config(&settings(&p, "ssl.").unwrap()).unwrap())
    };
    let error = handshake(server.clone(), client(Some(&stranger))).await.unwrap_err();
    assert!(error.contains("UnknownCA"), "{error}");
    // clientAuth=need: no certificate at all is refused too.
    assert!(handshake(server, client(None)).await.is_err());
}

#[test]
fn peer_address_check_uses_the_ip_sans() {
    let ca = TestCa::new("ca");
    let leaf = ca.leaf_cn("member");
    let cert = rustls::pki_types::CertificateDer::from(leaf.cert_der);
    assert!(verify_peer_address(&cert, "127.0.0.1".parse().unwrap()));
    assert!(!verify_peer_address(&cert, "10.1.2.3".parse().unwrap()));
}
