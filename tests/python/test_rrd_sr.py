"""SR statistics: each SR's RRD (/sr_rrd) and the host's per-SR sources
(`io_throughput_write_<first 8 of the SR uuid>`, …) follow the disk I/O the
server does on the SR's VDIs; the SR data-source messages and their xe
commands; SR series in /metrics; and rrdtool itself restores our
/host_rrd, /vm_rrd and /sr_rrd dumps."""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import XenAPI

from conftest import PASSWORD, ROOT, require_tool
from vmlib import running, wait_for


def get(xapid, path):
    req = urllib.request.Request(xapid.url + path)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("content-type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read()


def put(xapid, path, data):
    req = urllib.request.Request(xapid.url + path, data=data, method="PUT")
    req.add_header("Content-Length", str(len(data)))
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


@pytest.fixture(scope="module")
def sr(api):
    return api.pool.get_default_SR(api.pool.get_all()[0])


@pytest.fixture(scope="module")
def sr_uuid(api, sr):
    return api.SR.get_uuid(sr)


@pytest.fixture(scope="module")
def sampled(api, sr):
    """Wait until the sampler (every 5 s) has made the SR's RRD."""
    def seen():
        try:
            return "io_throughput_write" in {d["name_label"] for d in api.SR.get_data_sources(sr)}
        except XenAPI.Failure:
            return False
    wait_for(seen, timeout=15, what="a sample of the SR", interval=0.5)


def test_sr_write_rate_rises_while_a_vdi_is_imported(api, xapid, sid, sr, sr_uuid, host_uuid, sampled):
    size = 16 << 20
    vdi = api.VDI.create({"SR": sr, "virtual_size": str(size), "type": "user", "sharable": False,
                          "read_only": False, "other_config": {}, "name_label": "rrd-import"})
    start = int(time.time()) - 5
    # Random data: zero blocks would stay holes and never reach the disk.
    assert put(xapid, "/import_raw_vdi?session_id=%s&vdi=%s&format=raw" % (sid, vdi), os.urandom(size)) == 200
    host_col = "AVERAGE:host:%s:io_throughput_write_%s" % (host_uuid, sr_uuid[:8])

    def written():
        _, _, body = get(xapid, "/rrd_updates?session_id=%s&start=%d&host=true&json" % (sid, start))
        u = json.loads(body)
        i = u["meta"]["legend"].index(host_col)
        known = [float(r["values"][i]) for r in u["data"] if r["values"][i] != "NaN"]
        return max(known, default=0.0) * 5 * 2**20
    # The 5 s points around the import hold its bytes (MiB/s × 5 s).
    wait_for(lambda: written() > 0, timeout=15, what="an SR write rate above zero", interval=0.5)
    assert written() <= size * 1.1
    # The SR's own RRD shows it too, with its requests.
    _, _, body = get(xapid, "/sr_rrd?session_id=%s&uuid=%s&json" % (sid, sr_uuid))
    dump = json.loads(body)
    names = [d["name"] for d in dump["ds"]]
    fine = dump["rra"][0]["database"]
    for name in ("io_throughput_write", "iops_write"):
        i = names.index(name)
        assert max((float(r[i]) for r in fine if r[i] != "NaN"), default=0.0) > 0, name
    api.VDI.destroy(vdi)


def test_rrd_updates_sr_and_vm_selection(xapid, sid, sr_uuid, sampled):
    def legend(q):
        _, _, body = get(xapid, "/rrd_updates?session_id=%s&start=-60&json&%s" % (sid, q))
        return json.loads(body)["meta"]["legend"]
    col = "AVERAGE:sr:%s:io_throughput_write" % sr_uuid
    assert col not in legend("host=true"), "no SRs unless asked, as xcp-rrdd"
    assert col in legend("sr_uuid=all")
    assert col in legend("sr_uuid=%s&vm_uuid=none" % sr_uuid)
    assert not [c for c in legend("sr_uuid=%s&vm_uuid=none" % sr_uuid) if ":vm:" in c]
    assert col not in legend("sr_uuid=none")


def test_sr_data_source_messages(api, sr, sampled):
    sources = {d["name_label"]: d for d in api.SR.get_data_sources(sr)}
    for name in ("io_throughput_read", "io_throughput_write", "iops_read", "iops_write", "physical_size",
                 "physical_utilisation", "free_space"):
        assert name in sources, sorted(sources)
    assert sources["io_throughput_write"]["units"] == "MiB/s"
    assert sources["free_space"]["enabled"] is True
    # A 5 s point is a time-weighted average: equal up to rounding.
    size = api.SR.query_data_source(sr, "physical_size")
    assert abs(size - float(api.SR.get_physical_size(sr))) <= 1e-9 * size
    api.SR.record_data_source(sr, "iops_read")
    with pytest.raises(XenAPI.Failure):
        api.SR.query_data_source(sr, "no_such_source")
    api.SR.forget_data_source_archives(sr, "iops_read")
    with pytest.raises(XenAPI.Failure) as e:
        api.SR.get_data_sources("OpaqueRef:nope")
    assert e.value.details[0] == "HANDLE_INVALID"


def test_xe_sr_data_source_commands(xapid, sr_uuid, sampled):
    xe = [os.path.join(ROOT, "target", "debug", "xe"), "-s", "127.0.0.1", "-p", str(xapid.port), "--nossl",
          "-u", "root", "-pw", PASSWORD]
    run = lambda *a: subprocess.run(xe + list(a), capture_output=True, text=True, timeout=30)
    r = run("sr-data-source-list", "uuid=" + sr_uuid)
    assert r.returncode == 0 and re.search(r"name_label \( RO\) *: iops_write", r.stdout), r
    r = run("sr-data-source-query", "sr=" + sr_uuid, "data-source=physical_size")
    assert r.returncode == 0 and float(r.stdout.strip()) > 0, r
    assert run("sr-data-source-record", "uuid=" + sr_uuid, "data-source=iops_write").returncode == 0
    assert run("sr-data-source-forget", "uuid=" + sr_uuid, "data-source=iops_write").returncode == 0
    r = run("sr-data-source-query", "uuid=" + sr_uuid, "data-source=nope")
    assert r.returncode != 0
    r = run("sr-data-source-list", "uuid=not-an-sr")
    assert r.returncode != 0 and "No matching SRs found" in r.stderr + r.stdout, r


def test_sr_rrd_status_codes(xapid, sid, sr_uuid, sampled):
    status, ctype, body = get(xapid, "/sr_rrd?session_id=%s&uuid=%s" % (sid, sr_uuid))
    assert status == 200 and ctype.startswith("text/xml") and b"<name>iops_read</name>" in body
    assert get(xapid, "/sr_rrd?session_id=%s&uuid=0000" % sid)[0] == 404
    assert get(xapid, "/sr_rrd?session_id=%s" % sid)[0] == 400
    assert get(xapid, "/sr_rrd?uuid=%s" % sr_uuid)[0] == 401


def test_metrics_have_sr_series(xapid, sid, sr_uuid, sampled):
    status, _, body = get(xapid, "/metrics?session_id=%s" % sid)
    text = body.decode()
    assert status == 200
    assert re.search(r'^xapi_sr_disk_write_bytes_per_second\{uuid="%s",' % sr_uuid, text, re.M), text[:2000]
    assert re.search(r'^xapi_sr_free_bytes\{uuid="%s",' % sr_uuid, text, re.M)
    assert re.search(r'^xapi_host_sr_write_operations_per_second\{.*sr="%s"\}' % sr_uuid[:8], text, re.M)


@pytest.fixture(scope="module")
def host_uuid(api):
    return api.host.get_uuid(api.host.get_all()[0])


def test_rrdtool_restores_our_dumps(api, xapid, sid, sr_uuid, host_uuid, sampled, tmp_path):
    rrdtool = require_tool("rrdtool")
    vm = api.VM.get_uuid(running(api, "rrdtool-vm"))

    def known_row():
        status, _, body = get(xapid, "/vm_rrd?session_id=%s&uuid=%s&json" % (sid, vm))
        return status == 200 and any(r[0] != "NaN" for r in json.loads(body)["rra"][0]["database"])
    wait_for(known_row, timeout=20, what="a known row in the VM's RRD", interval=0.5)
    for kind, path in (("host", "/host_rrd?"), ("vm", "/vm_rrd?uuid=%s&" % vm), ("sr", "/sr_rrd?uuid=%s&" % sr_uuid)):
        status, _, body = get(xapid, path + "session_id=" + sid)
        assert status == 200, (kind, body[:200])
        dump, out = tmp_path / (kind + ".xml"), tmp_path / (kind + ".rrd")
        # rrdtool caps data-source names at 19 characters; xapi's names
        # (memory_internal_free, io_throughput_read_<sr>) are longer, so
        # those are cut, and that is the only change made to the dump.
        long_names = sorted(set(re.findall(rb"<name>\s*([^<\s]{20,})\s*</name>", body)))
        for i, n in enumerate(long_names):
            body = body.replace(b"<name>%s</name>" % n, b"<name>long%d</name>" % i)
            body = body.replace(b"<name> %s </name>" % n, b"<name> long%d </name>" % i)
        dump.write_bytes(body)
        r = subprocess.run([rrdtool, "restore", str(dump), str(out)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (kind, r.stderr)
        r = subprocess.run([rrdtool, "info", str(out)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "step = 5" in r.stdout, (kind, r.stderr)
        assert 'rra[0].cf = "AVERAGE"' in r.stdout
        r = subprocess.run([rrdtool, "fetch", str(out), "AVERAGE", "-s", "-600"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, (kind, r.stderr)
        header = r.stdout.splitlines()[0].split()
        expect = {"host": "memory_free_kib", "vm": "cpu0", "sr": "io_throughput_write"}[kind]
        assert expect in header, (kind, header)
        # Some row of the last ten minutes holds numbers, not only nan.
        rows = [l for l in r.stdout.splitlines()[1:] if ":" in l]
        assert any(re.search(r"\d\.\d+e[+-]\d+", l) for l in rows), (kind, r.stdout[-1000:])


def test_legacy_fields_as_xapi_fills_them(api, host_uuid):
    """xapi copies the host's free memory from its RRD into host_metrics;
    VM_metrics.VCPUs_utilisation and PIF_metrics.io_*_kbs have been left
    alone since xapi 6.1 (the control domain's zeros come from its
    creation)."""
    host = api.host.get_by_uuid(host_uuid)
    metrics = api.host.get_metrics(host)

    def same():
        rrd = api.host.query_data_source(host, "memory_free_kib") * 1024
        # Equal up to the rounding of a time-weighted average (under a KiB).
        return abs(int(api.host_metrics.get_record(metrics)["memory_free"]) - rrd) < 1024
    wait_for(same, timeout=15, what="host_metrics.memory_free equal to the RRD's memory_free_kib", interval=0.5)
    dom0 = [v for v in api.VM.get_all() if api.VM.get_is_control_domain(v)][0]
    util = api.VM_metrics.get_record(api.VM.get_metrics(dom0))["VCPUs_utilisation"]
    assert util and set(util.values()) == {0.0}, util
    guest = running(api, "legacy-fields-vm")
    assert api.VM_metrics.get_record(api.VM.get_metrics(guest))["VCPUs_utilisation"] == {}
    for pif in api.PIF.get_all():
        rec = api.PIF_metrics.get_record(api.PIF.get_metrics(pif))
        assert float(rec["io_read_kbs"]) == 0.0 and float(rec["io_write_kbs"]) == 0.0
