"""VM export and import over HTTP (guide §3.5, §3.5.1, §5.1): XVA round trips
between two servers with every compression, curl as the guide shows it, the
PyPI XenAPI client with urllib and tasks, metadata export/import, raw VDI
transfer, VM.import from a URL, the legacy appliance format, and hostile
streams that must leave nothing behind."""

import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import struct
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
import xmlrpc.client

import pytest
import XenAPI

from conftest import PASSWORD, Xapid, failure, require_tool

NULL = "OpaqueRef:NULL"
MiB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(ROOT, "..", "shared", "seed", "xenserver-7.3-sdk-guide.txt")
GUIDE_OVA = os.path.join(ROOT, "crates", "xva", "tests", "data", "guide-ova.xml")


# ------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def other():
    """A second server with its own data dir: where exports are imported."""
    x = Xapid().start()
    yield x
    x.cleanup()


def url(x, path, **q):
    qs = "&".join("%s=%s" % (k, urllib.request.quote(str(v), safe=":")) for k, v in q.items())
    return "%s%s%s" % (x.url, path, "?" + qs if qs else "")


def http_get(x, path, **q):
    with urllib.request.urlopen(url(x, path, **q), timeout=60) as r:
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def http_put(x, path, data, **q):
    req = urllib.request.Request(url(x, path, **q), data=data, method="PUT")
    req.add_header("Content-Length", str(len(data)))
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def http_error(fn, *a, **kw):
    with pytest.raises(urllib.error.HTTPError) as ei:
        fn(*a, **kw)
    return ei.value.code, ei.value.read().decode(errors="replace"), ei.value.headers


def wait_task(api, task, timeout=60):
    deadline = time.time() + timeout
    while api.task.get_status(task) == "pending":
        assert time.time() < deadline, "task still pending"
        time.sleep(0.05)
    return api.task.get_record(task)


def task_refs(result):
    """A task result holding a set of refs, as XML-RPC."""
    (v,), _ = xmlrpc.client.loads("<params><param>%s</param></params>" % result)
    return v


def template(api, name="Debian Etch 4.0"):
    (t,) = [r for r, v in api.VM.get_all_records().items() if v["is_a_template"] and v["name_label"] == name]
    return t


def default_sr(api):
    return api.pool.get_default_SR(api.pool.get_all()[0])


def xenbr0(api):
    (n,) = [r for r, v in api.network.get_all_records().items() if v["bridge"] == "xenbr0"]
    return n


def pattern(n, seed=1):
    """n bytes of mixed content: text, random-looking bytes and zero runs."""
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2 ** 64 - 1)
        kind = (x >> 60) % 3
        if kind == 0:
            out += b"xapi-rs block %d " % len(out) * 8
        elif kind == 1:
            out += (x).to_bytes(8, "little") * 64
        else:
            out += bytes(4096)
    return bytes(out[:n])


def write_vdi(x, api, vdi, data):
    """Fill a VDI through PUT /import_raw_vdi."""
    st, h, _ = http_put(x, "/import_raw_vdi", data, session_id=sid_of_session(api), vdi=vdi, format="raw")
    assert st == 200


def read_vdi(x, api, vdi):
    st, h, body = http_get(x, "/export_raw_vdi", session_id=sid_of_session(api), vdi=vdi, format="raw")
    assert st == 200 and int(h["content-length"]) == len(body)
    return body


_SESSIONS = {}


def sid_of_session(api):
    return _SESSIONS[id(api)]


@pytest.fixture(scope="module")
def sessions(xapid, other):
    a, b = xapid.session(), other.session()
    xa, xb = a.xenapi, b.xenapi
    _SESSIONS[id(xa)] = a._session
    _SESSIONS[id(xb)] = b._session
    yield xa, xb
    for s in (a, b):
        try:
            s.xenapi.session.logout()
        except Exception:
            pass


@pytest.fixture(scope="module")
def A(sessions):
    return sessions[0]


@pytest.fixture(scope="module")
def B(sessions):
    return sessions[1]


