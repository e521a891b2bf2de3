//! Fetching an XVA for `VM.import(url, …)`: a plain HTTP GET (optionally
//! with `user:password@` basic credentials), the body handed back as a
//! stream.

use crate::{ApiError, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

fn err(msg: impl Into<String>) -> ApiError {
    ApiError::ImportError { msg: msg.into() }
}

struct Url {
    host: String,
    port: u16,
    path: String,
    auth: Option<String>,
}

fn parse(url: &str) -> Result<Url> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => return Err(err(format!("unsupported URL scheme {scheme:?} (http only)"))),
        None => return Err(err(format!("not a URL: {url:?}"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, authority),
    };
    let bad_port = || err(format!("bad port in {url:?}"));
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        // [v6 address]:port
        let (h, rest) = v6.split_once(']').ok_or_else(|| err(format!("bad URL {url:?}")))?;
        match rest.strip_prefix(':') {
            Some(p) => (h, p.parse().map_err(|_| bad_port())?),
            None => (h, 80),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad_port())?),
            None => (hostport, 80),
        }
    };
    if host.is_empty() || path.contains(['\r', '\n', ' ']) {
        return Err(err(format!("bad URL {url:?}")));
    }
    Ok(Url { host: host.to_string(), port, path: path.to_string(), auth: auth.map(str::to_string) })
}

pub(crate) fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// GET `url`; returns the body (after the head) and its length if given.
pub async fn get(url: &str) -> Result<(Box<dyn AsyncRead + Unpin + Send>, Option<u64>)> {
    let u = parse(url)?;
    let mut sock = tokio::net::TcpStream::connect((u.host.as_str(), u.port))
        .await
        .map_err(|e| err(format!("cannot connect to {}:{}: {e}", u.host, u.port)))?;
    let mut req = format!("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: xapi-rs\r\n", u.path, u.host);
    if let Some(a) = &u.auth {
        req.push_str(&format!("Authorization: Basic {}\r\n", base64(a.as_bytes())));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.map_err(|e| err(format!("sending the request: {e}")))?;
    let mut buf = Vec::with_capacity(4096);
    let end = loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.map_err(|e| err(format!("reading the reply: {e}")))?;
        if n == 0 {
            return Err(err("the server closed the connection before replying"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return Err(err("the reply head is too large"));
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(&buf[..end]).map_err(|e| err(format!("bad reply: {e}")))?;
    let code = resp.code.unwrap_or(0);
    if code != 200 {
        return Err(err(format!("{url} answered HTTP {code}")));
    }
    let length = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
    let rest = buf.split_off(end);
    Ok((Box::new(std::io::Cursor::new(rest).chain(sock)), length))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn urls() {
        let u = parse("http://root:pw@10.0.0.1:8080/a.xva?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.auth.as_deref()),
            ("10.0.0.1", 8080, "/a.xva?x=1", Some("root:pw"))
        );
        let u = parse("http://host").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert!(parse("ftp://x/y").is_err());
        assert!(parse("nonsense").is_err());
        assert_eq!(base64(b"root:pw"), "cm9vdDpwdw==");
    }
}
