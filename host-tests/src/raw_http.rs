//! A raw HTTP/1.1 client over a blocking TCP socket, for what a well-behaved client library will
//! not do: chunked bodies written by hand, bodies trickled slowly, several requests pipelined in
//! one write, upgrade requests, hanging up halfway. Every read and write is bounded by a timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any single read may wait.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// As the pause before a part of [`exchange`]: the part waits until the response has been read
/// (and so is never sent if it comes), or until the exchange's timeout. A request whose answer
/// must come before its body is all sent then does not depend on how fast the machine is.
pub const UNTIL_ANSWERED: Duration = Duration::MAX;

/// One response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The server said it will close the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// What became of a connection, looked at after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Still open, nothing more to read.
    Open,
    /// Closed by the server: a clean FIN after the last response.
    Closed,
    /// Reset by the server (RST).
    Reset,
    /// Unexpected bytes after the last response.
    Garbage,
}

/// One HTTP/1.1 connection.
pub struct RawConn {
    stream: TcpStream,
    /// Read but not yet consumed: the start of the next response.
    buf: Vec<u8>,
}

impl RawConn {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Self {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// How long a read may wait from now on.
    pub fn set_read_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// A second handle on the socket, for a writer thread.
    pub fn try_clone_stream(&self) -> std::io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// Closes both directions: the server sees the client hang up.
    pub fn hang_up(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn fill(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn take_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).take(at).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.fill()? == 0 {
                return Err(format!(
                    "connection closed mid-line; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(format!(
                    "connection closed after {} of {n} body bytes",
                    self.buf.len()
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one whole response (1xx responses included, as their own response). A response
    /// without a length is read to the end of the connection.
    pub fn read_response(&mut self) -> Result<RawResponse, String> {
        let status_line = self.take_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.take_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            loop {
                let size_line = self.take_line()?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| format!("bad chunk size {size_line:?}"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.take_line()?.is_empty() {}
                    break;
                }
                let chunk = self.take_exact(size)?;
                response.body.extend_from_slice(&chunk);
                self.take_exact(2)?;
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| format!("bad content-length {length:?}"))?;
            response.body = self.take_exact(length)?;
        } else {
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    /// Whether the server closed the connection, waiting up to `within` for it to say so.
    pub fn state_within(&mut self, within: Duration) -> ConnState {
        if !self.buf.is_empty() {
            return ConnState::Garbage;
        }
        let _ = self.stream.set_read_timeout(Some(within));
        let mut byte = [0u8; 1];
        let state = match self.stream.read(&mut byte) {
            Ok(0) => ConnState::Closed,
            Ok(_) => {
                self.buf.push(byte[0]);
                ConnState::Garbage
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ConnState::Open
            }
            Err(_) => ConnState::Reset,
        };
        let _ = self.stream.set_read_timeout(Some(READ_TIMEOUT));
        state
    }
}

/// A request head: `host: test.local` first, then `headers`, then the empty line.
pub fn head(method: &str, path: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: test.local\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A whole request with a content-length body.
pub fn with_length(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut headers = headers.to_vec();
    headers.push(("content-length", body.len().to_string()));
    let mut out = head(method, path, &headers);
    out.extend_from_slice(body);
    out
}

/// `body` as chunks of `chunk` bytes, with the last chunk and `trailers`.
pub fn chunked(body: &[u8], chunk: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// What [`exchange`] saw.
#[derive(Debug)]
pub struct Exchange {
    pub response: Result<RawResponse, String>,
    /// The writer had sent every part when the response was complete.
    pub sent_all_before_response: bool,
    pub elapsed: Duration,
    /// The connection after the response (looked at only when `look_after` was given).
    pub after: Option<ConnState>,
}

/// Writes `parts` on a fresh connection from a writer thread, waiting the given pause before each
/// part, while this thread reads the response: a server may answer before the request is all
/// written (a trickled body, a body it will not read). Write errors after an answer are expected
/// and ignored. The writer stops once the response is read.
pub fn exchange(
    port: u16,
    parts: Vec<(Duration, Vec<u8>)>,
    look_after: Option<Duration>,
) -> Exchange {
    exchange_within(port, parts, look_after, READ_TIMEOUT)
}

/// As [`exchange`], giving up on the response after `timeout` without a byte.
pub fn exchange_within(
    port: u16,
    parts: Vec<(Duration, Vec<u8>)>,
    look_after: Option<Duration>,
    timeout: Duration,
) -> Exchange {
    let started = Instant::now();
    let conn = RawConn::connect(port).and_then(|conn| {
        conn.stream.set_read_timeout(Some(timeout))?;
        Ok(conn)
    });
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            return Exchange {
                response: Err(format!("connect: {e}")),
                sent_all_before_response: false,
                elapsed: started.elapsed(),
                after: None,
            }
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let writer = conn.try_clone_stream().ok().map(|mut stream| {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        std::thread::spawn(move || {
            for (pause, bytes) in parts {
                if pause == UNTIL_ANSWERED {
                    while !stop.load(Ordering::SeqCst) && started.elapsed() < timeout {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                } else if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                // Large parts go in slices so that a stop is seen between them.
                for slice in bytes.chunks(64 * 1024) {
                    if stop.load(Ordering::SeqCst) || stream.write_all(slice).is_err() {
                        return;
                    }
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    });
    let response = conn.read_response();
    let sent_all_before_response = done.load(Ordering::SeqCst);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let after = look_after.map(|within| conn.state_within(within));
    // Unblocks a writer stuck on a full socket.
    let _ = conn.stream.shutdown(Shutdown::Both);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Exchange {
        response,
        sent_all_before_response,
        elapsed,
        after,
    }
}
