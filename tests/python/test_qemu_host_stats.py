"""`xapid --backend qemu` fills the host's RRD with this machine's figures
(/proc and sysfs), not the simulator's: no guest needed."""

import json
import re
import time
import urllib.request

import pytest

from conftest import Xapid, netns, require_tool


@pytest.fixture(scope="module")
def xapid():
    require_tool("qemu-system-x86_64")
    # In a namespace of its own (its switches are made there), with one NIC.
    with netns("xrss") as ns:
        x = Xapid(netns=ns, extra_args=["--backend", "qemu", "--nics", "eth0"]).start()
        yield x
        x.cleanup()


def host_rows(xapid, sid, host_uuid, start):
    """{source name: [values, newest first]} of the host's 5 s rows, numbers only."""
    url = "%s/rrd_updates?session_id=%s&start=%d&host=true&vm_uuid=none&json=true&cf=AVERAGE&interval=5" % (
        xapid.url, sid, start)
    with urllib.request.urlopen(url, timeout=10) as r:
        j = json.loads(r.read())
    prefix = "AVERAGE:host:%s:" % host_uuid
    legend = [l[len(prefix):] if l.startswith(prefix) else None for l in j["meta"]["legend"]]
    out = {}
    for row in j["data"]:
        for name, v in zip(legend, row["values"]):
            if name and v not in ("NaN", "Infinity", "-Infinity"):
                out.setdefault(name, []).append(float(v))
    return out


def test_host_figures_are_this_machines(xapid, api, sid):
    start = int(time.time()) - 10
    host = api.host.get_all()[0]
    host_uuid = api.host.get_uuid(host)
    with open("/proc/meminfo") as f:
        mem_total = int(re.search(r"^MemTotal:\s+(\d+) kB", f.read(), re.M).group(1))
    with open("/proc/stat") as f:
        cpus = {l.split()[0] for l in f if re.match(r"cpu\d+ ", l)}
    # Two measured rows (the first reading is only a baseline), and more
    # until some figure moves: free memory and CPU time always do on a live
    # machine, with or without traffic.
    deadline = time.time() + 25
    while True:
        rows = host_rows(xapid, sid, host_uuid, start)
        avg = rows.get("cpu_avg", [])
        moved = [n for n in ("cpu_avg", "memory_free_kib", "loadavg") if len(set(rows.get(n, []))) > 1]
        if len(avg) >= 2 and moved:
            break
        assert time.time() < deadline, "no two differing host samples: %r" % {k: rows[k] for k in sorted(rows)}
        time.sleep(1)
    assert all(abs(v - mem_total) < 1 for v in rows["memory_total_kib"]), (rows["memory_total_kib"], mem_total)
    assert all(0 < v <= mem_total for v in rows["memory_free_kib"]), rows["memory_free_kib"]
    assert all(0.0 <= v <= 1.0 for v in avg), avg
    assert {n for n in rows if re.fullmatch(r"cpu\d+", n)} == cpus
    assert all(v >= 0 for v in rows["loadavg"])
    # Every NIC's PIF has its rates (there may be none in a container).
    for pif in api.PIF.get_all():
        if api.PIF.get_physical(pif):
            dev = api.PIF.get_device(pif)
            assert all(v >= 0 for v in rows["pif_%s_rx" % dev] + rows["pif_%s_tx" % dev]), dev
