//! Client-side file transfers: the server opens a task, tells the client
//! to GET or PUT a URL carrying `session_id` and `task_id`, waits for the
//! client's verdict and then for the task (xapi's `track_http_operation`).

use super::s;
use crate::cli::protocol::TRANSFER_TIMEOUT;
use crate::cli::{CliError, CliResult, Cx};
use crate::ApiError;
use cliproto::{Command, Response};
use model::Value;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Get,
    Put,
}

fn task_state(cx: &Cx<'_, '_>, task: &str) -> Option<(String, String, Vec<String>)> {
    let c = model::schema::class("task")?;
    let st = cx.s.db.read();
    let row = st.get(c, task)?;
    let status = row.get_by_name("status").and_then(Value::as_str).unwrap_or("").to_string();
    let result = row.get_by_name("result").and_then(Value::as_str).unwrap_or("").to_string();
    let err = row
        .get_by_name("error_info")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Some((status, result, err))
}

/// Wait until the task leaves `pending` (or the limit passes).
async fn settle(cx: &Cx<'_, '_>, task: &str, limit: Duration) -> Option<(String, String, Vec<String>)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let st = task_state(cx, task);
        match &st {
            Some((status, _, _)) if status != "pending" => return st,
            None => return None,
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Run one transfer; returns the task's result (an XML-RPC fragment).
pub async fn run(
    cx: &mut Cx<'_, '_>,
    dir: Dir,
    filename: &str,
    path: &str,
    query: &str,
    label: &str,
) -> CliResult<String> {
    let task = cx.call_str("task.create", vec![s(label), s("")]).await?;
    let url = format!("{path}?session_id={}&task_id={task}&{query}", cx.session);
    let cmd = match dir {
        Dir::Get => Command::HttpGet(filename.to_string(), url),
        Dir::Put => Command::HttpPut(filename.to_string(), url),
    };
    let outcome: CliResult<String> = async {
        cx.p.send(cmd).await?;
        let resp = cx.p.response(TRANSFER_TIMEOUT).await?;
        // The handler finishes the task as it closes the connection; after
        // a client failure give it a moment to record why.
        let wait = if resp == Response::Ok { Duration::from_secs(120) } else { Duration::from_secs(2) };
        match settle(cx, &task, wait).await {
            Some((status, result, _)) if status == "success" => Ok(result),
            Some((_, _, err)) if !err.is_empty() => Err(CliError::Api(ApiError::from_wire(&err))),
            _ if resp == Response::Ok => Err(CliError::Failure("the transfer finished but its task did not".into())),
            _ => Err(CliError::Api(ApiError::Other { code: "CLIENT_ERROR".into(), params: vec![] })),
        }
    }
    .await;
    // A task nobody finished would linger (destroy waits for completion).
    if task_state(cx, &task).is_some_and(|(status, _, _)| status == "pending") {
        let _ = cx.call("task.cancel", vec![s(task.clone())]).await;
    }
    let _ = cx.call("task.destroy", vec![s(task)]).await;
    outcome
}

/// The refs named in a task result (`<value>OpaqueRef:…</value>` items).
pub fn refs_in(result: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = result;
    while let Some(i) = rest.find("OpaqueRef:") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| c == '<' || c == '"' || c.is_whitespace()).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}
