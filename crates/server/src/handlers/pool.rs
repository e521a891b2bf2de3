//! `POST /pool/join`: a host asking this one (the master) to join its pool,
//! with the credentials its caller gave and its whole database, over HTTPS. (The pool
//! database engine's own messages go to the engine's port, not here.)

use super::{Head, Reply};
use crate::Server;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// A whole database travels with a join.
const MAX_BODY: u64 = 1 << 30;

pub async fn serve(
    s: &Server,
    head: &Head,
    body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> io::Result<()> {
    // The request carries the caller's password and the answer the pool
    // secret: never in clear.
    if !head.local && !crate::http::over_tls() {
        tracing::warn!("a request to join this pool over plain HTTP: refused (joins go over HTTPS)");
        return reply.forbidden().await;
    }
    let Some(len) = head.content_length() else {
        return reply.bad_request("a join request needs a Content-Length").await;
    };
    if len > MAX_BODY {
        return reply.bad_request("the join request is too large").await;
    }
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    body.take(len).read_to_end(&mut buf).await?;
    let out = crate::pooling::admit(s, &buf).await;
    let h = [("content-type", "application/json".to_string()), ("content-length", out.len().to_string())];
    reply.head(200, "OK", &h).await?;
    let w = reply.body();
    w.write_all(&out).await?;
    w.flush().await
}
