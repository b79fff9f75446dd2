//! The HTTP probe, run by init inside the container's network namespace: one HTTP/1.0 GET to
//! 127.0.0.1, retried until the port answers or the ready timeout passes; `httparse` reads
//! the response head.
use super::HttpAnswer;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const MAX_BODY: u64 = 64 << 20;

pub(super) fn get(port: u16, path: &str, ready: Duration) -> io::Result<HttpAnswer> {
    let deadline = Instant::now() + ready;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        let attempt = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(|s| request(s, port, path));
        match attempt {
            Ok(Some(a)) => return Ok(a),
            // Connection refused or closed without a response: the server is not ready yet.
            Ok(None) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => return Err(io::Error::other(format!("127.0.0.1:{port} closed the connection without a response"))),
            Err(e) => return Err(io::Error::new(e.kind(), format!("127.0.0.1:{port} did not answer within {}s: {e}", ready.as_secs()))),
        }
    }
}

fn request(mut s: TcpStream, port: u16, path: &str) -> io::Result<Option<HttpAnswer>> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: imgslim-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.take(MAX_BODY).read_to_end(&mut raw)?;
    if raw.is_empty() {
        return Ok(None);
    }
    parse(&raw).map(Some)
}

fn parse(raw: &[u8]) -> io::Result<HttpAnswer> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let head = match resp.parse(raw).map_err(|e| bad(format!("bad HTTP response: {e}")))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err(bad("truncated HTTP response head".into())),
    };
    let header = |name: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value).trim().to_string());
    let mut body = raw[head..].to_vec();
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body".into()))?;
    } else if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.truncate(n);
    }
    Ok(HttpAnswer { status: resp.code.unwrap_or(0), content_type: header("content-type"), body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_plain_and_chunked_responses() {
        let a = parse(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((a.status, a.content_type.as_deref(), &a.body[..]), (404, Some("text/html"), &b"abc"[..]));
        let c = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(c.body, b"abcde");
    }
}
