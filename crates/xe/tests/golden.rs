//! Golden output: xapi's record layout, `params=`, filters and `--minimal`
//! escaping, compared after normalising uuids, times and MACs.
//! `UPDATE_GOLDEN=1 cargo test -p xe --test golden` rewrites the files.

mod common;

use common::{normalise, Server};
use std::path::PathBuf;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"));
    let actual = normalise(actual);
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} missing", path.display()));
    assert_eq!(actual, expected, "golden {name} differs");
}

#[test]
fn formats() {
    let s = Server::start();
    let tpl = s.ok(&["template-list", "name-label=Debian Bookworm 12", "--minimal"]);
    let tpl = tpl.trim();
    let vm = s.ok(&["vm-install", &format!("template={tpl}"), "new-name-label=golden vm"]);
    let vm = vm.trim().to_string();
    let sr = s.ok(&["sr-list", "type=ext", "--minimal"]).trim().to_string();
    let vdi =
        s.ok(&["vdi-create", &format!("sr-uuid={sr}"), "name-label=a,b\\c", "virtual-size=1GiB"]).trim().to_string();
    s.ok(&["vm-param-set", &format!("uuid={vm}"), "other-config:k1=v1"]);
    s.ok(&["vm-param-add", &format!("uuid={vm}"), "param-name=tags", "param-key=blue"]);
    s.ok(&["vm-param-add", &format!("uuid={vm}"), "param-name=tags", "param-key=green"]);

    check("vm-list", &s.ok(&["vm-list"]));
    check(
        "vm-list-params",
        &s.ok(&["vm-list", "params=uuid,name-label,power-state,other-config,tags", "name-label=golden vm"]),
    );
    check("vm-list-map-filter", &s.ok(&["vm-list", "other-config:k1=v1", "params=name-label"]));
    check("vm-list-set-filter", &s.ok(&["vm-list", "tags:contains=green", "params=name-label,tags"]));
    check("vm-param-list", &s.ok(&["vm-param-list", &format!("uuid={vm}")]));
    check("vm-param-get-map", &s.ok(&["vm-param-get", &format!("uuid={vm}"), "param-name=other-config"]));
    check("vdi-list", &s.ok(&["vdi-list", &format!("uuid={vdi}")]));
    check("vdi-minimal-escaping", &s.ok(&["vdi-list", &format!("uuid={vdi}"), "params=name-label", "--minimal"]));
    check("template-minimal", &s.ok(&["template-list", "params=name-label", "--minimal"]));
    check("network-list", &s.ok(&["network-list"]));
    check("sr-list", &s.ok(&["sr-list"]));
    check("host-list", &s.ok(&["host-list", "params=name-label,hostname,enabled"]));
    check("help-vm-start", &s.ok(&["help", "vm-start"]));
    // Nothing matches: --minimal prints an empty line, the table nothing.
    assert_eq!(s.ok(&["vm-list", "name-label=nobody", "--minimal"]), "\n");
    assert_eq!(s.ok(&["vm-list", "name-label=nobody"]), "");
}
