//! An h2c (prior knowledge) client that sends a request body as scripted steps: data frames,
//! pauses between them (a trickle), and trailers. It reads the response with its trailers, so it
//! also serves for gRPC calls.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

/// One step of a request body.
#[derive(Debug, Clone)]
pub enum Step {
    Data(Vec<u8>),
    /// Waits before the next step.
    Wait(Duration),
    /// Ends the body with trailers.
    Trailers(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct H2Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    /// No steps: the request ends with its headers (END_STREAM on HEADERS).
    pub steps: Vec<Step>,
}

impl H2Request {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: "test.local".to_owned(),
            headers: Vec::new(),
            steps: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// The body as one data frame, with `content-length`.
    pub fn body(self, body: &[u8]) -> Self {
        self.header("content-length", body.len().to_string())
            .step(Step::Data(body.to_vec()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl H2Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header, or else a trailer: where gRPC puts `grpc-status` depends on the response.
    pub fn grpc(&self, name: &str) -> Option<&str> {
        self.header(name).or_else(|| self.trailer(name))
    }
}

fn pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Sends `request` and reads the whole response, within 20 s.
pub async fn send(port: u16, request: &H2Request) -> Result<H2Response, String> {
    tokio::time::timeout(Duration::from_secs(20), send_inner(port, request))
        .await
        .map_err(|_| "no response within 20s".to_owned())?
}

async fn send_inner(port: u16, request: &H2Request) -> Result<H2Response, String> {
    let stream = crate::client::connect(port).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(format!("http://{}{}", request.authority, request.path));
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body: BoxBody<Bytes, Infallible> = if request.steps.is_empty() {
        Empty::new().boxed()
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
        let steps = request.steps.clone();
        tokio::spawn(async move {
            for step in steps {
                let frame = match step {
                    Step::Wait(pause) => {
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    Step::Data(bytes) => Frame::data(Bytes::from(bytes)),
                    Step::Trailers(trailers) => {
                        let mut map = http::HeaderMap::new();
                        for (name, value) in trailers {
                            if let (Ok(name), Ok(value)) = (
                                http::HeaderName::from_bytes(name.as_bytes()),
                                http::HeaderValue::from_str(&value),
                            ) {
                                map.append(name, value);
                            }
                        }
                        Frame::trailers(map)
                    }
                };
                if tx.send(Ok(frame)).await.is_err() {
                    // The request is over (answered or reset): stop feeding it.
                    return;
                }
            }
        });
        StreamBody::new(ReceiverStream::new(rx)).boxed()
    };
    let http_request = builder.body(body).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(http_request)
        .await
        .map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().map(pairs).unwrap_or_default();
    Ok(H2Response {
        status: parts.status.as_u16(),
        headers: pairs(&parts.headers),
        body: collected.to_bytes().to_vec(),
        trailers,
    })
}

/// A gRPC message frame: uncompressed flag, big-endian length, message.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}
