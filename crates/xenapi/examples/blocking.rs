//! The blocking facade: list VMs from a plain `fn main`.
//!
//! `cargo run -p xenapi --features blocking --example blocking -- http://127.0.0.1:8080 root secret`

fn main() -> xenapi::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let (url, user, pw) =
        (a.get(1).map_or("http://127.0.0.1:8080", |s| s), a.get(2).map_or("root", |s| s), a.get(3).map_or("", |s| s));
    let s = xenapi::blocking::Session::login(xenapi::Session::builder(url), user, pw)?;
    let vms = s.run(|s| s.vm().get_all_records())?;
    for (r, vm) in &vms {
        println!("{r} {:<40} {}", vm.name_label, vm.power_state);
    }
    s.logout()
}
