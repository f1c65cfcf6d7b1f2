//! The HTTPS client one node of the pair talks to the other's Data Plane API with.
//!
//! A small hyper client (`hyper::client::conn::http1`) over tokio-rustls, one connection per
//! request, rather than hyper-util's pooled client with hyper-rustls: the pair makes about one
//! request a second to a single address, so a pool buys nothing, and the crate already has hyper,
//! rustls and tokio-rustls — hyper-rustls would add its own dependency tree (and a choice of root
//! stores) to trust exactly one CA file. The peer's certificate is verified against the pair's CA
//! with the peer's management IP as the name (its SANs hold it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use super::HaError;

/// The largest answer read from the peer (a status or a refusal; replicas go the other way).
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to {addr}: {cause}")]
    Connect {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("TLS with {addr} failed: {cause}")]
    Tls {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("HTTP with {addr} failed: {cause}")]
    Http { addr: SocketAddr, cause: String },
    #[error("no answer from {addr} within {} ms", .after.as_millis())]
    Timeout { addr: SocketAddr, after: Duration },
}

/// The peer's Data Plane API.
pub struct PeerClient {
    addr: SocketAddr,
    name: ServerName<'static>,
    tls: TlsConnector,
    /// `Basic …` of the pair's credentials (marked sensitive: never printed by hyper).
    authorization: HeaderValue,
}

/// Aborts the connection's task when the request is done or abandoned (timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The rustls client configuration trusting exactly the CA certificates in `ca_file`.
pub fn client_config(ca_file: &Path) -> Result<ClientConfig, HaError> {
    let bad = |problem: String| HaError::Ca {
        path: ca_file.to_path_buf(),
        problem,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let provider = crate::server::crypto_provider();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl PeerClient {
    pub fn new(addr: SocketAddr, config: ClientConfig, authorization: HeaderValue) -> PeerClient {
        let mut authorization = authorization;
        authorization.set_sensitive(true);
        PeerClient {
            addr,
            name: ServerName::IpAddress(addr.ip().into()),
            tls: TlsConnector::from(Arc::new(config)),
            authorization,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One request with a JSON body (or none); the status and the body of the answer.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), PeerError> {
        tokio::time::timeout(timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| PeerError::Timeout {
                addr: self.addr,
                after: timeout,
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), PeerError> {
        let addr = self.addr;
        let http = |cause: String| PeerError::Http { addr, cause };
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|cause| PeerError::Connect { addr, cause })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|cause| PeerError::Tls { addr, cause })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| http(e.to_string()))?;
        let _conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, addr.to_string())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONNECTION, "close");
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| http(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| http(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}
