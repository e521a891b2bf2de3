"""First-start seeding: the single-host pool a fresh data dir gets."""

import hashlib
import os
import re
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET

import pytest

from conftest import DATAMODEL

ROLES = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"]
TEMPLATES = ["Debian Etch 4.0", "Debian Bookworm 12", "Ubuntu Noble Numbat 24.04",
             "Windows Server 2022 (64-bit)", "Other install media"]


@pytest.fixture(scope="module")
def pool(api):
    pools = api.pool.get_all()
    assert len(pools) == 1
    return pools[0]


@pytest.fixture(scope="module")
def host(api):
    hosts = api.host.get_all()
    assert len(hosts) == 1
    return hosts[0]


@pytest.fixture(scope="module")
def hrec(api, host):
    return api.host.get_record(host)


def semver(v):
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)
    assert m, v
    return tuple(int(x) for x in m.groups())


def test_one_pool_master_is_the_host(api, pool, host):
    assert api.pool.get_master(pool) == host
    assert api.host.get_all_records()[host]["API_version_major"]


def test_session_this_host_is_master(api, sid, host):
    assert api.session.get_this_host(sid) == host


def test_software_version(hrec):
    sv = hrec["software_version"]
    for k in ["product_brand", "product_version", "platform_version", "build_number", "xapi"]:
        assert k in sv and sv[k], k
    assert semver(sv["platform_version"]) >= (3, 0, 0)
    assert semver(sv["platform_version"]) >= (2, 9, 50)  # XenCenter's floor
    # What runs the guests: the simulator here.
    assert (sv["hypervisor"], sv["accelerator"]) == ("sim", "none")


def test_api_version(hrec):
    with open(os.path.join(DATAMODEL, "version")) as f:
        major, minor = f.read().strip().split(".")
    assert hrec["API_version_major"] == major
    assert hrec["API_version_minor"] == minor
    assert int(major) == 2 and int(minor) >= 6


def test_license_params(hrec):
    lp = hrec["license_params"]
    restricts = {k: v for k, v in lp.items() if k.startswith("restrict_")}
    assert len(restricts) >= 5
    for k in ["restrict_pooling", "restrict_vlan", "restrict_qos", "restrict_pool_attached_storage",
              "restrict_connection"]:
        assert k in restricts, k
    # Everything is available but what this server does not implement.
    restricted = {k for k, v in restricts.items() if v != "false"}
    assert restricted == {"restrict_vtpm"}, restricted
    assert re.fullmatch(r"\d{8}T\d\d:\d\d:\d\dZ", lp["expiry"]), lp["expiry"]
    assert lp["expiry"] > time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime())


def test_capabilities_and_hardware(api, host, hrec):
    caps = hrec["capabilities"]
    assert caps and any(c.startswith("hvm-3.0-x86_64") for c in caps)
    ci = hrec["cpu_info"]
    assert int(ci["cpu_count"]) >= 1
    assert int(ci["cpu_count"]) == len(hrec["host_CPUs"])
    assert ci.get("vendor") and ci.get("speed")
    assert hrec["chipset_info"]
    assert hrec["bios_strings"]


def test_host_misc(hrec):
    now = time.time()
    for k in ("boot_time", "agent_start_time"):
        t = float(hrec["other_config"][k])
        assert 0 < t <= now + 60, (k, t)
    assert hrec["address"] == "127.0.0.1"
    assert hrec["hostname"]
    assert hrec["enabled"] is True
    assert hrec["name_label"]


def test_host_metrics(api, hrec):
    m = api.host_metrics.get_record(hrec["metrics"])
    assert m["live"] is True
    total = int(m["memory_total"])
    assert total > 0
    assert 0 <= int(m["memory_free"]) <= total


def test_host_cpus(api, host, hrec):
    cpus = api.host_cpu.get_all_records()
    assert len(cpus) == len(hrec["host_CPUs"]) >= 1
    numbers = sorted(int(c["number"]) for c in cpus.values())
    assert numbers == list(range(len(cpus)))
    for c in cpus.values():
        assert c["host"] == host


def test_control_domain(api, host, hrec):
    (dom0,) = api.VM.get_all_where('field "is_control_domain"="true"')
    rec = api.VM.get_record(dom0)
    assert rec["power_state"] == "Running"
    assert rec["resident_on"] == host
    assert rec["is_a_template"] is False
    assert rec["domid"] == "0"
    assert hrec["control_domain"] == dom0
    assert dom0 in hrec["resident_VMs"]
    assert rec["consoles"]


