"""RRD statistics over HTTP (reference §9): /rrd_updates in XML (as the PyPI
XenAPI-era scripts parse it) and JSON (as Xen Orchestra asks for it), the
whole-RRD dumps of /host_rrd and /vm_rrd, and the status codes."""

import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
import xml.dom.minidom

import pytest
import XenAPI

from conftest import PASSWORD
from vmlib import running, wait_for


def get(xapid, path, headers=None):
    """(status, content-type, body text) of a GET."""
    req = urllib.request.Request(xapid.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("content-type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read().decode()


@pytest.fixture(scope="module")
def vm(api):
    ref = running(api, "rrd-vm", vif=True)
    return api.VM.get_uuid(ref)


@pytest.fixture(scope="module")
def host_uuid(api):
    return api.host.get_uuid(api.host.get_all()[0])


def updates(xapid, sid, query, headers=None):
    status, ctype, body = get(xapid, "/rrd_updates?session_id=%s&%s" % (sid, query), headers)
    assert status == 200, body
    return ctype, body


@pytest.fixture(scope="module")
def sampled(xapid, sid, vm):
    """Wait until the sampler (every 5 s) has seen the VM."""
    start = int(time.time()) - 60

    def seen():
        _, body = updates(xapid, sid, "start=%d&json=true" % start)
        return ("AVERAGE:vm:%s:cpu0" % vm) in json.loads(body)["meta"]["legend"]

    wait_for(seen, timeout=12, what="a sample of the VM", interval=0.5)
    return start


def parse_xml(body):
    doc = xml.dom.minidom.parseString(body)
    text = lambda n: n.firstChild.data if n.firstChild else ""
    meta = doc.getElementsByTagName("meta")[0]
    legend = [text(e) for e in meta.getElementsByTagName("entry")]
    rows = []
    for r in doc.getElementsByTagName("row"):
        t = int(text(r.getElementsByTagName("t")[0]))
        rows.append((t, [text(v) for v in r.getElementsByTagName("v")]))
    fields = {k: int(text(meta.getElementsByTagName(k)[0])) for k in ("start", "step", "end", "rows", "columns")}
    return fields, legend, rows


def test_xml_updates(xapid, sid, vm, sampled):
    ctype, body = updates(xapid, sid, "start=%d&cf=AVERAGE&interval=5" % sampled)
    assert ctype.startswith("text/xml")
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<xport><meta><start>')
    meta, legend, rows = parse_xml(body)
    assert meta["step"] == 5
    assert meta["columns"] == len(legend)
    assert meta["rows"] == len(rows) > 0
    for name in ("cpu0", "memory", "memory_internal_free", "vif_0_rx", "vif_0_tx", "vbd_xvda_read"):
        assert "AVERAGE:vm:%s:%s" % (vm, name) in legend, legend
    assert not any(":host:" in l for l in legend), "no host without host=true"
    assert all(len(v) == len(legend) for _, v in rows)
    times = [t for t, _ in rows]
    assert times == sorted(times, reverse=True), "newest first"
    assert all(t >= sampled for t in times)
    assert times[0] == meta["end"]
    for _, vals in rows:
        for v in vals:
            assert v in ("NaN", "Infinity", "-Infinity") or float(v) == float(v)


def test_json_updates_with_host(xapid, sid, vm, host_uuid, sampled):
    ctype, body = updates(xapid, sid, "start=%d&cf=AVERAGE&interval=5&host=true&json=true" % sampled)
    assert ctype.startswith("application/json")
    j = json.loads(body)
    meta = j["meta"]
    assert all(isinstance(meta[k], str) for k in ("start", "step", "end", "rows", "columns"))
    legend = meta["legend"]
    for name in ("cpu0", "cpu_avg", "memory_total_kib", "memory_free_kib", "loadavg", "pif_eth0_rx", "pif_eth0_tx"):
        assert "AVERAGE:host:%s:%s" % (host_uuid, name) in legend, legend
    assert "AVERAGE:vm:%s:cpu0" % vm in legend
    # Grouped per object: the host's columns come first, then the VM's.
    kinds = [l.split(":")[1] for l in legend]
    assert kinds == sorted(kinds, key=lambda k: k != "host")
    assert int(meta["columns"]) == len(legend)
    assert int(meta["rows"]) == len(j["data"]) > 0
    for row in j["data"]:
        assert isinstance(row["t"], str) and int(row["t"]) >= sampled
        assert len(row["values"]) == len(legend)
        assert all(isinstance(v, str) for v in row["values"])
    total = legend.index("AVERAGE:host:%s:memory_total_kib" % host_uuid)
    assert float(j["data"][0]["values"][total]) > 0 or j["data"][0]["values"][total] == "NaN"


def test_vm_uuid_filter_and_relative_start(xapid, sid, vm, sampled):
    _, body = updates(xapid, sid, "start=-30&json&vm_uuid=%s" % vm)
    legend = json.loads(body)["meta"]["legend"]
    assert legend and all(l.split(":")[2] == vm for l in legend)
    _, body = updates(xapid, sid, "start=-30&json&vm_uuid=00000000-0000-0000-0000-000000000000")
    j = json.loads(body)
    assert j["meta"]["legend"] == [] and j["meta"]["columns"] == "0"


def test_other_cf_and_coarser_interval(xapid, sid, sampled):
    # No MAX archive (the pool does not ask for min/max): the request fails
    # as xapi's does, and a cf name it does not know is refused.
    status, _, body = get(xapid, "/rrd_updates?session_id=%s&start=%d&json&cf=MAX" % (sid, sampled))
    assert status == 500 and "No_RRA_Available" in body
    status, _, _ = get(xapid, "/rrd_updates?session_id=%s&start=%d&json&cf=average" % (sid, sampled))
    assert status == 400
    _, body = updates(xapid, sid, "start=%d&json&interval=60" % sampled)
    assert json.loads(body)["meta"]["step"] == "60"


def test_accept_header_chooses(xapid, sid, sampled):
    ctype, body = updates(xapid, sid, "start=-10", {"Accept": "*/*"})
    assert ctype.startswith("application/json")
    json.loads(body)
    ctype, body = updates(xapid, sid, "start=-10&json", {"Accept": "text/xml"})
    assert ctype.startswith("text/xml") and "<xport>" in body


def test_status_codes(xapid, sid):
    assert get(xapid, "/rrd_updates?session_id=%s" % sid)[0] == 400
    status, _, _ = get(xapid, "/rrd_updates?start=0")
    assert status == 401
    assert get(xapid, "/host_rrd")[0] == 401
    assert get(xapid, "/rrd_updates?session_id=OpaqueRef:nope&start=0")[0] == 401
    assert get(xapid, "/vm_rrd?session_id=%s&uuid=00000000-0000-0000-0000-000000000000" % sid)[0] == 404
    assert get(xapid, "/vm_rrd?session_id=%s" % sid)[0] == 404


def test_basic_auth(xapid, sampled):
    token = base64.b64encode(("root:%s" % PASSWORD).encode()).decode()
    status, ctype, body = get(xapid, "/rrd_updates?start=-10&host=true", {"Authorization": "Basic " + token})
    assert status == 200 and "<xport>" in body


def test_whole_rrds(xapid, sid, vm, sampled):
    status, ctype, body = get(xapid, "/host_rrd?session_id=%s" % sid)
    assert status == 200 and ctype.startswith("text/xml")
    assert "<rrd><version>0003</version><step>5</step><lastupdate>" in body
    doc = xml.dom.minidom.parseString(body)
    assert len(doc.getElementsByTagName("rra")) == 4
    names = [n.firstChild.data for d in doc.getElementsByTagName("rrd")[0].childNodes
             if d.nodeName == "ds" for n in d.getElementsByTagName("name")]
    assert "memory_free_kib" in names
    for path in ("/vm_rrd", "/vm_rrds"):
        status, ctype, body = get(xapid, "%s?session_id=%s&uuid=%s&json" % (path, sid, vm))
        assert status == 200 and ctype.startswith("application/json")
        j = json.loads(body)
        assert j["version"] == "0003" and j["step"] == "5"
        assert "cpu0" in [d["name"] for d in j["ds"]]
        assert [r["pdp_per_row"] for r in j["rra"]] == ["1", "12", "720", "17280"]
        assert len(j["rra"][0]["database"]) == 120
    assert get(xapid, "/host_rrds?session_id=%s&json" % sid)[0] == 200


def test_data_source_messages(api, xapid, sid, vm, sampled):
    ref = api.VM.get_by_uuid(vm)
    sources = {d["name_label"]: d for d in api.VM.get_data_sources(ref)}
    assert "cpu0" in sources and "memory" in sources, sorted(sources)
    cpu = sources["cpu0"]
    assert cpu["enabled"] is True and cpu["standard"] is True and cpu["units"] == "(fraction)"
    # query_data_source answers the newest point /rrd_updates shows (once
    # that point is known: the first one after a VM starts is not).
    col_name = "AVERAGE:vm:%s:cpu0" % vm

    def newest():
        u = json.loads(updates(xapid, sid, "start=-10&json&vm_uuid=%s" % vm)[1])
        return u["meta"]["end"], float(u["data"][0]["values"][u["meta"]["legend"].index(col_name)])
    deadline = time.time() + 15
    while True:
        end0, _ = newest()
        value = api.VM.query_data_source(ref, "cpu0")
        end1, shown = newest()
        if end0 == end1 and shown == shown:
            break
        assert time.time() < deadline, "no known point"
        time.sleep(0.5)
    assert abs(shown - value) < 1e-9
    api.VM.record_data_source(ref, "cpu0")
    with pytest.raises(XenAPI.Failure):
        api.VM.query_data_source(ref, "no_such_source")
    with pytest.raises(XenAPI.Failure):
        api.VM.record_data_source(ref, "no_such_source")
    host = api.host.get_all()[0]
    hs = {d["name_label"] for d in api.host.get_data_sources(host)}
    assert "memory_free_kib" in hs
    assert api.host.query_data_source(host, "memory_total_kib") > 0
    # Forgetting a source drops its history.
    api.VM.forget_data_source_archives(ref, "memory")
    dump = json.loads(get(xapid, "/vm_rrd?session_id=%s&uuid=%s&json" % (sid, vm))[2])
    i = [d["name"] for d in dump["ds"]].index("memory")
    assert all(row[i] == "NaN" for a in dump["rra"] for row in a["database"])


def test_xe_data_source_commands(api, xapid, vm, sampled):
    import subprocess
    from conftest import ROOT, PASSWORD
    xe = [os.path.join(ROOT, "target", "debug", "xe"), "-s", "127.0.0.1", "-p", str(xapid.port), "--nossl",
          "-u", "root", "-pw", PASSWORD]
    run = lambda *a: subprocess.run(xe + list(a), capture_output=True, text=True, timeout=30)
    r = run("vm-data-source-list", "vm=" + vm)
    assert r.returncode == 0 and re.search(r"name_label \( RO\) *: cpu0", r.stdout) and "(fraction)" in r.stdout, r
    r = run("vm-data-source-query", "vm=" + vm, "data-source=cpu0")
    assert r.returncode == 0 and 0.0 <= float(r.stdout.strip()) <= 1.0, r
    assert run("vm-data-source-record", "vm=" + vm, "data-source=cpu0").returncode == 0
    r = run("host-data-source-query", "data-source=memory_total_kib")
    assert r.returncode == 0 and float(r.stdout.strip()) > 0, r
    assert "memory_free_kib" in run("host-data-source-list").stdout
