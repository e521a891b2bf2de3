//! `GET /rrd_updates` (statistics since a time, for the host, VMs and SRs),
//! `GET /host_rrd`, `GET /vm_rrd?uuid=` and `GET /sr_rrd?uuid=` (one whole
//! RRD), each in XML or JSON as xapi's rrdd sends them. The figures come from [`crate::rrd`].

use super::{Head, Reply};
use crate::rrd::export::{self, Cf};
use crate::rrd::Rrd;
use crate::Server;
use model::schema::{CLASS_SR, CLASS_VM};
use model::types::fields;
use std::io;
use tokio::io::AsyncWriteExt;

/// One media range of an `Accept` header: (type, subtype, q).
fn media_ranges(accept: &str) -> Vec<(String, String, f64)> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let (ty, sub) = it.next()?.trim().split_once('/')?;
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.trim().parse::<f64>().ok()))
                .next()
                .unwrap_or(1.0);
            Some((ty.trim().to_ascii_lowercase(), sub.trim().to_ascii_lowercase(), q))
        })
        .collect()
}

/// The quality a list of ranges gives a media type: that of the most
/// specific range matching it.
fn quality(ranges: &[(String, String, f64)], mime: &str) -> Option<f64> {
    let (ty, sub) = mime.split_once('/')?;
    ranges
        .iter()
        .filter_map(|(t, s, q)| {
            let rank = match (t.as_str(), s.as_str()) {
                (a, b) if a == ty && b == sub => 2,
                (a, "*") if a == ty => 1,
                ("*", "*") => 0,
                _ => return None,
            };
            Some((rank, *q))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, q)| q)
}

/// xapi's `client_prefers_json`: an `Accept` header decides between
/// `application/json` and `text/xml` (JSON on a tie, so `*/*` gets JSON);
/// without one, or when it accepts neither, the `json` key (any value) does.
pub fn prefers_json(head: &Head) -> bool {
    if let Some(accept) = head.header("accept") {
        let ranges = media_ranges(accept);
        let j = quality(&ranges, "application/json").filter(|q| *q > 0.0);
        let x = quality(&ranges, "text/xml").filter(|q| *q > 0.0);
        match (j, x) {
            (Some(j), Some(x)) => return j >= x,
            (Some(_), None) => return true,
            (None, Some(_)) => return false,
            (None, None) => {}
        }
    }
    head.query.iter().any(|(k, _)| k == "json")
}

async fn send(reply: &mut Reply<'_>, json: bool, body: String) -> io::Result<()> {
    send_as(reply, if json { "application/json" } else { "text/xml" }, body).await
}

async fn send_as(reply: &mut Reply<'_>, ty: &str, body: String) -> io::Result<()> {
    let headers = [
        ("content-type", ty.to_string()),
        ("content-length", body.len().to_string()),
        ("access-control-allow-origin", "*".to_string()),
        ("access-control-allow-headers", "X-Requested-With".to_string()),
        ("cache-control", "no-cache, no-store".to_string()),
        ("connection", "close".to_string()),
    ];
    reply.head(200, "OK", &headers).await?;
    let w = reply.body();
    w.write_all(body.as_bytes()).await?;
    w.flush().await
}

