//! The cost of RBAC (access-control issue): `VM.get_record` and
//! `VM.set_name_label` round trips (JSON-RPC, one keep-alive connection) as
//! root (a superuser session: no check) and as a vm-admin directory user
//! (every call checked), alternating short rounds in the same run; and the
//! latency of a directory login (slapd on loopback) against a local root
//! login. Needs Debian's slapd and slapadd.
//!
//! `cargo bench -p bench --bench rbac`

use bench::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use model::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DUR: Duration = Duration::from_secs(4);
const ROUNDS: u32 = 8;
const LOGINS: usize = 40;
const SUFFIX: &str = "dc=example,dc=org";

fn v(s: &str) -> Value {
    Value::from(s)
}

/// A slapd with one user, `bench`/`bench-pw`, on a free loopback port.
struct Slapd {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slapd() -> Slapd {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir(d.join("data")).expect("data dir");
    let conf = d.join("slapd.conf");
    let mut c = String::new();
    for s in ["core", "cosine", "nis", "inetorgperson"] {
        c.push_str(&format!("include /etc/ldap/schema/{s}.schema\n"));
    }
    c.push_str("modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nmaxsize 10485760\n");
    c.push_str(&format!("suffix \"{SUFFIX}\"\nrootdn \"cn=admin,{SUFFIX}\"\nrootpw admin\n"));
    c.push_str(&format!("directory {}\n", d.join("data").display()));
    std::fs::write(&conf, c).expect("slapd.conf");
    let ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: uid=bench,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         uid: bench\ncn: Bench\nsn: bench\nuserPassword: bench-pw\nuidNumber: 10000\ngidNumber: 10000\n\
         homeDirectory: /home/bench\n"
    );
    std::fs::write(d.join("data.ldif"), ldif).expect("ldif");
    let ok = Command::new("slapadd")
        .arg("-f")
        .arg(&conf)
        .arg("-l")
        .arg(d.join("data.ldif"))
        .stdout(Stdio::null())
        .status()
        .expect("slapadd (install slapd)");
    assert!(ok.success(), "slapadd failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let url = format!("ldap://127.0.0.1:{port}");
    let child = Command::new("slapd")
        .arg("-f")
        .arg(&conf)
        .arg("-h")
        .arg(format!("{url}/"))
        .arg("-d")
        .arg("0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slapd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "slapd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Slapd { child, url, _dir: dir }
}

/// One JSON-RPC call; the `result`, panicking on an error (setup only).
async fn call(x: &Xapid, method: &str, params: &[Value]) -> serde_json::Value {
    let mut c = Client::connect(x.addr).await;
    let reply = c.post("/jsonrpc", json_call(method, params)).await;
    let v: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

fn main() {
    let rt = Rts::new();
    let d = slapd();
    let x = rt.srv.block_on(start_xapid(false));
    let (user_session, vm) = rt.cli.block_on(async {
        let root = v(&x.session);
        let pool = call(&x, "pool.get_all", std::slice::from_ref(&root)).await[0].as_str().expect("pool").to_string();
        let cfg = vec![
            ("url".to_string(), v(&d.url)),
            ("user_base".to_string(), v(&format!("ou=people,{SUFFIX}"))),
            ("bind_dn".to_string(), v(&format!("cn=admin,{SUFFIX}"))),
            ("bind_password".to_string(), v("admin")),
        ];
        call(&x, "pool.enable_external_auth", &[root.clone(), v(&pool), Value::Struct(cfg), v("bench"), v("LDAP")])
            .await;
        let sid = call(&x, "auth.get_subject_identifier", &[root.clone(), v("bench")]).await;
        let rec = Value::Struct(vec![("subject_identifier".into(), v(sid.as_str().expect("sid")))]);
        let subj = call(&x, "subject.create", &[root.clone(), rec]).await.as_str().expect("subject").to_string();
        let admin = call(&x, "role.get_by_name_label", &[root.clone(), v("pool-admin")]).await;
        let vm_admin = call(&x, "role.get_by_name_label", &[root.clone(), v("vm-admin")]).await;
        call(&x, "subject.remove_from_roles", &[root.clone(), v(&subj), v(admin[0].as_str().expect("r"))]).await;
        call(&x, "subject.add_to_roles", &[root.clone(), v(&subj), v(vm_admin[0].as_str().expect("r"))]).await;
        let user = call(&x, "session.login_with_password", &[v("bench"), v("bench-pw")]).await;
        let vms = call(&x, "VM.get_all", std::slice::from_ref(&root)).await;
        (user.as_str().expect("session").to_string(), vms[0].as_str().expect("vm").to_string())
    });

    println!(
        "\n## RBAC: round trips as root (no check) vs as a vm-admin directory user (checked), JSON-RPC, 1 connection"
    );
    println!("| call | root req/s | vm-admin req/s | vm-admin / root |");
    println!("|---|---|---|---|");
    for (name, args) in [("VM.get_record", vec![v(&vm)]), ("VM.set_name_label", vec![v(&vm), v("bench")])] {
        let body_for = |s: &str| {
            let mut p = vec![v(s)];
            p.extend(args.iter().cloned());
            json_call(name, &p)
        };
        let (root_b, user_b) = (body_for(&x.session), body_for(&user_session));
        // Both must succeed: a denied call would be cheaper, not comparable.
        rt.cli.block_on(async {
            for b in [&root_b, &user_b] {
                let mut c = Client::connect(x.addr).await;
                let r = c.post("/jsonrpc", b.clone()).await;
                assert!(!String::from_utf8_lossy(&r).contains("\"error\""), "{name}: {}", String::from_utf8_lossy(&r));
            }
        });
        let (mut root, mut user) = (0.0, 0.0);
        for _ in 0..ROUNDS {
            root += rt.cli.block_on(load(x.addr, "/jsonrpc", root_b.clone(), 1, DUR / ROUNDS)) / ROUNDS as f64;
            user += rt.cli.block_on(load(x.addr, "/jsonrpc", user_b.clone(), 1, DUR / ROUNDS)) / ROUNDS as f64;
        }
        println!("| {name} | {root:.0} | {user:.0} | {:.3} |", user / root);
    }

    println!(
        "\n## Login latency: directory user (slapd on loopback) vs local root (argon2), {LOGINS} each, sequential"
    );
    println!("| login | mean ms | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for (who, user, pw) in [("local root", "root", "pw"), ("directory user", "bench", "bench-pw")] {
        let body = json_call("session.login_with_password", &[v(user), v(pw), v("1.0"), v("bench")]);
        let mut times: Vec<f64> = rt.cli.block_on(async {
            let mut c = Client::connect(x.addr).await;
            let mut out = Vec::with_capacity(LOGINS);
            for _ in 0..LOGINS {
                let t = Instant::now();
                let r = c.post("/jsonrpc", body.clone()).await;
                out.push(t.elapsed().as_secs_f64() * 1e3);
                assert!(!String::from_utf8_lossy(&r).contains("\"error\""), "{who} login failed");
                // Log out again, so session limits play no part.
                let s: serde_json::Value = serde_json::from_slice(&r).expect("json");
                let _ = c.post("/jsonrpc", json_call("session.logout", &[v(s["result"].as_str().unwrap_or(""))])).await;
            }
            out
        });
        times.sort_by(|a, b| a.total_cmp(b));
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!("| {who} | {mean:.2} | {:.2} | {:.2} |", percentile(&times, 0.5), percentile(&times, 0.99));
    }
    let _ = rt.srv.block_on(x.running.shutdown());
}