def test_local_sr(api, pool, host):
    default = api.pool.get_default_SR(pool)
    sr = api.SR.get_record(default)
    assert sr["type"] == "ext"
    assert sr["shared"] is False
    assert sr["other_config"]["i18n-key"] == "local-storage"
    assert sr["other_config"]["i18n-original-value-name_label"] == sr["name_label"]
    assert int(sr["physical_size"]) > 0
    (pbd,) = sr["PBDs"]
    p = api.PBD.get_record(pbd)
    assert p["currently_attached"] is True
    assert p["host"] == host and p["SR"] == default


def test_iso_sr(api, host):
    isos = {r: s for r, s in api.SR.get_all_records().items() if s["type"] == "iso"}
    assert isos
    for ref, s in isos.items():
        assert s["content_type"] == "iso"
        assert s["PBDs"]
        for pbd in s["PBDs"]:
            assert api.PBD.get_currently_attached(pbd) is True
    tools = [s for s in isos.values() if s["other_config"].get("i18n-key") == "xenserver-tools"]
    assert tools
    assert tools[0]["other_config"]["i18n-original-value-name_label"] == tools[0]["name_label"]


def test_sm_records(api):
    types = {s["type"] for s in api.SM.get_all_records().values()}
    srtypes = {s["type"] for s in api.SR.get_all_records().values()}
    assert {"ext", "iso"} <= types
    assert srtypes <= types


def test_network_and_management_pif(api, host):
    nets = {r: n for r, n in api.network.get_all_records().items() if n["bridge"] == "xenbr0"}
    assert len(nets) == 1
    (net, n) = next(iter(nets.items()))
    pifs = [api.PIF.get_record(p) for p in n["PIFs"]]
    (pif,) = [p for p in pifs if p["device"] == "eth0"]
    assert pif["management"] is True
    assert pif["host"] == host and pif["network"] == net
    assert pif["physical"] is True
    assert pif["currently_attached"] is True
    assert pif["metrics"] in api.PIF_metrics.get_all()
    mgmt = [p for p in api.PIF.get_all_records().values() if p["management"]]
    assert len(mgmt) == 1


def test_roles(api):
    recs = api.role.get_all_records()
    by_name = {}
    for ref, r in recs.items():
        by_name.setdefault(r["name_label"], []).append((ref, r))
    for name in ROLES:
        assert name in by_name, name
        (ref, r), = by_name[name]
        assert r["subroles"], name
        assert ref == "OpaqueRef:" + r["uuid"]
    assert by_name["pool-admin"][0][1]["uuid"] == "0165f154-ba3e-034e-6b27-5d271af109ba"
    assert api.role.get_by_name_label("read-only") == [by_name["read-only"][0][0]]


def test_role_uuids_are_md5_of_name(api):
    recs = api.role.get_all_records()
    for ref, r in recs.items():
        if r["name_label"] in ROLES and r["name_label"] != "pool-admin":
            want = str(uuidlib.UUID(bytes=hashlib.md5(r["name_label"].encode()).digest()))
            assert r["uuid"] == want, r["name_label"]


@pytest.mark.parametrize("name", TEMPLATES)
def test_default_templates(api, name):
    refs = api.VM.get_by_name_label(name)
    assert len(refs) == 1, name
    rec = api.VM.get_record(refs[0])
    assert rec["is_a_template"] is True
    assert rec["is_default_template"] is True
    assert rec["is_control_domain"] is False
    assert rec["power_state"] == "Halted"
    assert rec["other_config"]["default_template"] == "true"
    prov = ET.fromstring(rec["other_config"]["disks"])
    assert prov.tag == "provision"
    disks = prov.findall("disk")
    assert disks
    d = disks[0]
    assert d.get("device") == "0"
    assert int(d.get("size")) > 0
    assert d.get("sr") == ""
    assert d.get("bootable") == "true"
    assert d.get("type") == "system"
    assert int(rec["memory_static_max"]) >= int(rec["memory_static_min"]) > 0
    assert int(rec["VCPUs_max"]) >= int(rec["VCPUs_at_startup"]) >= 1


def test_all_templates_well_formed(api):
    tpls = api.VM.get_all_records_where('field "is_a_template"="true"')
    assert len(tpls) >= len(TEMPLATES)
    for ref, rec in tpls.items():
        if rec["other_config"].get("default_template") == "true":
            assert "disks" in rec["other_config"], rec["name_label"]
            ET.fromstring(rec["other_config"]["disks"])


def test_default_sr_and_other_pool_srs(api, pool):
    sr = api.pool.get_default_SR(pool)
    assert sr in api.SR.get_all()
    assert api.SR.get_type(sr) == "ext"


def test_unix_socket_exists(xapid):
    import stat
    assert stat.S_ISSOCK(os.stat(xapid.sock).st_mode)
