//! Test certificates made with rcgen at test time (never committed): a CA, and leaf
//! certificates it signs, written as ZooKeeper's PEM stores (key + chain in one file; a CA
//! bundle) or PKCS12 stores. Shared by the unit tests (`src/runtime/tls/tests.rs`, through
//! `#[path]`) and the client tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    SanType,
};

/// A test CA.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM-encoded.
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The PKCS#8 key, PEM.
    pub key_pem: String,
    /// The PKCS#8 key, DER.
    pub key_der: Vec<u8>,
}

impl TestCa {
    /// A new self-signed CA named `CN=<cn>`.
    pub fn new(cn: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("ca key");
        TestCa { issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert") }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `localhost` / 127.0.0.1 whose subject is `dn` (attributes in encoding
    /// order, e.g. `[(C, "US"), (O, "Acme"), (CN, "alice")]`).
    pub fn leaf(&self, dn: &[(DnType, &str)]) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        // rcgen starts with a CN of its own, which would keep first place in the order.
        params.distinguished_name = DistinguishedName::new();
        for (kind, value) in dn {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// A leaf with subject `CN=<cn>`.
    pub fn leaf_cn(&self, cn: &str) -> Leaf {
        self.leaf(&[(DnType::CommonName, cn)])
    }

    /// Writes the CA bundle (a PEM trust store) to `dir/name`.
    pub fn write_trust_pem(&self, dir: &Path, name: &str) -> PathBuf {
        write(dir, name, self.pem().as_bytes())
    }

    /// Writes the CA as a PKCS12 trust store.
    pub fn write_trust_p12(&self, dir: &Path, name: &str, password: &str) -> PathBuf {
        let mut store = KeyStore::new();
        let cert = Certificate::from_der(self.issuer.der()).expect("ca der");
        store.add_entry("ca", KeyStoreEntry::Certificate(cert));
        write(dir, name, &store.writer(password).write().expect("p12"))
    }
}

impl Leaf {
    /// ZooKeeper's PEM key store: the key and the certificate in one file.
    pub fn write_pem(&self, dir: &Path, name: &str) -> PathBuf {
        write(dir, name, format!("{}{}", self.key_pem, self.cert_pem).as_bytes())
    }

    /// A PKCS12 key store.
    pub fn write_p12(&self, dir: &Path, name: &str, password: &str) -> PathBuf {
        let key = PrivateKey::from_der(&self.key_der).expect("key der");
        let cert = Certificate::from_der(&self.cert_der).expect("cert der");
        let chain = PrivateKeyChain::new(b"1".to_vec(), key, [cert]);
        let mut store = KeyStore::new();
        store.add_entry("key", KeyStoreEntry::PrivateKeyChain(chain));
        write(dir, name, &store.writer(password).write().expect("p12"))
    }

    /// The certificate and key as two PEM files (what kazoo and openssl take).
    pub fn write_split(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        (
            write(dir, &format!("{stem}.crt"), self.cert_pem.as_bytes()),
            write(dir, &format!("{stem}.key"), self.key_pem.as_bytes()),
        )
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    // Write then rename, so a reloading server never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write store");
    std::fs::rename(&tmp, &path).expect("rename store");
    path
}
