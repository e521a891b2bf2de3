//! Watching all events (guide §4.1.6): subscribe to every class and print
//! each change as it happens. Stops after `limit` events (default: never).
//!
//! `cargo run -p xenapi --example watch_events -- http://127.0.0.1:8080 root secret [limit]`

use xenapi::{EventOp, Result, Session};

pub async fn run(url: &str, user: &str, password: &str, limit: Option<usize>) -> Result<Vec<(String, EventOp)>> {
    let s = Session::builder(url).login(user, password).await?;
    // Skip the initial dump of every object: only changes from now on.
    let mut events = s.events(&["*"]).from_now().await?;
    let mut seen = Vec::new();
    while limit.is_none_or(|l| seen.len() < l) {
        let e = events.next().await?;
        println!("{:?} {} {}", e.op, e.class, e.r#ref);
        seen.push((e.class, e.op));
    }
    s.logout().await?;
    Ok(seen)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let limit = a.get(4).and_then(|l| l.parse().ok());
    run(
        a.get(1).map_or("http://127.0.0.1:8080", |s| s),
        a.get(2).map_or("root", |s| s),
        a.get(3).map_or("", |s| s),
        limit,
    )
    .await
    .map(|_| ())
}
