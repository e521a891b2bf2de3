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

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = c.stdin.take().expect("stdin");
    let data = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = c.wait_with_output().expect("gzip output");
    feeder.join().expect("feeder").expect("write to gzip");
    out.stdout
}

/// The guide's legacy appliance is a directory (§3.5.1): xe sends it as a
/// tar, whether named by the directory or by its ova.xml.
#[test]
fn legacy_appliance_directory_imports() {
    let s = Server::start();
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../xva/tests/data/guide-ova.xml"),
    )
    .expect("guide ova.xml");
    let xml = guide.replace("5368709120", "1048576").replace("size=\"536870912\"", "size=\"4096\"");
    let dir = s.dir.path().join("debian");
    std::fs::create_dir_all(dir.join("sda")).expect("mkdir");
    std::fs::create_dir_all(dir.join("sdb")).expect("mkdir");
    std::fs::write(dir.join("ova.xml"), xml).expect("write");
    let sda: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("sda/chunk-000000000.gz"), gzip(&sda)).expect("write");
    std::fs::write(dir.join("sdb/chunk-000000000.gz"), gzip(&[0x55; 4096])).expect("write");

    for name in [dir.clone(), dir.join("ova.xml")] {
        let vm = s.ok(&["vm-import", &format!("filename={}", name.display())]).trim().to_string();
        assert_eq!(vm.len(), 36, "{vm}");
        assert_eq!(
            s.ok(&["vm-list", &format!("uuid={vm}"), "params=name-label", "--minimal"]).trim(),
            "very simple Debian VM"
        );
        let vdis = s.ok(&["vbd-list", &format!("vm-uuid={vm}"), "params=vdi-uuid", "--minimal"]);
        let mut seen = Vec::new();
        for vdi in vdis.trim().split(',') {
            let out = s.dir.path().join(format!("{vdi}.raw"));
            s.ok(&["vdi-export", &format!("uuid={vdi}"), &format!("filename={}", out.display()), "format=raw"]);
            let got = std::fs::read(&out).expect("read");
            let want: &[u8] = if got.first() == Some(&0x55) { &[0x55; 4096] } else { &sda };
            assert!(got.len() >= want.len() && got[..want.len()] == *want, "disk {vdi} holds what was sent");
            assert!(got[want.len()..].iter().all(|b| *b == 0));
            seen.push(want.len());
        }
        seen.sort();
        assert_eq!(seen, vec![4096, 1 << 20]);
    }
    assert_eq!(s.ok(&["task-list", "--minimal"]).trim(), "");
}

#[test]
fn vm_import_argument_rules() {
    let s = Server::start();
    let o = s.xe(&["vm-import", "filename=/nonexistent.xva", "url=http://127.0.0.1:1/x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("should not both be specified"));
    let o = s.xe(&["vm-import", "filename=/nonexistent.xva", "dry-run=true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Only metadata import function support dry-run"));

    // A metadata export comes back as a dry run: nothing is created.
    let vm = s.ok(&["vm-install", &format!("template={}", first_template(&s)), "new-name-label=m"]).trim().to_string();
    let file = s.dir.path().join("meta.xva");
    s.ok(&["vm-export", &format!("uuid={vm}"), &format!("filename={}", file.display()), "metadata=true"]);
    let before = s.ok(&["vm-list", "--minimal"]);
    s.ok(&["vm-import", &format!("filename={}", file.display()), "metadata=true", "dry-run=true"]);
    assert_eq!(s.ok(&["vm-list", "--minimal"]), before);
    assert_eq!(s.ok(&["task-list", "--minimal"]).trim(), "");
}