pub async fn rrd_updates(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_rrd_updates").await? else { return Ok(()) };
    super::release(s, &auth);
    let Some(start) = head.param("start") else {
        return reply.bad_request("get_rrd_updates: missing the 'start' parameter").await;
    };
    let Ok(start) = start.trim().parse::<i64>() else {
        return reply.bad_request("get_rrd_updates: 'start' is not an integer").await;
    };
    let interval = head.param("interval").and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
    // xapi parses cf strictly and fails the request on a name it does not know.
    let cf = match head.param("cf") {
        None => None,
        Some(name) => match Cf::parse(name) {
            Some(cf) => Some(cf),
            None => return reply.bad_request("get_rrd_updates: 'cf' is not AVERAGE, MIN, MAX or LAST").await,
        },
    };
    // As xcp-rrdd: `vm_uuid` is all VMs unless given (`all`, `none` or one
    // uuid); `sr_uuid` is no SRs unless given (`all` or one uuid).
    let wanted: Vec<&str> = head.query.iter().filter(|(k, _)| k == "vm_uuid").map(|(_, v)| v.as_str()).collect();
    let all_vms = wanted.is_empty() || wanted.contains(&"all");
    let srs_wanted: Vec<&str> =
        head.query.iter().filter(|(k, _)| k == "sr_uuid").map(|(_, v)| v.as_str()).filter(|v| *v != "none").collect();
    let all_srs = srs_wanted.contains(&"all");
    let with_host = head.param("host") == Some("true");
    let host_prefix = format!("host:{}:", crate::rrd::sampler::host_uuid(s));
    // The rows wanted are picked under the lock (copying whole RRDs cost
    // more than the rows themselves); text is made after it.
    let (u, any) = {
        let g = s.rrds.lock();
        let host = g.host.iter().filter(|_| with_host).map(|r| (host_prefix.clone(), r));
        let vms =
            g.vms.iter().filter(|(u, _)| all_vms || wanted.contains(&u.as_str())).map(|(u, r)| (format!("vm:{u}:"), r));
        let srs = g
            .srs
            .iter()
            .filter(|(u, _)| all_srs || srs_wanted.contains(&u.as_str()))
            .map(|(u, r)| (format!("sr:{u}:"), r));
        let refs: Vec<(String, &Rrd)> = host.chain(vms).chain(srs).collect();
        (export::updates(&refs, start, interval, cf), !refs.is_empty())
    };
    if let Some(cf) = cf.filter(|_| u.legend.is_empty() && any) {
        // xapi's find_best_rras raises No_RRA_Available, which its handler
        // lets escape: the request fails rather than answer an empty update.
        let e = crate::internal(format!("No_RRA_Available: no {} archive", cf.as_str()));
        return reply.api_error(&e).await;
    }
    let json = prefers_json(head);
    send(reply, json, if json { u.to_json() } else { u.to_xml() }).await
}

async fn whole(reply: &mut Reply<'_>, head: &Head, rrd: Option<Rrd>) -> io::Result<()> {
    let Some(rrd) = rrd else { return reply.not_found().await };
    let json = prefers_json(head);
    send(reply, json, if json { export::dump_json(&rrd) } else { export::dump_xml(&rrd) }).await
}

pub async fn host_rrd(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_host_rrd").await? else { return Ok(()) };
    super::release(s, &auth);
    let rrd = s.rrds.lock().host.clone();
    whole(reply, head, rrd).await
}

pub async fn vm_rrd(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_vm_rrd").await? else { return Ok(()) };
    super::release(s, &auth);
    let rrd = head.param("uuid").and_then(|u| s.rrds.lock().vms.get(u.trim()).cloned());
    if rrd.is_none() {
        if let Some(address) = head.param("uuid").and_then(|u| resident_elsewhere(s, u.trim())) {
            return reply.redirect(&head.url_on(&address)).await;
        }
    }
    whole(reply, head, rrd).await
}

/// The address of the other host of the pool that runs the VM `uuid`.
fn resident_elsewhere(s: &Server, uuid: &str) -> Option<String> {
    use model::types::fields::{host as H, vm as VM};
    let st = s.db.read();
    let vm = st.table(&model::schema::CLASS_VM).by_uuid(uuid)?.to_string();
    let host = st.read(&vm, VM::RESIDENT_ON)?.into_string();
    if host == s.host {
        return None;
    }
    st.read(&host, H::ADDRESS).filter(|a| !a.is_empty())
}

/// One SR's RRD: 400 without a uuid (as xapi), 404 for an SR with none.
pub async fn sr_rrd(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_sr_rrd").await? else { return Ok(()) };
    super::release(s, &auth);
    let Some(uuid) = head.param("uuid") else {
        return reply.bad_request("get_sr_rrd: missing the 'uuid' parameter").await;
    };
    let rrd = s.rrds.lock().srs.get(uuid.trim()).cloned();
    whole(reply, head, rrd).await
}

/// An SR's figures copied out of the store.
struct SrRow {
    uuid: String,
    name: String,
    size: i64,
    used: i64,
}

