"""Ansible's community.general.xenserver_* modules against the server: create a
VM from a template with a disk and a NIC, read it back, and drive its power
state. ansible-playbook comes from the venv scripts/test.sh builds (Python
3.12+, ansible 14.5.0); without it these tests skip, unless ANSIBLE_REQUIRED=1."""

import json
import os
import subprocess
import tempfile

import pytest

from conftest import PASSWORD

PLAYBOOK = os.environ.get("ANSIBLE_PLAYBOOK")

if not PLAYBOOK or not os.path.exists(PLAYBOOK):
    if os.environ.get("ANSIBLE_REQUIRED") == "1":
        raise RuntimeError("ANSIBLE_PLAYBOOK is not set to an ansible-playbook binary")
    pytest.skip("ansible-playbook not available (set ANSIBLE_PLAYBOOK)", allow_module_level=True)


def play(xapid, tasks):
    """Run tasks against the server; return the registered results by name."""
    conn = (
        "        hostname: \"127.0.0.1:%d\"\n        username: root\n        password: \"%s\"\n        validate_certs: false\n"
        % (xapid.port, PASSWORD)
    )
    body = ""
    for name, module, args in tasks:
        body += "    - name: %s\n      community.general.%s:\n%s" % (name, module, conn)
        for k, v in args.items():
            body += "        %s: %s\n" % (k, json.dumps(v))
        body += "      register: %s\n" % name
    body += "    - name: dump\n      ansible.builtin.copy:\n        content: \"{{ {%s} | to_json }}\"\n        dest: \"{{ out }}\"\n" % ", ".join(
        "'%s': %s" % (n, n) for n, _, _ in tasks
    )
    pb = "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n" + body
    with tempfile.TemporaryDirectory() as d:
        path, out = os.path.join(d, "play.yml"), os.path.join(d, "out.json")
        open(path, "w").write(pb)
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
        r = subprocess.run([PLAYBOOK, path, "-e", "out=" + out], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        return json.load(open(out))


def test_create_from_template_with_disk_and_nic(xapid, api):
    res = play(
        xapid,
        [
            (
                "created",
                "xenserver_guest",
                {
                    "name": "ansible-vm1",
                    "template": "Debian Bookworm 12",
                    "state": "poweredon",
                    "disks": [{"size_gb": 4, "sr": "Local storage"}],
                    "networks": [{"name": "Pool-wide network associated with eth0"}],
                    "hardware": {"num_cpus": 2, "memory_mb": 1024},
                    "wait_for_ip_address": True,
                },
            ),
            ("info", "xenserver_guest_info", {"name": "ansible-vm1"}),
        ],
    )
    assert res["created"]["changed"] is True
    inst = res["info"]["instance"]
    assert inst["state"] == "poweredon"
    assert inst["hardware"]["num_cpus"] == 2
    assert inst["hardware"]["memory_mb"] == 1024
    assert len(inst["disks"]) >= 1 and inst["disks"][0]["size"] == 4 * 1024**3
    assert inst["networks"][0]["ip"]
    vm = api.VM.get_by_name_label("ansible-vm1")[0]
    assert api.VM.get_power_state(vm) == "Running"
    assert not api.VM.get_is_a_template(vm)


def test_power_states(xapid, api):
    # (YAML would read bare on/off as booleans, hence the step_ prefix.)
    steps = [
        ("step_off", "powered-off"),
        ("step_on", "powered-on"),
        ("step_suspend", "suspended"),
        ("step_resume", "powered-on"),
        ("step_reboot", "restarted"),
        ("step_guest_off", "shutdown-guest"),
    ]
    tasks = [
        ("made", "xenserver_guest", {"name": "ansible-vm2", "template": "Other install media", "state": "poweredon"}),
    ] + [(n, "xenserver_guest_powerstate", {"name": "ansible-vm2", "state": st, "state_change_timeout": 60}) for n, st in steps]
    res = play(xapid, tasks)
    assert res["step_off"]["instance"]["state"] == "poweredoff"
    assert res["step_on"]["instance"]["state"] == "poweredon"
    assert res["step_suspend"]["instance"]["state"] == "suspended"
    assert res["step_resume"]["instance"]["state"] == "poweredon"
    assert res["step_reboot"]["instance"]["state"] == "poweredon"
    assert res["step_guest_off"]["instance"]["state"] == "poweredoff"
    vm = api.VM.get_by_name_label("ansible-vm2")[0]
    assert api.VM.get_power_state(vm) == "Halted"


def test_reconfigure_and_remove(xapid, api):
    res = play(
        xapid,
        [
            ("made", "xenserver_guest", {"name": "ansible-vm3", "template": "Other install media", "state": "present"}),
            ("changed", "xenserver_guest", {"name": "ansible-vm3", "state": "present", "hardware": {"num_cpus": 3, "memory_mb": 2048}, "custom_params": [{"key": "other_config", "value": {"team": "qa"}}]}),
            ("gone", "xenserver_guest", {"name": "ansible-vm3", "state": "absent"}),
        ],
    )
    assert res["changed"]["changed"] is True
    assert res["changed"]["instance"]["hardware"]["num_cpus"] == 3
    assert res["gone"]["changed"] is True
    assert api.VM.get_by_name_label("ansible-vm3") == []