def make_vm(api, x, name, data=None, size=8 * MiB, vif=True):
    """A halted VM with one disk holding `data`, a NIC and some configuration."""
    vm = api.VM.clone(template(api), name)
    api.VM.set_is_a_template(vm, False)
    vdi = new_vdi(api, name + "-disk", size)
    api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                    "unpluggable": False, "empty": False, "other_config": {}, "qos_algorithm_type": "",
                    "qos_algorithm_params": {}})
    if data is not None:
        write_vdi(x, api, vdi, data)
    if vif:
        api.VIF.create({"device": "0", "network": xenbr0(api), "VM": vm, "MAC": "", "MTU": "1500",
                        "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    api.VM.set_name_description(vm, "exported by the test suite")
    api.VM.add_to_other_config(vm, "test-key", "test-value")
    api.VM.set_memory_limits(vm, str(256 * MiB), str(512 * MiB), str(384 * MiB), str(512 * MiB))
    api.VM.set_VCPUs_max(vm, "3")
    api.VM.add_tags(vm, "exported")
    return vm, vdi


def new_vdi(api, name, size):
    return api.VDI.create({"SR": default_sr(api), "name_label": name, "name_description": "",
                           "virtual_size": str(size), "type": "user", "sharable": False, "read_only": False,
                           "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []})


def export_bytes(x, api, vm, **q):
    st, h, body = http_get(x, "/export", session_id=sid_of_session(api), uuid=api.VM.get_uuid(vm), **q)
    assert st == 200
    return h, body


def import_bytes(x, api, data, **q):
    """PUT /import with a task; returns the new VM refs."""
    task = api.task.create("import", "")
    st, h, _ = http_put(x, "/import", data, session_id=sid_of_session(api), task_id=task, **q)
    assert st == 200 and h["task-id"] == task
    rec = wait_task(api, task)
    assert rec["status"] == "success", rec["error_info"]
    api.task.destroy(task)
    return task_refs(rec["result"])


def put_raw(x, path, data, **q):
    """PUT over a plain socket, ignoring a server that stops reading (as xapi
    does once an import has failed)."""
    target = url(x, path, **q)[len(x.url):]
    s = socket.create_connection(("127.0.0.1", x.port))
    try:
        s.sendall(("PUT %s HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % (target, len(data))).encode())
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        while s.recv(65536):
            pass
    except OSError:
        pass
    finally:
        s.close()


def import_failure(x, api, data, **q):
    task = api.task.create("import", "")
    put_raw(x, "/import", data, session_id=sid_of_session(api), task_id=task, **q)
    rec = wait_task(api, task)
    assert rec["status"] == "failure", rec
    api.task.destroy(task)
    return rec["error_info"]


def inventory(api):
    """What an import could leave behind."""
    return (set(api.VM.get_all()), set(api.VDI.get_all()), set(api.VBD.get_all()), set(api.VIF.get_all()),
            set(api.network.get_all()))


def sr_files(x):
    out = set()
    for root, _, files in os.walk(os.path.join(x.data_dir, "sr")):
        out.update(os.path.join(root, f) for f in files)
    return out


CONFIG = ["name_label", "name_description", "memory_static_min", "memory_static_max", "memory_dynamic_min",
          "memory_dynamic_max", "VCPUs_max", "VCPUs_at_startup", "PV_bootloader", "PV_args", "HVM_boot_policy",
          "platform", "tags", "is_a_template", "actions_after_crash", "domain_type"]


def config(api, vm):
    r = api.VM.get_record(vm)
    c = {k: r[k] for k in CONFIG}
    c["test-key"] = r["other_config"].get("test-key")
    return c


def disks(api, x, vm):
    out = []
    for b in sorted(api.VM.get_VBDs(vm), key=lambda b: api.VBD.get_userdevice(b)):
        r = api.VBD.get_record(b)
        if r["type"] != "Disk":
            continue
        v = api.VDI.get_record(r["VDI"])
        out.append((r["userdevice"], r["mode"], r["bootable"], v["virtual_size"], v["name_label"],
                    hashlib.sha256(read_vdi(x, api, r["VDI"])).hexdigest()))
    return out


# -------------------------------------------------------------- round trips

@pytest.mark.parametrize("compression", [None, "true", "gzip", "zstd"])
def test_round_trip_between_servers(xapid, other, A, B, compression):
    data = pattern(6 * MiB + 4321, seed=len(compression or "x"))
    vm, vdi = make_vm(A, xapid, "rt-%s" % compression, data)
    q = {"use_compression": compression} if compression else {}
    h, body = export_bytes(xapid, A, vm, **q)
    assert h["content-type"] == "application/octet-stream"
    assert "content-length" not in h
    magic = {None: b"ova.xml", "true": b"\x1f\x8b", "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[compression]
    assert body.startswith(magic)
    (new,) = import_bytes(other, B, body)
    assert config(B, new) == config(A, vm)
    assert disks(B, other, new) == disks(A, xapid, vm)
    rec = B.VM.get_record(new)
    assert rec["uuid"] != A.VM.get_uuid(vm)
    assert rec["power_state"] == "Halted" and rec["current_operations"] == {}
    assert rec["other_config"]["import_task"].startswith("OpaqueRef:")
    # Not a restore: fresh MACs from a fresh seed, network matched by name.
    (vif_a,), (vif_b,) = A.VM.get_VIFs(vm), B.VM.get_VIFs(new)
    assert B.VIF.get_MAC(vif_b) != A.VIF.get_MAC(vif_a)
    assert B.network.get_bridge(B.VIF.get_network(vif_b)) == "xenbr0"
    assert rec["other_config"]["mac_seed"] != A.VM.get_other_config(vm)["mac_seed"]


def tls_put_without_close_notify(port, target, data, length=None):
    """PUT over TLS as the SDK's import sample does with Python's ssl: no
    Content-Length (unless given), the body streamed, then the socket closed
    without unwrap(), so no close_notify is sent. The response head is read
    first so the close is a FIN rather than a reset over unread bytes."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60))
    head = "PUT %s HTTP/1.0\r\n" % target
    if length is not None:
        head += "Content-Length: %d\r\n" % length
    tls.sendall((head + "\r\n").encode())
    for i in range(0, len(data), 65536):
        tls.sendall(data[i:i + 65536])
    got = b""
    while b"\r\n\r\n" not in got and len(got) < 65536:
        chunk = tls.recv(4096)
        if not chunk:
            break
        got += chunk
    tls.close()
    return got


def test_import_raw_vdi_over_tls_ended_without_close_notify():
    from conftest import free_port
    port = free_port()
    x = Xapid(extra_args=["--https", "127.0.0.1:%d" % port]).start()
    try:
        s = x.session()
        api = s.xenapi
        _SESSIONS[id(api)] = s._session
        data = pattern(3 * MiB + 4321, seed=5)
        vdi = new_vdi(api, "tls-import", 4 * MiB)
        task = api.task.create("tls import", "")
        q = "?session_id=%s&vdi=%s&task_id=%s&format=raw" % (s._session, vdi, task)
        got = tls_put_without_close_notify(port, "/import_raw_vdi" + q, data)
        assert got.startswith(b"HTTP/1.") and b" 200 " in got.split(b"\r\n")[0], got
        rec = wait_task(api, task)
        assert rec["status"] == "success", rec
        assert read_vdi(x, api, vdi)[:len(data) + 1] == data + b"\x00"
        # With a Content-Length the same early end is still an I/O error.
        other = new_vdi(api, "tls-import-short", 4 * MiB)
        task = api.task.create("tls import short", "")
        q = "?session_id=%s&vdi=%s&task_id=%s&format=raw" % (s._session, other, task)
        tls_put_without_close_notify(port, "/import_raw_vdi" + q, data, length=len(data) + 1000)
        rec = wait_task(api, task)
        assert rec["status"] == "failure" and rec["error_info"] == ["VDI_IO_ERROR", "Device I/O errors"], rec
    finally:
        x.cleanup()


def tar_members(data):
    """(name, bytes) of every entry: what must not depend on how the stream
    was sent (entry times may differ between two exports)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        return [(m.name, t.extractfile(m).read()) for m in t.getmembers()]


def test_export_is_the_same_over_every_transport():
    """An uncompressed export over TCP, the Unix socket, TLS, and as the
    second request of a keep-alive connection (served through hyper rather
    than on the raw connection) holds the same entries."""
    import ssl
    from conftest import free_port
    port = free_port()
    x = Xapid(extra_args=["--https", "127.0.0.1:%d" % port]).start()
    try:
        s = x.session()
        api = s.xenapi
        _SESSIONS[id(api)] = s._session
        data = pattern(5 * MiB + 777, seed=9)
        vm, _ = make_vm(api, x, "transports", data)
        target = url(x, "/export", session_id=s._session, uuid=api.VM.get_uuid(vm))[len(x.url):]
        _, plain = export_bytes(x, api, vm)
        want = tar_members(plain)
        assert want[0][0] == "ova.xml"
        assert b"".join(d for n, d in want if "/" in n and not n.endswith(".xxhash"))[:len(data)] == data
        # The Unix socket (sendfile to a Unix socket).
        c = x.connection(unix=True, timeout=60)
        c.request("GET", target)
        r = c.getresponse()
        assert r.status == 200 and tar_members(r.read()) == want
        c.close()
        # A keep-alive connection whose first request was an API call.
        c = x.connection(timeout=60)
        c.request("POST", "/", xmlrpc.client.dumps((s._session,), "session.get_this_host"), {"Content-Type": "text/xml"})
        assert c.getresponse().read()
        c.request("GET", target)
        r = c.getresponse()
        assert r.status == 200 and tar_members(r.read()) == want
        c.close()
        # TLS.
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with urllib.request.urlopen("https://127.0.0.1:%d%s" % (port, target), timeout=60, context=ctx) as r:
            assert r.status == 200 and tar_members(r.read()) == want
    finally:
        x.cleanup()


def big_vm(api, x, name, size=64 * MiB):
    """A VM whose export outruns the socket buffers of a client not reading."""
    return make_vm(api, x, name, b"\x01" * size, size=size)


def stalled_export(x, api, vm, task, path="/export", vdi=None):
    """Start an export (of a VM, or of one disk raw) to a client that reads
    its head and then nothing more."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", x.port))
    what = "vdi=%s" % vdi if vdi else "uuid=%s" % api.VM.get_uuid(vm)
    s.sendall(("GET %s?session_id=%s&%s&task_id=%s HTTP/1.0\r\n\r\n"
               % (path, sid_of_session(api), what, task)).encode())
    s.settimeout(10)
    assert s.recv(100).startswith(b"HTTP/1.0 200")
    return s


@pytest.mark.parametrize("path", ["/export", "/export_raw_vdi"])
def test_cancelling_an_export_to_a_stalled_client(xapid, A, path):
    """A client that stops reading holds the transfer until its task is
    cancelled; then the transfer ends and the task says so."""
    vm, vdi = big_vm(A, xapid, "stalled")
    task = A.task.create("export", "")
    s = stalled_export(xapid, A, vm, task, path, vdi if path == "/export_raw_vdi" else None)
    time.sleep(0.3)
    A.task.cancel(task)
    rec = wait_task(A, task, timeout=30)
    s.close()
    assert rec["status"] == "cancelled" and rec["error_info"][0] == "TASK_CANCELLED"
    assert A.VM.get_current_operations(vm) == {}
    A.task.destroy(task)


def test_client_leaving_mid_export(xapid, A):
    vm, _ = big_vm(A, xapid, "left")
    task = A.task.create("export", "")
    s = stalled_export(xapid, A, vm, task)
    time.sleep(0.3)
    # Unread data makes the close a reset: the server's next write fails.
    s.close()
    rec = wait_task(A, task, timeout=30)
    assert rec["status"] == "failure", rec
    assert A.VM.get_current_operations(vm) == {}
    A.task.destroy(task)
    _, body = export_bytes(xapid, A, vm)
    assert tar_members(body)[0][0] == "ova.xml"


def test_ova_xml_is_xapis_shape(xapid, A):
    vm, _ = make_vm(A, xapid, "shape", pattern(3 * MiB))
    _, body = export_bytes(xapid, A, vm)
    tar = tarfile.open(fileobj=io.BytesIO(body))
    names = tar.getnames()
    assert names[0] == "ova.xml"
    xml = tar.extractfile("ova.xml").read().decode()
    assert xml.startswith("<value><struct>") and not xml.startswith("<?xml")
    (hdr,), _ = xmlrpc.client.loads("<params><param>%s</param></params>" % xml)
    assert hdr["version"]["hostname"] == "localhost"
    assert hdr["version"]["export_vsn"] == "2"
    classes = [o["class"] for o in hdr["objects"]]
    assert classes[0] == "VM" and {"VBD", "VDI", "SR", "VIF", "network"} <= set(classes)
    ids = [o["id"] for o in hdr["objects"]]
    assert ids[0] == "Ref:0" and all(i.startswith("Ref:") for i in ids) and len(set(ids)) == len(ids)
    vmrec = hdr["objects"][0]["snapshot"]
    assert vmrec["power_state"] == "Halted" and vmrec["is_a_snapshot"] is False
    assert all(v.startswith("Ref:") for v in vmrec["VBDs"] + vmrec["VIFs"])
    assert vmrec["metrics"] == NULL and vmrec["allowed_operations"] == []
    # Disk entries: Ref:n/%08d with XXH64 checksums; zero chunks skipped but
    # the first and last always present.
    (vdi_id,) = [o["id"] for o in hdr["objects"] if o["class"] == "VDI"]
    chunks = [n for n in names if n.startswith(vdi_id + "/") and not n.endswith(".xxhash")]
    assert chunks[0] == vdi_id + "/00000000"
    size = int([o for o in hdr["objects"] if o["class"] == "VDI"][0]["snapshot"]["virtual_size"])
    assert chunks[-1] == "%s/%08d" % (vdi_id, size // MiB - 1)
    for c in chunks:
        assert names[names.index(c) + 1] == c + ".xxhash"
        s = tar.extractfile(c + ".xxhash").read().decode()
        assert len(s) == 16 and s == s.upper()


def test_guide_5_1_urllib_with_tasks(xapid, other, A, B):
    """The guide's pseudo code: create a task, GET /export with session_id,
    task_id and (as the guide writes it) the VM's uuid in `ref`."""
    vm, _ = make_vm(A, xapid, "guide51", pattern(2 * MiB))
    task = A.task.create("export", "")
    st, h, body = http_get(xapid, "/export", session_id=sid_of_session(A), task_id=task, ref=A.VM.get_uuid(vm))
    assert st == 200 and h["task-id"] == task
    rec = wait_task(A, task)
    assert rec["status"] == "success" and float(rec["progress"]) == 1.0
    assert A.VM.get_current_operations(vm) == {}
    A.task.destroy(task)
    task = B.task.create("import", "")
    st, h, _ = http_put(other, "/import", body, session_id=sid_of_session(B), task_id=task)
    rec = wait_task(B, task)
    assert rec["status"] == "success"
    assert rec["other_config"].get("object_creation") == "complete"
    (new,) = task_refs(rec["result"])
    assert B.VM.get_name_label(new) == "guide51"


def curl(*args):
    return subprocess.run(["curl", "-s", "-S", "-o", "/dev/stdout", "-w", "\n%{http_code}"] + list(args),
                          capture_output=True, timeout=60)


def test_curl_as_in_the_guide(xapid, other, A, B, tmp_path):
    require_tool("curl")
    vm, _ = make_vm(A, xapid, "curl-vm", pattern(3 * MiB))
    f = tmp_path / "exportfile"
    base_a = "http://root:%s@127.0.0.1:%d" % (PASSWORD, xapid.port)
    base_b = "http://root:%s@127.0.0.1:%d" % (PASSWORD, other.port)
    r = subprocess.run(["curl", "-s", "-f", "%s/export?uuid=%s" % (base_a, A.VM.get_uuid(vm)), "-o", str(f)],
                       timeout=60)
    assert r.returncode == 0 and f.stat().st_size > 3 * MiB
    before = set(B.VM.get_all())
    r = subprocess.run(["curl", "-s", "-f", "-T", str(f), "%s/import" % base_b], timeout=60)
    assert r.returncode == 0
    new = wait_new_vm(B, before, "curl-vm")
    assert disks(B, other, new) == disks(A, xapid, vm)
    # Into a named SR.
    before = set(B.VM.get_all())
    r = subprocess.run(["curl", "-s", "-f", "-T", str(f), "%s/import?sr_id=%s" % (base_b, default_sr(B))], timeout=60)
    assert r.returncode == 0
    wait_new_vm(B, before, "curl-vm")
    # Wrong password: 401 and nothing imported.
    r = curl("-T", str(f), "http://root:wrong@127.0.0.1:%d/import" % other.port)
    assert r.stdout.decode().rstrip().endswith("401")


def wait_new_vm(api, before, name, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        new = [v for v in set(api.VM.get_all()) - before if api.VM.get_name_label(v) == name
               and api.VM.get_current_operations(v) == {}]
        if new:
            return new[0]
        time.sleep(0.05)
    raise AssertionError("no new VM %s" % name)


# ------------------------------------------------------------ HTTP errors

def test_authentication(xapid, A):
    vm, _ = make_vm(A, xapid, "auth-vm", vif=False)
    u = A.VM.get_uuid(vm)
    code, body, headers = http_error(http_get, xapid, "/export", uuid=u)
    assert code == 401 and headers["WWW-Authenticate"].startswith("Basic realm=")
    code, _, _ = http_error(http_get, xapid, "/export", uuid=u, session_id="OpaqueRef:nonsense")
    assert code == 401
    # A task named with bad credentials fails.
    task = A.task.create("t", "")
    http_error(http_get, xapid, "/export", uuid=u, session_id="OpaqueRef:nonsense", task_id=task)
    rec = A.task.get_record(task)
    assert rec["status"] == "failure" and rec["error_info"][0] == "SESSION_AUTHENTICATION_FAILED"
    # The session cookie works as well as the query parameter.
    c = xapid.connection()
    c.request("GET", "/export_metadata?uuid=%s" % u, headers={"Cookie": "session_id=%s" % sid_of_session(A)})
    r = c.getresponse()
    assert r.status == 200 and int(r.getheader("content-length")) == len(r.read())
    c.close()


def test_unknown_objects_are_404(xapid, A):
    s = sid_of_session(A)
    for path, q in [("/export", {"uuid": "00000000-0000-0000-0000-000000000000"}),
                    ("/export", {"ref": "OpaqueRef:nope"}),
                    ("/export_metadata", {"uuid": "nope"}),
                    ("/export_raw_vdi", {"vdi": "OpaqueRef:nope"})]:
        code, _, _ = http_error(http_get, xapid, path, session_id=s, **q)
        assert code == 404, path
    code, _, _ = http_error(http_put, xapid, "/import_raw_vdi", b"x", session_id=s, vdi="nope")
    assert code == 404
    code, _, _ = http_error(http_put, xapid, "/import", b"x", session_id=s, sr_id="OpaqueRef:nope")
    assert code == 404


def test_running_vm_export_is_refused(xapid, A):
    vm, _ = make_vm(A, xapid, "running-export", vif=False)
    A.VM.start(vm, False, False)
    task = A.task.create("t", "")
    code, body, _ = http_error(http_get, xapid, "/export", session_id=sid_of_session(A), ref=vm, task_id=task)
    assert code == 500 and "VM_BAD_POWER_STATE" in body
    rec = A.task.get_record(task)
    assert rec["status"] == "failure" and rec["error_info"][0] == "VM_BAD_POWER_STATE"
    assert rec["error_info"][1] == vm
    A.VM.hard_shutdown(vm)


def test_default_sr_not_found(xapid, A):
    vm, _ = make_vm(A, xapid, "nosr", vif=False)
    _, body = export_bytes(xapid, A, vm)
    pool = A.pool.get_all()[0]
    sr = A.pool.get_default_SR(pool)
    A.pool.set_default_SR(pool, NULL)
    try:
        task = A.task.create("t", "")
        # The server answers before reading the body (as xapi): send little.
        code, text, _ = http_error(http_put, xapid, "/import", body[:100], session_id=sid_of_session(A), task_id=task)
        assert code == 500 and "DEFAULT_SR_NOT_FOUND" in text
        assert A.task.get_error_info(task)[0] == "DEFAULT_SR_NOT_FOUND"
    finally:
        A.pool.set_default_SR(pool, sr)


def test_chunked_import_is_forbidden(xapid, A):
    c = xapid.connection()
    c.putrequest("PUT", "/import?session_id=%s" % sid_of_session(A))
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    c.send(b"5\r\nhello\r\n0\r\n\r\n")
    r = c.getresponse()
    assert r.status == 403
    c.close()


def test_iso_sr_import_is_a_bad_request(xapid, A):
    (iso,) = [r for r, v in A.SR.get_all_records().items() if v["content_type"] == "iso"]
    code, text, _ = http_error(http_put, xapid, "/import", b"x", session_id=sid_of_session(A), sr_id=iso)
    assert code == 400 and "SR_OPERATION_NOT_SUPPORTED" in text


# ------------------------------------------------------- hostile streams

def corrupt_chunk(body):
    """Flip a byte inside the first non-empty disk chunk of a plain XVA."""
    tar = tarfile.open(fileobj=io.BytesIO(body))
    for m in tar.getmembers():
        if "/" in m.name and not m.name.endswith(".xxhash") and m.size > 0:
            b = bytearray(body)
            b[m.offset_data + 100] ^= 0xFF
            return bytes(b)
    raise AssertionError("no chunk")


def test_checksum_mismatch_destroys_everything_unless_forced(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "corrupt", pattern(2 * MiB))
    _, body = export_bytes(xapid, A, vm)
    bad = corrupt_chunk(body)
    before, files = inventory(B), sr_files(other)
    err = import_failure(other, B, bad)
    assert err[0] == "IMPORT_ERROR" and "checksum" in err[1].lower()
    assert inventory(B) == before and sr_files(other) == files
    # force=true ignores the checksum and keeps the VM.
    (new,) = import_bytes(other, B, bad, force="true")
    assert B.VM.get_name_label(new) == "corrupt"


def rebuild(members):
    """A plain tar from (name, bytes) pairs, names written as given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def members_of(body):
    tar = tarfile.open(fileobj=io.BytesIO(body))
    return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_hostile_streams_leave_nothing_behind(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "hostile", pattern(4 * MiB))
    _, body = export_bytes(xapid, A, vm)
    ms = members_of(body)
    ova = ms[0][1].decode()
    chunks = [m for m in ms[1:] if not m[0].endswith(".xxhash")]
    first, second = ms[1:3], ms[3:5]
    cases = {
        "truncated": body[: len(body) // 2],
        "truncated at an entry": rebuild(ms[:-2]),
        "wrong size (chunk past the disk)": rebuild(ms[:-2] + [(ms[-2][0][:-8] + "%08d" % 9999, ms[-2][1]),
                                                               (ms[-2][0][:-8] + "%08d.xxhash" % 9999, ms[-1][1])]),
        "out of order": rebuild([ms[0]] + second + first + ms[5:]),
        "duplicated": rebuild([ms[0]] + first + first + ms[3:]),
        "tar path traversal": rebuild([ms[0], ("../../../../tmp/evil", b"x")] + ms[1:]),
        "absolute path": rebuild([ms[0], ("/etc/passwd", b"x")] + ms[1:]),
        "unknown class": rebuild([(ms[0][0], ova.replace("<value>VIF</value>", "<value>Frobnicator</value>", 1)
                                  .encode())] + ms[1:]),
        "missing ref": rebuild([(ms[0][0], ova.replace("<name>VM</name><value>Ref:0</value>",
                                                       "<name>VM</name><value>Ref:999</value>", 1).encode())]
                               + ms[1:]),
        "not an XVA": b"hello world" * 1000,
        "ova.xml not first": rebuild(ms[1:3] + [ms[0]] + ms[3:]),
        "bad ova.xml": rebuild([("ova.xml", b"<value><struct><member>")] + ms[1:]),
    }
    assert len(chunks) >= 3
    before, files = inventory(B), sr_files(other)
    for what, data in cases.items():
        err = import_failure(other, B, data)
        assert err and err[0].startswith("IMPORT_ERROR"), (what, err)
        assert inventory(B) == before, what
        assert sr_files(other) == files, what
    assert not os.path.exists("/tmp/evil")
    # The specific codes for structure errors.
    assert import_failure(other, B, cases["missing ref"])[:2] == ["IMPORT_ERROR_FAILED_TO_FIND_OBJECT", "Ref:999"]
    assert "Frobnicator" in import_failure(other, B, cases["unknown class"])[1]


def test_decompression_bomb_is_bounded_by_the_disk_size(other, B):
    """A tiny gzip stream claiming an 8 MiB disk but holding 200 MiB of chunks."""
    ova = xmlrpc_value({
        "version": {"hostname": "localhost", "xapi_major": "24", "xapi_minor": "12", "export_vsn": "2"},
        "objects": [
            {"class": "VM", "id": "Ref:0", "snapshot": {"name_label": "bomb", "VBDs": ["Ref:1"],
                                                       "memory_static_max": str(256 * MiB),
                                                       "memory_dynamic_max": str(256 * MiB),
                                                       "memory_dynamic_min": str(256 * MiB),
                                                       "memory_static_min": str(256 * MiB)}},
            {"class": "VBD", "id": "Ref:1", "snapshot": {"VM": "Ref:0", "VDI": "Ref:2", "userdevice": "0",
                                                        "type": "Disk", "mode": "RW"}},
            {"class": "VDI", "id": "Ref:2", "snapshot": {"SR": "Ref:3", "virtual_size": str(8 * MiB),
                                                        "type": "user"}},
            {"class": "SR", "id": "Ref:3", "snapshot": {"content_type": "user"}},
        ]})
    raw = io.BytesIO()
    z = bytes(MiB)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        add(t, "ova.xml", ova.encode())
        for i in range(200):
            add(t, "Ref:2/%08d" % i, z)
            add(t, "Ref:2/%08d.checksum" % i, hashlib.sha1(z).hexdigest().encode())
    bomb = gzip.compress(raw.getvalue(), 9)
    assert len(bomb) < MiB
    before, files = inventory(B), sr_files(other)
    err = import_failure(other, B, bomb)
    assert err[0] == "IMPORT_ERROR" and "size" in err[1]
    assert inventory(B) == before and sr_files(other) == files


def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))


def xmlrpc_value(v):
    s = xmlrpc.client.dumps((v,))
    return s[s.index("<value>"):s.rindex("</value>") + len("</value>")]


def test_cancelling_an_import_leaves_nothing(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "cancel-me", pattern(8 * MiB))
    _, body = export_bytes(xapid, A, vm)
    before, files = inventory(B), sr_files(other)
    task = B.task.create("import", "")
    s = socket.create_connection(("127.0.0.1", other.port))
    s.sendall(("PUT /import?session_id=%s&task_id=%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
               % (sid_of_session(B), task, len(body))).encode())
    s.sendall(body[: len(body) // 3])
    # Objects exist once ova.xml is read; then cancel and send the rest.
    deadline = time.time() + 10
    while B.task.get_other_config(task).get("object_creation") != "complete":
        assert time.time() < deadline
        time.sleep(0.02)
    B.task.cancel(task)
    try:
        s.sendall(body[len(body) // 3:])
    except OSError:
        pass
    rec = wait_task(B, task)
    s.close()
    assert rec["status"] == "cancelled" and rec["error_info"][0] == "TASK_CANCELLED"
    assert inventory(B) == before and sr_files(other) == files


def test_premature_eof(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "eof", pattern(2 * MiB))
    _, body = export_bytes(xapid, A, vm)
    before = inventory(B)
    task = B.task.create("import", "")
    s = socket.create_connection(("127.0.0.1", other.port))
    s.sendall(("PUT /import?session_id=%s&task_id=%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
               % (sid_of_session(B), task, len(body) + 5000)).encode())
    s.sendall(body[:-1024])
    s.shutdown(socket.SHUT_WR)
    rec = wait_task(B, task)
    s.close()
    assert rec["status"] == "failure" and rec["error_info"][0].startswith("IMPORT_ERROR")
    assert inventory(B) == before


# ------------------------------------------------------- restore and force

def test_restore_keeps_uuids_and_macs_and_replaces_older_copies(xapid, A):
    vm, vdi = make_vm(A, xapid, "restore-me", pattern(2 * MiB))
    uuid, (vif,) = A.VM.get_uuid(vm), A.VM.get_VIFs(vm)
    mac, vif_uuid = A.VIF.get_MAC(vif), A.VIF.get_uuid(vif)
    _, body = export_bytes(xapid, A, vm)
    # The original is still there: same uuid, not newer → refused.
    err = import_failure(xapid, A, body, restore="true")
    assert err == ["VM_TO_IMPORT_IS_NOT_NEWER_VERSION", vm, "0", "0"]
    A.VM.destroy(vm)
    A.VDI.destroy(vdi)
    (new,) = import_bytes(xapid, A, body, restore="true")
    assert A.VM.get_uuid(new) == uuid
    (nvif,) = A.VM.get_VIFs(new)
    assert A.VIF.get_MAC(nvif) == mac and A.VIF.get_uuid(nvif) == vif_uuid
    assert A.VM.get_record(new)["version"] == "1"
    # A second restore of the same file is older than what is there now...
    err = import_failure(xapid, A, body, restore="true")
    assert err[0] == "VM_TO_IMPORT_IS_NOT_NEWER_VERSION" and err[2:] == ["1", "0"]
    # ...unless forced: the copy is replaced.
    (again,) = import_bytes(xapid, A, body, restore="true", force="true")
    assert A.VM.get_uuid(again) == uuid and new not in A.VM.get_all()
    # A running VM with that uuid is not replaced.
    A.VM.start(again, False, False)
    err = import_failure(xapid, A, body, restore="true")
    assert err == ["VM_BAD_POWER_STATE", again, "Halted", "Running"]
    A.VM.hard_shutdown(again)


def test_plain_import_of_the_same_file_twice_gives_two_vms(xapid, A):
    vm, _ = make_vm(A, xapid, "twice", pattern(MiB))
    _, body = export_bytes(xapid, A, vm)
    (a,) = import_bytes(xapid, A, body)
    (b,) = import_bytes(xapid, A, body)
    uuids = {A.VM.get_uuid(x) for x in (vm, a, b)}
    assert len(uuids) == 3


# ------------------------------------------------- templates and snapshots

def test_templates_stay_templates(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "my-template", pattern(MiB))
    A.VM.set_is_a_template(vm, True)
    _, body = export_bytes(xapid, A, vm)
    (new,) = import_bytes(other, B, body)
    assert B.VM.get_is_a_template(new) is True
    assert disks(B, other, new) == disks(A, xapid, vm)


def test_snapshot_export_imports_as_a_template(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "snapped", pattern(2 * MiB))
    snap = A.VM.snapshot(vm, "snap-1")
    _, body = export_bytes(xapid, A, snap)
    (new,) = import_bytes(other, B, body)
    rec = B.VM.get_record(new)
    assert rec["is_a_snapshot"] is False and rec["is_a_template"] is True
    assert rec["snapshot_of"] == NULL
    assert disks(B, other, new)[0][-1] == disks(A, xapid, vm)[0][-1]


def test_metadata_round_trip_onto_existing_disks(xapid, A):
    vm, vdi = make_vm(A, xapid, "meta", pattern(2 * MiB))
    snap = A.VM.snapshot(vm, "meta-snap")
    snap_vdis = {A.VBD.get_VDI(b) for b in A.VM.get_VBDs(snap) if A.VBD.get_type(b) == "Disk"}
    before_cfg = config(A, vm)
    st, h, body = http_get(xapid, "/export_metadata", session_id=sid_of_session(A), uuid=A.VM.get_uuid(vm))
    assert int(h["content-length"]) == len(body)
    names = tarfile.open(fileobj=io.BytesIO(body)).getnames()
    assert names == ["ova.xml"]
    # The configuration goes; the disks stay.
    for v in (snap, vm):
        A.VM.destroy(v)
    assert vdi in A.VDI.get_all()
    task = A.task.create("meta", "")
    st, h, _ = http_put(xapid, "/import_metadata", body, session_id=sid_of_session(A), task_id=task)
    rec = wait_task(A, task)
    assert rec["status"] == "success", rec["error_info"]
    (new,) = task_refs(rec["result"])  # the snapshot is not in the result
    assert config(A, new) == before_cfg
    (nvbd,) = [b for b in A.VM.get_VBDs(new) if A.VBD.get_type(b) == "Disk"]
    assert A.VBD.get_VDI(nvbd) == vdi
    (nsnap,) = A.VM.get_snapshots(new)
    assert A.VM.get_is_a_snapshot(nsnap) and A.VM.get_snapshot_of(nsnap) == new
    assert A.VM.get_name_label(nsnap) == "meta-snap"
    assert {A.VBD.get_VDI(b) for b in A.VM.get_VBDs(nsnap) if A.VBD.get_type(b) == "Disk"} == snap_vdis


def test_metadata_import_needs_the_disks(xapid, other, A, B):
    vm, _ = make_vm(A, xapid, "meta-missing", pattern(MiB))
    st, h, body = http_get(xapid, "/export_metadata", session_id=sid_of_session(A), uuid=A.VM.get_uuid(vm))
    before = inventory(B)
    task = B.task.create("meta", "")
    http_put(other, "/import_metadata", body, session_id=sid_of_session(B), task_id=task)
    rec = wait_task(B, task)
    assert rec["status"] == "failure"
    assert rec["error_info"][0] in ("VDI_LOCATION_MISSING", "VDI_CONTENT_ID_MISSING")
    assert inventory(B) == before


def test_metadata_export_of_a_snapshot_is_refused(xapid, A):
    vm, _ = make_vm(A, xapid, "meta-snap-refused", vif=False)
    snap = A.VM.snapshot(vm, "s")
    code, text, _ = http_error(http_get, xapid, "/export_metadata", session_id=sid_of_session(A), ref=snap)
    assert code == 500 and "OPERATION_NOT_ALLOWED" in text


# --------------------------------------------------------------- raw VDIs

def test_raw_vdi_round_trip_and_limits(xapid, A):
    sr = default_sr(A)
    vdi = A.VDI.create({"SR": sr, "name_label": "raw", "name_description": "", "virtual_size": str(4 * MiB),
                        "type": "user", "sharable": False, "read_only": False, "other_config": {},
                        "xenstore_data": {}, "sm_config": {}, "tags": []})
    data = pattern(3 * MiB + 77)
    write_vdi(xapid, A, vdi, data)
    got = read_vdi(xapid, A, vdi)
    assert len(got) == 4 * MiB and got[: len(data)] == data and got[len(data):] == bytes(len(got) - len(data))
    # Overwriting: old data does not survive where the new stream has zeros.
    write_vdi(xapid, A, vdi, bytes(MiB))
    assert read_vdi(xapid, A, vdi) == bytes(4 * MiB)
    # Too much data for the disk.
    task = A.task.create("t", "")
    http_put(xapid, "/import_raw_vdi", bytes(5 * MiB), session_id=sid_of_session(A), vdi=vdi, task_id=task)
    assert wait_task(A, task)["status"] == "failure"
    code, _, _ = http_error(http_put, xapid, "/import_raw_vdi", b"x", session_id=sid_of_session(A), vdi=vdi,
                            format="tar-ish")
    assert code == 400


def test_raw_vdi_result_and_short_body(xapid, A):
    """As xapi: the task's result is the VDI; a body that ends before its
    Content-Length (Xen Orchestra's uploads of unknown length declare 1 PiB)
    leaves what came written and fails with VDI_IO_ERROR."""
    vdi = new_vdi(A, "short-body", 2 * MiB)
    task = A.task.create("t", "")
    http_put(xapid, "/import_raw_vdi", b"\x01" * 4096, session_id=sid_of_session(A), vdi=vdi, task_id=task)
    rec = wait_task(A, task)
    assert rec["status"] == "success" and task_refs(rec["result"]) == vdi
    task = A.task.create("t", "")
    s = socket.create_connection(("127.0.0.1", xapid.port))
    s.sendall(("PUT /import_raw_vdi?session_id=%s&vdi=%s&task_id=%s HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
               % (sid_of_session(A), vdi, task, 1 << 50)).encode() + b"\x02" * 8192)
    s.shutdown(socket.SHUT_WR)
    rec = wait_task(A, task)
    s.close()
    assert rec["status"] == "failure" and rec["error_info"] == ["VDI_IO_ERROR", "Device I/O errors"]
    assert read_vdi(xapid, A, vdi)[:8193] == b"\x02" * 8192 + b"\x00"


def vhd_blocks(vhd):
    """(disk type, current size, allocated block indexes) of a VHD image."""
    footer = vhd[:512]
    assert footer[:8] == b"conectix" and vhd[-512:] == footer
    dtype, size = struct.unpack(">I", footer[60:64])[0], struct.unpack(">Q", footer[48:56])[0]
    hdr = vhd[512:1536]
    assert hdr[:8] == b"cxsparse"
    table, entries = struct.unpack(">Q", hdr[16:24])[0], struct.unpack(">I", hdr[28:32])[0]
    bat = struct.unpack(">%dI" % entries, vhd[table:table + 4 * entries])
    return dtype, size, [i for i, e in enumerate(bat) if e != 0xFFFFFFFF]


def test_delta_vhd_export_between_snapshots(xapid, A, tmp_path):
    """/export_raw_vdi?base=S&format=vhd sends a differencing VHD of only the
    2 MiB blocks that differ from S; it applies onto a copy of S."""
    require_tool("qemu-img")
    size = 8 * MiB
    vdi = new_vdi(A, "delta", size)
    data = bytearray(pattern(size))
    write_vdi(xapid, A, vdi, bytes(data))
    s1 = A.VDI.snapshot(vdi, {})
    data[2 * MiB + 10:2 * MiB + 18] = b"changed!"
    data[7 * MiB + 5] ^= 0xFF
    write_vdi(xapid, A, vdi, bytes(data))
    s2 = A.VDI.snapshot(vdi, {})
    sid = sid_of_session(A)
    st, h, full = http_get(xapid, "/export_raw_vdi", session_id=sid, vdi=s2, format="vhd")
    assert vhd_blocks(full)[0] == 3  # dynamic
    st, h, delta = http_get(xapid, "/export_raw_vdi", session_id=sid, vdi=s2, base=s1, format="vhd")
    assert st == 200 and int(h["content-length"]) == len(delta)
    dtype, vsize, blocks = vhd_blocks(delta)
    assert (dtype, vsize, blocks) == (4, size, [1, 3])
    assert len(delta) == 512 + 1024 + 512 + 2 * (512 + 2 * MiB) + 512
    (tmp_path / "d.vhd").write_bytes(delta)
    info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", str(tmp_path / "d.vhd")]))
    assert info["format"] == "vpc" and info["virtual-size"] == size
    # Sibling snapshots and the live disk are of one chain, in any order.
    st, h, none = http_get(xapid, "/export_raw_vdi", session_id=sid, vdi=vdi, base=s2, format="vhd")
    assert vhd_blocks(none)[2] == []
    # Restore: a copy of the base, then the delta over it.
    restored = A.VDI.clone(s1, {})
    http_put(xapid, "/import_raw_vdi", delta, session_id=sid, vdi=restored, format="vhd")
    assert read_vdi(xapid, A, restored) == bytes(data)
    # A base from another chain, or a format that cannot say "unchanged".
    other = new_vdi(A, "elsewhere", size)
    code, body, _ = http_error(http_get, xapid, "/export_raw_vdi", session_id=sid, vdi=s2, base=other, format="vhd")
    assert code == 500 and "VDI_IO_ERROR" in body and "chain" in body
    code, body, _ = http_error(http_get, xapid, "/export_raw_vdi", session_id=sid, vdi=s2, base=s1, format="raw")
    assert code == 500 and "INVALID_VALUE" in body


def test_raw_vdi_as_vhd(xapid, A, tmp_path):
    require_tool("qemu-img")
    sr = default_sr(A)
    mk = lambda n: A.VDI.create({"SR": sr, "name_label": n, "name_description": "", "virtual_size": str(4 * MiB),
                                 "type": "user", "sharable": False, "read_only": False, "other_config": {},
                                 "xenstore_data": {}, "sm_config": {}, "tags": []})
    src, dst = mk("vhd-src"), mk("vhd-dst")
    data = pattern(2 * MiB)
    write_vdi(xapid, A, src, data)
    st, h, vhd = http_get(xapid, "/export_raw_vdi", session_id=sid_of_session(A), vdi=src, format="vhd")
    assert vhd[-512:].startswith(b"conectix")  # the VHD footer
    (tmp_path / "d.vhd").write_bytes(vhd)
    info = subprocess.check_output(["qemu-img", "info", str(tmp_path / "d.vhd")]).decode()
    assert "vpc" in info
    st, h, _ = http_put(xapid, "/import_raw_vdi", vhd, session_id=sid_of_session(A), vdi=dst, format="vhd")
    assert read_vdi(xapid, A, dst)[: len(data)] == data


# -------------------------------------------------------------- VM.import

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_vm_import_from_a_url(xapid, other, A, B, tmp_path):
    vm, _ = make_vm(A, xapid, "from-url", pattern(2 * MiB))
    _, body = export_bytes(xapid, A, vm, use_compression="zstd")
    (tmp_path / "vm.xva").write_bytes(body)
    handler = lambda *a, **kw: Quiet(*a, directory=str(tmp_path), **kw)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        u = "http://127.0.0.1:%d/vm.xva" % srv.server_address[1]
        (new,) = getattr(B.VM, "import")(u, default_sr(B), False, False)
        assert disks(B, other, new) == disks(A, xapid, vm)
        task = getattr(B.Async.VM, "import")(u, NULL, False, False)
        rec = wait_task(B, task)
        assert rec["status"] == "success"
        (again,) = task_refs(rec["result"])
        assert B.VM.get_name_label(again) == "from-url"
        d = failure(getattr(B.VM, "import"), "http://127.0.0.1:%d/missing.xva" % srv.server_address[1],
                    NULL, False, False)
        assert d[0] == "IMPORT_ERROR" and "404" in d[1]
    finally:
        srv.shutdown()


# ------------------------------------------------------ the legacy format

def legacy_tar(xml, disks):
    """The guide's layout as a tar: ova.xml, then <dir>/chunk-NNNNNNNNN.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        add(t, "ova.xml", xml.encode())
        for d, chunks in disks:
            for i, c in enumerate(chunks):
                add(t, "%s/chunk-%09d.gz" % (d, i), c)
    return out.getvalue()


def gz(data):
    return gzip.compress(data, 1)


def gz_zeros(n, _cache={}):
    """gzip of n zero bytes, as concatenated members of 10^8 (a valid gzip
    file, and quick to make)."""
    step = 10 ** 8
    if "m" not in _cache:
        _cache["m"] = gz(bytes(step))
    return _cache["m"] * (n // step) + (gz(bytes(n % step)) if n % step else b"")


def test_the_guides_legacy_example_verbatim(other, B):
    """The guide's own ova.xml (5 GiB root disk, 512 MiB swap), byte for byte,
    with disks in 10^9-byte gzipped chunks."""
    xml = open(GUIDE_OVA).read()
    if os.path.exists(GUIDE):
        assert xml in open(GUIDE).read()
    G = 10 ** 9
    head = b"very simple Debian VM" + bytes(MiB)
    full_zero = gz_zeros(G)
    sda_size, sdb_size = 5368709120, 536870912
    sda = [gz(head) + gz_zeros(G - len(head))] + [full_zero] * 4 + [gz_zeros(sda_size - 5 * G)]
    sdb = [gz_zeros(sdb_size)]
    data = legacy_tar(xml, [("sda", sda), ("sdb", sdb)])
    (vm,) = import_bytes(other, B, data)
    rec = B.VM.get_record(vm)
    assert rec["name_label"] == "very simple Debian VM"
    assert rec["name_description"] == "the description field can contain any valid UTF-8"
    assert rec["memory_static_max"] == "536870912" and rec["VCPUs_max"] == "1"
    assert rec["PV_bootloader"] == "pygrub" and rec["PV_args"] == "root=/dev/sdal ro"
    vbds = {B.VBD.get_userdevice(b): B.VBD.get_record(b) for b in rec["VBDs"]}
    assert set(vbds) == {"0", "1"} and vbds["0"]["bootable"] and not vbds["1"]["bootable"]
    root = vbds["0"]["VDI"]
    assert int(B.VDI.get_virtual_size(root)) >= sda_size
    st, h, first = http_get(other, "/export_raw_vdi", session_id=sid_of_session(B), vdi=root)
    assert first.startswith(head)


def test_legacy_hostile_inputs(other, B):
    xml = open(GUIDE_OVA).read().replace("5368709120", "3000").replace('size="536870912"', 'size="10"')
    good = [("sda", [gz(bytes(3000))]), ("sdb", [gz(bytes(10))])]
    before, files = inventory(B), sr_files(other)
    cases = {
        "absolute source": legacy_tar(xml.replace("file://sda", "file:///etc"), good),
        "parent source": legacy_tar(xml.replace("file://sda", "file://../sda"), good),
        "http source": legacy_tar(xml.replace("file://sda", "http://evil/sda"), good),
        "bigger than declared": legacy_tar(xml, [("sda", [gz(bytes(5000))]), ("sdb", [gz(bytes(10))])]),
        "smaller than declared": legacy_tar(xml, [("sda", [gz(bytes(100))]), ("sdb", [gz(bytes(10))])]),
        "chunk of no disk": legacy_tar(xml, good + [("sdz", [gz(b"x")])]),
        "bad size": legacy_tar(xml.replace('size="3000"', 'size="lots"'), good),
        "not gzip": legacy_tar(xml, [("sda", [bytes(3000)]), ("sdb", [gz(bytes(10))])]),
    }
    for what, data in cases.items():
        err = import_failure(other, B, data)
        assert err[0].startswith("IMPORT_ERROR"), (what, err)
        assert inventory(B) == before, what
        assert sr_files(other) == files, what
    # The shrunk document itself imports.
    (vm,) = import_bytes(other, B, legacy_tar(xml, good))
    assert B.VM.get_name_label(vm) == "very simple Debian VM"
