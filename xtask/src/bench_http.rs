//! A minimal blocking HTTP/1.1 client over `std::net::TcpStream`, for the benchmark's own calls to
//! the emulated org (admin API, login, the raw download of Bulk result pages).
//!
//! It is deliberately bare: one request per connection (`Connection: close`), no TLS, no
//! redirects, no decompression. Bodies are handed to a sink chunk by chunk as they arrive
//! (`Content-Length`, `chunked`, or until the connection closes), so a download costs reading the
//! socket and nothing else: the floor the connector is measured against.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The size of the buffer a body is read through.
const READ_BUF: usize = 256 * 1024;

/// `host:port` of an `http://host:port[/...]` URL.
pub fn authority(base_url: &str) -> Result<String> {
    let rest = base_url
        .strip_prefix("http://")
        .with_context(|| format!("{base_url} is not an http:// URL"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() {
        bail!("{base_url} has no host");
    }
    Ok(authority.to_string())
}

/// A response whose body has not been read yet.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
}

/// One request: `method path` on `authority` with extra headers and an optional body.
pub fn send(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Result<Response> {
    let stream =
        TcpStream::connect(authority).with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((content_type, bytes)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    }
    head.push_str("\r\n");
    let mut writer = &stream;
    writer.write_all(head.as_bytes())?;
    if let Some((_, bytes)) = body {
        writer.write_all(bytes)?;
    }
    writer.flush()?;
    let mut reader = BufReader::with_capacity(READ_BUF, stream);
    let status_line = read_line(&mut reader)?;
    let status = parse_status(&status_line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader)?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            bail!("malformed header line {line:?}");
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Response {
        status,
        headers,
        reader,
    })
}

fn parse_status(line: &str) -> Result<u16> {
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code
            .parse()
            .with_context(|| format!("bad status line {line:?}")),
        _ => bail!("bad status line {line:?}"),
    }
}

/// A CRLF- (or LF-) terminated line without its terminator.
fn read_line(reader: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    let n = reader.read_line(&mut line)?;
    if n == 0 {
        bail!("connection closed in the middle of a response head");
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads the body, handing each piece to `sink` as it arrives; returns the bytes read.
    pub fn read_body(mut self, sink: &mut dyn FnMut(&[u8])) -> Result<u64> {
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = self
            .header("content-length")
            .map(|v| v.parse::<u64>())
            .transpose()
            .context("bad content-length")?;
        if chunked {
            read_chunked(&mut self.reader, sink)
        } else if let Some(length) = length {
            read_exact_to(&mut self.reader, length, sink)
        } else {
            read_to_end(&mut self.reader, sink)
        }
    }

    /// The whole body as text.
    pub fn text(self) -> Result<String> {
        let mut body = Vec::new();
        self.read_body(&mut |b| body.extend_from_slice(b))?;
        String::from_utf8(body).context("the body is not UTF-8")
    }

    /// The body as JSON; a status outside 2xx is an error naming the body.
    pub fn json(self) -> Result<serde_json::Value> {
        let status = self.status;
        let text = self.text()?;
        if !(200..300).contains(&status) {
            bail!("HTTP {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("the body is not JSON: {text:.200}"))
    }
}

fn read_exact_to(
    reader: &mut impl BufRead,
    mut left: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<u64> {
    let total = left;
    while left > 0 {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            bail!("connection closed with {left} body bytes still expected");
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        sink(&buf[..n]);
        reader.consume(n);
        left -= n as u64;
    }
    Ok(total)
}

fn read_to_end(reader: &mut impl BufRead, sink: &mut dyn FnMut(&[u8])) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let n = buf.len();
        sink(buf);
        reader.consume(n);
        total += n as u64;
    }
}

fn read_chunked(reader: &mut impl BufRead, sink: &mut dyn FnMut(&[u8])) -> Result<u64> {
    let mut total = 0u64;
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size line {line:?}"))?;
        if size == 0 {
            // trailers, up to the empty line
            while !read_line(reader)?.is_empty() {}
            return Ok(total);
        }
        total += read_exact_to(reader, size, sink)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            bail!("a chunk is not followed by CRLF");
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Serves one canned answer on a local port and returns the port and the request it saw.
    fn serve_once(answer: Vec<u8>) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // read the head (and a small body) until the blank line plus any content-length
            loop {
                let n = stream.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream.write_all(&answer).unwrap();
            String::from_utf8_lossy(&seen).to_string()
        });
        (addr, handle)
    }

    #[test]
    fn chunked_bodies_are_reassembled_and_headers_read() {
        let answer =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSforce-Locator: null\r\n\r\n\
                       5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
                .to_vec();
        let (addr, server) = serve_once(answer);
        let response = send(&addr, "GET", "/x?a=1", &[("Accept-Encoding", "gzip")], None).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("SFORCE-LOCATOR"), Some("null"));
        let mut pieces = 0;
        let mut body = Vec::new();
        let n = response
            .read_body(&mut |b| {
                pieces += 1;
                body.extend_from_slice(b);
            })
            .unwrap();
        assert_eq!(n, 12);
        assert_eq!(body, b"hello, world");
        assert!(pieces >= 2);
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /x?a=1 HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Accept-Encoding: gzip\r\n"));
        assert!(request.contains("Connection: close\r\n"));
    }

    #[test]
    fn content_length_bodies_and_posted_bodies() {
        let answer = b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"id\":\"7\"}\n".to_vec();
        let (addr, server) = serve_once(answer);
        let response = send(
            &addr,
            "POST",
            "/jobs",
            &[],
            Some(("application/json", b"{\"q\":1}")),
        )
        .unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.json().unwrap()["id"], "7");
        let request = server.join().unwrap();
        assert!(request.contains("Content-Length: 7\r\n"));
        assert!(request.ends_with("\r\n\r\n{\"q\":1}"), "{request}");
    }

    #[test]
    fn error_statuses_and_short_bodies_are_errors() {
        let (addr, _server) =
            serve_once(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\noops!".to_vec());
        let err = send(&addr, "GET", "/", &[], None)
            .unwrap()
            .json()
            .unwrap_err();
        assert!(err.to_string().contains("HTTP 400: oops!"), "{err}");

        let (addr, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort".to_vec());
        let err = send(&addr, "GET", "/", &[], None)
            .unwrap()
            .read_body(&mut |_| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("45 body bytes still expected"),
            "{err}"
        );

        let (addr, _server) = serve_once(b"garbage\r\n\r\n".to_vec());
        assert!(send(&addr, "GET", "/", &[], None).is_err());
    }

    #[test]
    fn urls_and_form_values() {
        assert_eq!(
            authority("http://127.0.0.1:8765").unwrap(),
            "127.0.0.1:8765"
        );
        assert_eq!(authority("http://h:1/services").unwrap(), "h:1");
        assert!(authority("https://h").is_err());
        assert_eq!(form_encode("a b+c/=é"), "a+b%2Bc%2F%3D%C3%A9");
    }
}
