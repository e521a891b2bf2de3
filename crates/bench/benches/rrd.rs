//! Statistics benchmark (issue 20): `/rrd_updates` (XML and JSON) and
//! `/metrics` for 1,000 VMs with 20 data sources each, against
//! `VM.get_all_records` for the same VMs in the same run. For each request:
//! the server's CPU time (user + system of the server runtime's threads, read
//! from /proc around N requests) and the reply's bytes. Run with
//! `cargo bench -p bench --bench rrd`.

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::Value;
use server::rrd::Rrd;
use std::time::Duration;

const VMS: usize = 1000;
/// Data sources per VM: 4 vCPUs, memory, 2 × 4 NIC, 2 × 3 disks, 1 more.
const SOURCES: usize = 20;

/// (label, GET path, or a POST path and body instead, measured requests).
type Case<'a> = (&'a str, String, Option<(&'a str, Vec<u8>)>, usize);

fn source_names() -> Vec<String> {
    let mut v: Vec<String> = (0..4).map(|i| format!("cpu{i}")).collect();
    v.push("memory".into());
    v.push("memory_internal_free".into());
    for i in 0..4 {
        v.push(format!("vif_{i}_rx"));
        v.push(format!("vif_{i}_tx"));
    }
    for d in ["xvda", "xvdb", "xvdc"] {
        v.push(format!("vbd_{d}_read"));
        v.push(format!("vbd_{d}_write"));
    }
    assert_eq!(v.len(), SOURCES);
    v
}

fn main() {
    let rt = Rts::new();
    // The sampler's first sample happens at start; the hour-long interval
    // keeps it from running during the measurements.
    let x = rt.srv.block_on(start_xapid_with(false, |c| c.rrd_interval = Duration::from_secs(3600)));
    let server = x.running.server.clone();
    let c = model::schema::class("VM").expect("VM");
    let template = {
        let st = server.db.read();
        let nl = c.field_index("name_label").expect("name_label");
        let r = st
            .table(c)
            .iter()
            .find(|(_, r)| r.fields[nl].as_str() == Some("Debian Bookworm 12"))
            .map(|(_, r)| (**r).clone())
            .expect("template");
        r
    };
    let (uuid_i, nl, tmpl) = (
        c.field_index("uuid").expect("uuid"),
        c.field_index("name_label").expect("nl"),
        c.field_index("is_a_template").expect("t"),
    );
    let uuids: Vec<String> = (0..VMS).map(|_| model::new_uuid()).collect();
    server
        .db
        .write(|tx| {
            for (i, u) in uuids.iter().enumerate() {
                let mut row = template.clone();
                row.fields[uuid_i] = Value::String(u.clone());
                row.fields[nl] = Value::String(format!("bench-vm-{i}"));
                row.fields[tmpl] = Value::Bool(false);
                tx.insert(&model::new_ref(), row);
            }
            Ok::<_, store::Refused>(())
        })
        .expect("populate");
    // Ten minutes of 5 s samples for every VM, ending now.
    let names = source_names();
    let now = (server::rrd::now() / 5.0).floor() * 5.0;
    let t0 = now - 600.0;
    let one = |seed: usize| {
        let mut r = Rrd::new(t0, false);
        for k in 1..=120 {
            let vals: Vec<(String, f64)> = names
                .iter()
                .enumerate()
                .map(|(j, n)| (n.clone(), ((seed * 31 + j * 7 + k) % 100) as f64 / 100.0 * 1e6))
                .collect();
            r.update(t0 + 5.0 * k as f64, &vals);
        }
        r
    };
    {
        let mut g = server.rrds.lock();
        for (i, u) in uuids.iter().enumerate() {
            g.vms.insert(u.clone(), one(i));
        }
        g.host = Some(one(VMS));
    }
    let sid = &x.session;
    let since = now as i64 - 600;
    let recent = now as i64 - 10;
    let cases: Vec<Case> = vec![
        (
            "VM.get_all_records XML-RPC",
            String::new(),
            Some(("/", xml_call("VM.get_all_records", &[Value::from(sid.as_str())]))),
            10,
        ),
        (
            "VM.get_all_records JSON-RPC",
            String::new(),
            Some(("/jsonrpc", json_call("VM.get_all_records", &[Value::from(sid.as_str())]))),
            10,
        ),
        (
            "/rrd_updates XML, 10 min (120 rows)",
            format!("/rrd_updates?session_id={sid}&start={since}&host=true"),
            None,
            5,
        ),
        (
            "/rrd_updates JSON, 10 min (120 rows)",
            format!("/rrd_updates?session_id={sid}&start={since}&host=true&json=true"),
            None,
            5,
        ),
        ("/rrd_updates XML, last 10 s", format!("/rrd_updates?session_id={sid}&start={recent}&host=true"), None, 20),
        (
            "/rrd_updates JSON, last 10 s",
            format!("/rrd_updates?session_id={sid}&start={recent}&host=true&json=true"),
            None,
            20,
        ),
        ("/metrics (Prometheus text)", format!("/metrics?session_id={sid}"), None, 20),
    ];
    println!("\n## Statistics for {VMS} VMs x {SOURCES} data sources: server CPU per request and reply bytes");
    println!("| request | reply bytes | server CPU ms / request | ratio to VM.get_all_records (XML-RPC) |");
    println!("|---|---|---|---|");
    let mut base = None;
    for (label, path, post, n) in cases {
        // One warm-up request, then n measured ones.
        let mut bytes = 0;
        let mut cpu = 0.0;
        for round in 0..=n {
            let before = threads_cpu_secs("bench-server");
            bytes = rt.cli.block_on(async {
                match &post {
                    Some((p, body)) => {
                        let mut cl = Client::connect(x.addr).await;
                        cl.post_len(p, body.clone()).await
                    }
                    None => {
                        let (status, n) = get_len(x.addr, &path).await;
                        assert_eq!(status, 200, "{path}");
                        n
                    }
                }
            });
            // Let the server's threads finish the request (their last
            // writes complete before the client has the last byte, but
            // the accounting is per tick).
            std::thread::sleep(Duration::from_millis(2));
            if round > 0 {
                cpu += threads_cpu_secs("bench-server") - before;
            }
        }
        let per = cpu / n as f64 * 1e3;
        let b = *base.get_or_insert(per);
        println!("| {label} | {bytes} | {per:.1} | {:.2} |", per / b);
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}
