//! A throwaway PKI per server: a CA, a serving certificate for the loopback addresses and,
//! when client-certificate auth is on, a client certificate whose CN is the user name
//! (as kube-apiserver's x509 authenticator reads it).
//!
//! The crypto provider is chosen explicitly (ring) rather than taken from the process
//! default, so the server works whatever other rustls providers the test binary links.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// PEM-encoded client credentials.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// The DER of the certificate, to recognise it on a connection.
    pub cert_der: Vec<u8>,
}

pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    pub client: Option<ClientCert>,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        dn.push(DnType::OrganizationName, organization);
    }
    dn
}

impl Pki {
    /// Generates the CA and certificates; `client_user` asks for a client certificate.
    pub fn generate(client_user: Option<&str>) -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("plumbline-test-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let ca_der = ca_cert.der().clone();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::default();
        server_params.distinguished_name = name("kube-apiserver", None);
        server_params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
            SanType::DnsName("localhost".try_into()?),
            SanType::DnsName("kubernetes.default.svc".try_into()?),
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client = match client_user {
            Some(user) => {
                let client_key = KeyPair::generate()?;
                let mut params = CertificateParams::default();
                params.distinguished_name = name(user, Some("plumbline"));
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                let cert = params.signed_by(&client_key, &issuer)?;
                Some(ClientCert {
                    cert_pem: cert.pem(),
                    key_pem: client_key.serialize_pem(),
                    cert_der: cert.der().to_vec(),
                })
            }
            None => None,
        };
        Ok(Pki {
            ca_pem,
            ca_der,
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            client,
        })
    }

    /// The serving configuration. With `client_auth`, certificates signed by the CA are
    /// verified, and connections without one are still accepted (they answer 401 unless a
    /// token authenticates them), as kube-apiserver does. HTTP/1.1 only.
    pub fn server_config(&self, client_auth: bool) -> Result<ServerConfig, rustls::Error> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_der.clone())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder.with_single_cert(vec![self.server_cert.clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