/// Prometheus' scrape endpoint, authenticated as the other statistics
/// handlers (session cookie or query, or HTTP basic auth).
pub async fn metrics(s: &Server, head: &Head, reply: &mut Reply<'_>) -> io::Result<()> {
    let Some(auth) = super::require_auth(s, head, reply, "get_metrics").await? else { return Ok(()) };
    super::release(s, &auth);
    let (vm_c, sr_c) = (&CLASS_VM, &CLASS_SR);
    // Names and SR figures from one read of the store; RRD copies from one lock.
    let (names, srs, host_uuid, host_name) = {
        let st = s.db.read();
        let (uuid, label) = (fields::vm::UUID.index, fields::vm::NAME_LABEL.index);
        let names: std::collections::HashMap<String, String> = st
            .table(vm_c)
            .iter()
            .filter_map(|(_, r)| {
                Some((r.get(uuid).as_str()?.to_string(), r.get(label).as_str().unwrap_or("").to_string()))
            })
            .collect();
        let srs: Vec<SrRow> = st
            .table(sr_c)
            .iter()
            .map(|(_, r)| SrRow {
                uuid: r.read(fields::sr::UUID),
                name: r.read(fields::sr::NAME_LABEL),
                size: r.read(fields::sr::PHYSICAL_SIZE),
                used: r.read(fields::sr::PHYSICAL_UTILISATION),
            })
            .collect();
        let host_field = |f| st.read(&s.host, f).unwrap_or_default();
        (names, srs, host_field(fields::host::UUID), host_field(fields::host::NAME_LABEL))
    };
    // Only each RRD's newest points are copied (under the lock).
    let (host, vms, sr_rrds) = {
        let g = s.rrds.lock();
        let copy = |m: &std::collections::BTreeMap<String, Rrd>| {
            m.iter().map(|(u, r)| (u.clone(), r.newest_only())).collect::<Vec<_>>()
        };
        (g.host.as_ref().map(Rrd::newest_only), copy(&g.vms), copy(&g.srs))
    };
    let mut subjects = Vec::with_capacity(vms.len() + 1);
    if let Some(h) = &host {
        subjects.push(crate::rrd::prometheus::Subject { kind: "host", uuid: &host_uuid, name: &host_name, rrd: h });
    }
    for (u, r) in &vms {
        let name = names.get(u).map(String::as_str).unwrap_or("");
        subjects.push(crate::rrd::prometheus::Subject { kind: "vm", uuid: u, name, rrd: r });
    }
    let sr_names: std::collections::HashMap<&str, &str> =
        srs.iter().map(|r| (r.uuid.as_str(), r.name.as_str())).collect();
    for (u, r) in &sr_rrds {
        let name = sr_names.get(u.as_str()).copied().unwrap_or("");
        subjects.push(crate::rrd::prometheus::Subject { kind: "sr", uuid: u, name, rrd: r });
    }
    let srs: Vec<crate::rrd::prometheus::SrFigures<'_>> = srs
        .iter()
        .map(|r| crate::rrd::prometheus::SrFigures { uuid: &r.uuid, name: &r.name, size: r.size, utilisation: r.used })
        .collect();
    let body = crate::rrd::prometheus::render(&subjects, &srs);
    send_as(reply, "text/plain; version=0.0.4; charset=utf-8", body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(accept: Option<&str>, q: &str) -> Head {
        let h = accept.map(|a| vec![("Accept".to_string(), a.to_string())]).unwrap_or_default();
        Head::from_target("GET", &format!("/rrd_updates?{q}"), h, false, false)
    }

    #[test]
    fn json_or_xml() {
        assert!(!prefers_json(&head(None, "start=0")));
        assert!(prefers_json(&head(None, "start=0&json")));
        assert!(prefers_json(&head(None, "start=0&json=false")));
        assert!(prefers_json(&head(Some("*/*"), "start=0")));
        assert!(!prefers_json(&head(Some("text/xml"), "start=0&json")));
        assert!(!prefers_json(&head(Some("application/json;q=0.5, text/*"), "start=0")));
        assert!(prefers_json(&head(Some("application/json, text/xml;q=0.9"), "start=0")));
        assert!(prefers_json(&head(Some("image/png"), "start=0&json")));
        assert!(!prefers_json(&head(Some("image/png"), "start=0")));
    }
}
