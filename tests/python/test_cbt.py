"""Changed block tracking (VDI.enable_cbt / list_changed_blocks /
data_destroy / disable_cbt): a per-VDI log of the 64 KiB blocks written,
carried by snapshots, that survives a restart and a kill -9, and that
delta VHD exports use. Blocks are written through PUT /import_raw_vdi, which
on a tracked VDI writes (and marks) only the 64 KiB blocks that differ."""

import base64
import struct
import urllib.request

from conftest import Xapid, failure

MiB = 1 << 20
KiB64 = 64 << 10
SIZE = 8 * MiB


def put_raw(x, sid, vdi, data, fmt="raw"):
    req = urllib.request.Request("%s/import_raw_vdi?session_id=%s&vdi=%s&format=%s" % (x.url, sid, vdi, fmt),
                                 data=data, method="PUT")
    req.add_header("Content-Length", str(len(data)))
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        r.read()  # the server closes once the data is written


def get_raw(x, sid, vdi, **q):
    qs = "".join("&%s=%s" % kv for kv in q.items())
    with urllib.request.urlopen("%s/export_raw_vdi?session_id=%s&vdi=%s%s" % (x.url, sid, vdi, qs), timeout=60) as r:
        return r.read()


def changed(bitmap_b64):
    bits = base64.b64decode(bitmap_b64)
    return {i for i in range(len(bits) * 8) if bits[i // 8] & (0x80 >> (i % 8))}


def login(x):
    s = x.session()
    return s.xenapi, s._session


def new_vdi(api, name):
    sr = api.pool.get_default_SR(api.pool.get_all()[0])
    return api.VDI.create({"SR": sr, "name_label": name, "name_description": "", "virtual_size": str(SIZE),
                           "type": "user", "sharable": False, "read_only": False, "other_config": {},
                           "xenstore_data": {}, "sm_config": {}, "tags": []})


def touch(data, blocks, tag):
    for b in blocks:
        data[b * KiB64 + 7] = (data[b * KiB64 + 7] + tag) % 256


def test_cbt_between_snapshots_restarts_and_kill9():
    x = Xapid().start()
    servers = [x]
    try:
        api, sid = login(x)
        pool = api.pool.get_all()[0]
        assert api.pool.get_restrictions(pool)["restrict_cbt"] == "false"
        vdi = new_vdi(api, "tracked")
        data = bytearray(b"cbt!" * (SIZE // 4))
        put_raw(x, sid, vdi, bytes(data))
        before_cbt = api.VDI.snapshot(vdi, {})
        api.VDI.enable_cbt(vdi)
        api.VDI.enable_cbt(vdi)  # idempotent
        assert api.VDI.get_cbt_enabled(vdi) is True
        s1 = api.VDI.snapshot(vdi, {})
        assert api.VDI.get_cbt_enabled(s1) is True
        touch(data, [3, 40, 41, 127], 1)
        put_raw(x, sid, vdi, bytes(data))
        s2 = api.VDI.snapshot(vdi, {})
        assert changed(api.VDI.list_changed_blocks(s1, s2)) == {3, 40, 41, 127}
        assert changed(api.VDI.list_changed_blocks(s2, s1)) == {3, 40, 41, 127}
        assert changed(api.VDI.list_changed_blocks(s2, vdi)) == set()
        assert len(base64.b64decode(api.VDI.list_changed_blocks(s1, s2))) == SIZE // KiB64 // 8

        # The delta export between the snapshots holds the one 2 MiB block
        # per changed region (blocks 3 -> 0, 40/41 -> 1, 127 -> 3).
        delta = get_raw(x, sid, s2, base=s1, format="vhd")
        table, entries = struct.unpack(">Q", delta[512 + 16:512 + 24])[0], struct.unpack(">I", delta[512 + 28:512 + 32])[0]
        bat = struct.unpack(">%dI" % entries, delta[table:table + 4 * entries])
        assert [i for i, e in enumerate(bat) if e != 0xFFFFFFFF] == [0, 1, 3]

        # Writes after s2 are in the live disk's log; they survive a clean
        # restart and a kill -9.
        touch(data, [5], 2)
        put_raw(x, sid, vdi, bytes(data))
        x.stop()
        x = Xapid(data_dir=x.data_dir).start()
        servers.append(x)
        api, sid = login(x)
        assert changed(api.VDI.list_changed_blocks(s2, vdi)) == {5}
        touch(data, [6, 100], 3)
        put_raw(x, sid, vdi, bytes(data))
        x.kill9()
        x = Xapid(data_dir=x.data_dir).start()
        servers.append(x)
        api, sid = login(x)
        s3 = api.VDI.snapshot(vdi, {})
        assert changed(api.VDI.list_changed_blocks(s2, s3)) == {5, 6, 100}
        assert changed(api.VDI.list_changed_blocks(s1, s3)) == {3, 5, 6, 40, 41, 100, 127}

        # data_destroy keeps the log; destroying a snapshot in the middle
        # hands its blocks to the next one.
        api.VDI.data_destroy(s1)
        api.VDI.data_destroy(s1)  # idempotent
        assert api.VDI.get_type(s1) == "cbt_metadata"
        assert changed(api.VDI.list_changed_blocks(s1, s3)) == {3, 5, 6, 40, 41, 100, 127}
        api.VDI.destroy(s2)
        assert changed(api.VDI.list_changed_blocks(s1, s3)) == {3, 5, 6, 40, 41, 100, 127}
        # An SR scan does not forget the snapshot that has only metadata.
        api.SR.scan(api.VDI.get_SR(vdi))
        assert api.VDI.get_type(s1) == "cbt_metadata"

        # Refusals.
        assert failure(api.VDI.list_changed_blocks, before_cbt, s3)[0] == "VDI_NO_CBT_METADATA"
        assert failure(api.VDI.data_destroy, before_cbt)[0] == "VDI_NO_CBT_METADATA"
        other = new_vdi(api, "other")
        api.VDI.enable_cbt(other)
        assert failure(api.VDI.list_changed_blocks, other, s3)[0] == "SR_BACKEND_FAILURE"
        assert failure(api.VDI.enable_cbt, s3)[0] == "OPERATION_NOT_ALLOWED"
        api.VDI.disable_cbt(vdi)
        assert api.VDI.get_cbt_enabled(vdi) is False
        assert failure(api.VDI.list_changed_blocks, s3, vdi)[0] == "VDI_NO_CBT_METADATA"
    finally:
        for s in reversed(servers):
            s.stop()
        servers[0].cleanup()


def test_an_import_cut_by_kill9_counts_every_block_changed():
    """A tracked import learns its blocks as it writes them, under a batch
    marker that makes the log read as all changed: killed in the middle, the
    next snapshot's changes are every block (over-claimed, never missed),
    and the snapshot after that is exact again."""
    import glob
    import socket
    from vmlib import wait_for
    x = Xapid().start()
    servers = [x]
    try:
        api, sid = login(x)
        vdi = new_vdi(api, "cut")
        api.VDI.enable_cbt(vdi)
        s1 = api.VDI.snapshot(vdi, {})
        c = socket.create_connection(("127.0.0.1", x.port), timeout=30)
        c.sendall(b"PUT /import_raw_vdi?session_id=%s&vdi=%s&format=raw HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
                  % (sid.encode(), vdi.encode(), SIZE))
        c.sendall(b"\x01" * (SIZE // 2))
        wait_for(lambda: glob.glob(x.data_dir + "/**/*.cbt-busy", recursive=True), 20, "the import's batch marker")
        x.kill9()
        c.close()
        x = Xapid(data_dir=x.data_dir).start()
        servers.append(x)
        api, sid = login(x)
        s2 = api.VDI.snapshot(vdi, {})
        assert changed(api.VDI.list_changed_blocks(s1, s2)) == set(range(SIZE // KiB64))
        current = bytearray(get_raw(x, sid, vdi))
        touch(current, [9], 1)
        put_raw(x, sid, vdi, bytes(current))
        s3 = api.VDI.snapshot(vdi, {})
        assert changed(api.VDI.list_changed_blocks(s2, s3)) == {9}
        assert not glob.glob(x.data_dir + "/**/*.cbt-busy", recursive=True)
    finally:
        for s in reversed(servers):
            s.stop()
        servers[0].cleanup()
