//! Certificates the tests make themselves (a CA, Envoy's server certificate, a client
//! certificate with a SPIFFE URI SAN) and the client side of TLS and mutual TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The server certificate's first DNS SAN, which Envoy's principal is (no URI SAN).
pub const SERVER_NAME: &str = "server.test";
/// Its second DNS SAN: the name clients ask for (SNI).
pub const SERVICE_NAME: &str = "api.test";
/// The client certificate's URI SAN, which the source principal is.
pub const CLIENT_SPIFFE_ID: &str = "spiffe://client.test/ns/default/sa/tester";

/// A CA with a server and a client certificate, written as PEM files for Envoy.
pub struct TestPki {
    ca_der: CertificateDer<'static>,
    pub ca_file: PathBuf,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
    client_cert_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

impl TestPki {
    /// Makes the certificates and writes Envoy's files into `dir`.
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("a directory for the certificates");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ext-authz test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");

        let server_key = KeyPair::generate().expect("a server key");
        let mut server_params =
            CertificateParams::new(vec![SERVER_NAME.to_owned(), SERVICE_NAME.to_owned()])
                .expect("server params");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "ext-authz test server");
        let server = server_params
            .signed_by(&server_key, &ca)
            .expect("a server certificate");

        let client_key = KeyPair::generate().expect("a client key");
        let mut client_params =
            CertificateParams::new(Vec::<String>::new()).expect("client params");
        client_params.subject_alt_names = vec![SanType::URI(
            CLIENT_SPIFFE_ID.try_into().expect("a URI SAN"),
        )];
        client_params
            .distinguished_name
            .push(DnType::CommonName, "tester");
        let client = client_params
            .signed_by(&client_key, &ca)
            .expect("a client certificate");

        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("a certificate file");
            path
        };
        Self {
            ca_der: ca.der().clone(),
            ca_file: write("ca.pem", ca.pem()),
            server_cert_file: write("server.pem", server.pem()),
            server_key_file: write("server.key", server_key.serialize_pem()),
            client_cert_der: client.der().clone(),
            client_key_der: client_key.serialize_der(),
        }
    }

    /// The listener's `transport_socket`: TLS with the server certificate, and with
    /// `require_client_certificate` when `mutual`.
    pub fn transport_socket(&self, mutual: bool) -> Value {
        let mut context = json!({
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"filename": self.server_cert_file.display().to_string()},
                    "private_key": {"filename": self.server_key_file.display().to_string()}
                }]
            }
        });
        if mutual {
            context["common_tls_context"]["validation_context"] =
                json!({"trusted_ca": {"filename": self.ca_file.display().to_string()}});
            context["require_client_certificate"] = json!(true);
        }
        context["@type"] = json!(
            "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
        );
        json!({"name": "envoy.transport_sockets.tls", "typed_config": context})
    }

    /// A client connector trusting the CA; presenting the client certificate when `mutual`.
    pub fn connector(&self, mutual: bool) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("the CA as a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        let mut config = if mutual {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.client_key_der.clone()));
            builder
                .with_client_auth_cert(vec![self.client_cert_der.clone()], key)
                .expect("client auth")
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Opens a TLS connection to a local port, asking for `sni`.
pub async fn connect(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(sni.to_owned()).map_err(std::io::Error::other)?;
    connector.connect(name, stream).await
}

/// Sends `request` over TLS (HTTP/1.1) and reads the whole response.
pub async fn send(
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    sni: &str,
    request: &crate::client::Request,
) -> Result<crate::client::Response, String> {
    let stream = connect(connector, port, sni)
        .await
        .map_err(|e| e.to_string())?;
    crate::client::send_over(stream, request).await
}
