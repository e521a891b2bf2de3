//! vm-export/vm-import/vdi-export/vdi-import: the server sends HttpGet or
//! HttpPut with a URL carrying session_id and task_id, the client streams
//! the file and the server waits for the task.

mod common;

use common::Server;

fn first_template(s: &Server) -> String {
    s.ok(&["template-list", "--minimal"]).split(',').next().unwrap_or_default().trim().to_string()
}

#[test]
fn client_side_failures_leave_no_task() {
    let s = Server::start();
    let vm = s.ok(&["vm-install", &format!("template={}", first_template(&s)), "new-name-label=t"]).trim().to_string();
    let vdi = s.ok(&["vdi-list", "--minimal"]).split(',').next().unwrap_or_default().trim().to_string();
    let missing = s.dir.path().join("missing.raw");
    let o = s.xe(&["vdi-import", &format!("uuid={vdi}"), &format!("filename={}", missing.display())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"), "{}", String::from_utf8_lossy(&o.stderr));
    // The export target exists already: xe never overwrites.
    let existing = s.dir.path().join("exists.xva");
    std::fs::write(&existing, b"keep").expect("write");
    let o = s.xe(&["vm-export", &format!("uuid={vm}"), &format!("filename={}", existing.display())]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep");
    // The transfer tasks are gone.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(s.ok(&["task-list", "--minimal"]).trim(), "");
}

#[test]
fn vm_export_import_round_trip() {
    let s = Server::start();
    let vm =
        s.ok(&["vm-install", &format!("template={}", first_template(&s)), "new-name-label=exp"]).trim().to_string();
    let file = s.dir.path().join("vm.xva");
    s.ok(&["vm-export", &format!("uuid={vm}"), &format!("filename={}", file.display())]);
    assert!(std::fs::metadata(&file).map(|m| m.len() > 0).unwrap_or(false));
    let new = s.ok(&["vm-import", &format!("filename={}", file.display())]).trim().to_string();
    assert_eq!(new.len(), 36, "{new}");
    assert_eq!(s.ok(&["vm-list", &format!("uuid={new}"), "params=name-label", "--minimal"]).trim(), "exp");
    assert_eq!(s.ok(&["task-list", "--minimal"]).trim(), "");
}

#[test]
fn vdi_export_import_round_trip() {
    let s = Server::start();
    let sr = s.ok(&["sr-list", "type=ext", "--minimal"]).trim().to_string();
    let vdi = s.ok(&["vdi-create", &format!("sr-uuid={sr}"), "name-label=d", "virtual-size=1MiB"]).trim().to_string();
    let input = s.dir.path().join("in.raw");
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&input, &data).expect("write");
    s.ok(&["vdi-import", &format!("uuid={vdi}"), &format!("filename={}", input.display()), "format=raw"]);
    let out = s.dir.path().join("out.raw");
    s.ok(&["vdi-export", &format!("uuid={vdi}"), &format!("filename={}", out.display()), "format=raw"]);
    // The SR rounds the disk up (2 MiB blocks): the rest reads as zeros.
    let got = std::fs::read(&out).expect("read");
    assert!(got.len() >= data.len(), "{} bytes", got.len());
    assert!(got[..data.len()] == data[..], "the imported bytes come back");
    assert!(got[data.len()..].iter().all(|b| *b == 0));
}
