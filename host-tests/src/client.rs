//! A test client: one request per connection, over HTTP/1.1 or h2c (prior knowledge), with
//! headers as raw bytes so tests can send what real clients send, odd values included.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::auth_server::CASE_HEADER;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub http2: bool,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: "test.local".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            http2: false,
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Tags the request with a test case, for the auth server's script and the records.
    pub fn case(self, case: &str) -> Self {
        self.header(CASE_HEADER, case)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` to a local port and reads the whole response, within 20 s.
pub async fn send(port: u16, request: &Request) -> Result<Response, String> {
    tokio::time::timeout(Duration::from_secs(20), send_inner(port, request))
        .await
        .map_err(|_| "no response within 20s".to_owned())?
}

async fn send_inner(port: u16, request: &Request) -> Result<Response, String> {
    send_over(connect(port).await?, request).await
}

/// A loopback connection to `port`, with Nagle off: the tests' requests go out at once.
pub(crate) async fn connect(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Sends `request` over an open connection (plain or TLS) and reads the whole response.
pub async fn send_over<S>(stream: S, request: &Request) -> Result<Response, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let mut builder = hyper::Request::builder().method(request.method.as_str());
    builder = if request.http2 {
        builder.uri(format!("http://{}{}", request.authority, request.path))
    } else {
        builder
            .uri(request.path.as_str())
            .header("host", request.authority.as_str())
    };
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let http_request = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| e.to_string())?;
    let response = if request.http2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender
            .send_request(http_request)
            .await
            .map_err(|e| e.to_string())?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        sender
            .send_request(http_request)
            .await
            .map_err(|e| e.to_string())?
    };
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
    })
}
