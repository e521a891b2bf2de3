//! The `xe` command-line interface, served at `POST /cli` (the thin CLI protocol).

use crate::handlers::{Head, Reply};
use crate::Server;
use tokio::io::AsyncRead;

/// Serve one `xe` invocation.
pub async fn serve(
    _s: &Server,
    _head: &Head,
    _body: &mut (dyn AsyncRead + Unpin + Send),
    reply: &mut Reply<'_>,
) -> std::io::Result<()> {
    reply.not_found().await
}
