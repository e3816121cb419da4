//! Certificates for the TLS tests, made at test time with rcgen, so no private key is
//! committed: a CA, a server certificate for `localhost` and 127.0.0.1, and a client
//! certificate whose subject is `CN=client,OU=Unit,O=Org,C=US`, all as PEM files in a
//! temporary directory.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The client certificate's subject, as Kafka writes the principal.
pub const CLIENT_SUBJECT: &str = "CN=client,OU=Unit,O=Org,C=US";

/// A CA and the certificates it signed, as PEM files.
pub struct TestPki {
    dir: tempfile::TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    /// A fresh CA with a server certificate and a client certificate.
    // No `Default`: this writes files and signs certificates, which a default should not.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("riffle-tls-test-")
            .tempdir()
            .expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name = name(&[(DnType::CommonName, "Riffle Test CA")]);
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let pki = TestPki { dir, issuer };
        std::fs::write(pki.ca(), pki.issuer.pem()).expect("write CA");
        pki.issue(
            "server",
            &["localhost", "127.0.0.1"],
            &[(DnType::CommonName, "localhost")],
        );
        pki.issue(
            "client",
            &[],
            &[
                (DnType::CountryName, "US"),
                (DnType::OrganizationName, "Org"),
                (DnType::OrganizationalUnitName, "Unit"),
                (DnType::CommonName, "client"),
            ],
        );
        pki
    }

    /// Writes `<stem>.pem` and `<stem>.key`: a certificate signed by the CA.
    pub fn issue(&self, stem: &str, names: &[&str], subject: &[(DnType, &str)]) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name = name(subject);
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("sign");
        std::fs::write(self.path(&format!("{stem}.pem")), certificate.pem()).expect("write");
        std::fs::write(self.path(&format!("{stem}.key")), key.serialize_pem()).expect("write");
    }

    /// A file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }
}

fn name(attributes: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in attributes {
        name.push(kind.clone(), *value);
    }
    name
}
