"""Statistics that last: RRDs archived on clean shutdown (gzip'd rrdtool XML
under <data dir>/rrd/) are read back at start, so the rows continue; MIN and
MAX archives exist when the pool asks for them (xapi's
create_min_max_in_new_VM_RRDs); a damaged archive is set aside with a warning
and the server starts anyway."""

import gzip
import json
import math
import os
import urllib.request

from conftest import Xapid
from vmlib import running, wait_for


def get_json(x, sid, path):
    with urllib.request.urlopen("%s%s%ssession_id=%s&json=true" % (x.url, path, "&" if "?" in path else "?", sid),
                                timeout=10) as r:
        return json.loads(r.read())


def known_rows(dump, ds="cpu0", cf="AVERAGE", pdp=1):
    i = [d["name"] for d in dump["ds"]].index(ds)
    (rra,) = [a for a in dump["rra"] if a["cf"] == cf and int(a["pdp_per_row"]) == pdp]
    return [row[i] for row in rra["database"] if not math.isnan(float(row[i]))]


def test_rrds_survive_a_restart_and_min_max_archives():
    x = Xapid().start()
    try:
        s = x.session()
        api = s.xenapi
        pool = api.pool.get_all()[0]
        api.pool.add_to_other_config(pool, "create_min_max_in_new_VM_RRDs", "true")
        vm = api.VM.get_uuid(running(api, "kept stats"))
        path = "/vm_rrd?uuid=%s" % vm

        def enough():
            try:
                return len(known_rows(get_json(x, s._session, path))) >= 3
            except (ValueError, urllib.error.HTTPError):
                return False
        wait_for(enough, 30, "three samples of the VM", interval=1)
        before = get_json(x, s._session, path)
        cfs = {a["cf"] for a in before["rra"]}
        assert cfs == {"AVERAGE", "MIN", "MAX"}, cfs
        legend = get_json(x, s._session, "/rrd_updates?start=-600&interval=60&vm_uuid=%s" % vm)["meta"]["legend"]
        assert {l.split(":")[0] for l in legend} == {"AVERAGE", "MIN", "MAX"}

        x.stop()
        archive = os.path.join(x.data_dir, "rrd", vm + ".gz")
        assert os.path.exists(archive)
        assert b"<rrd>" in gzip.open(archive).read()
        x.start()
        s = x.session()
        after = get_json(x, s._session, path)
        assert float(after["lastupdate"]) >= float(before["lastupdate"])
        # The rows from before the restart are still there (a fresh RRD
        # would have at most one known row).
        assert len(known_rows(after)) >= len(known_rows(before))
        assert {a["cf"] for a in after["rra"]} == {"AVERAGE", "MIN", "MAX"}
        n = len(known_rows(after))
        wait_for(lambda: len(known_rows(get_json(x, s._session, path))) > n, 15, "a new row", interval=1)
    finally:
        x.cleanup()


def test_a_damaged_archive_is_set_aside():
    x = Xapid().start()
    try:
        api = x.session().xenapi
        vm = api.VM.get_uuid(running(api, "damaged stats"))
        host = api.host.get_uuid(api.host.get_all()[0])
        x.stop()
        d = os.path.join(x.data_dir, "rrd")
        with open(os.path.join(d, vm + ".gz"), "wb") as f:
            f.write(b"not gzip at all")
        with gzip.open(os.path.join(d, host + ".gz"), "wb") as f:
            f.write(b"<rrd><version>0003</version><step>5</step><lastupdate>oops</lastupdate></rrd>")
        x.start()
        s = x.session()
        assert s.xenapi.VM.get_by_uuid(vm)
        names = os.listdir(d)
        assert any(n.startswith(vm + ".gz.corrupt-") for n in names), names
        assert any(n.startswith(host + ".gz.corrupt-") for n in names), names
        log = open(x.log_path).read()
        assert "unreadable" in log and "started afresh" in log
    finally:
        x.cleanup()


def test_backup_rrds_archives_after_the_delay():
    x = Xapid().start()
    try:
        api = x.session().xenapi
        host = api.host.get_all()[0]
        archive = os.path.join(x.data_dir, "rrd", api.host.get_uuid(host) + ".gz")
        wait_for(lambda: api.host.get_data_sources(host), 15, "a sample of the host", interval=0.5)
        assert not os.path.exists(archive)
        api.host.backup_rrds(host, 0.2)
        wait_for(lambda: os.path.exists(archive), 10, "the host's RRD archive", interval=0.2)
        assert b"<rrd>" in gzip.open(archive).read()
    finally:
        x.cleanup()


def test_sr_rrds_survive_a_restart():
    x = Xapid().start()
    try:
        s = x.session()
        api = s.xenapi
        sr = api.SR.get_uuid(api.pool.get_default_SR(api.pool.get_all()[0]))
        path = "/sr_rrd?uuid=%s" % sr

        def enough():
            try:
                return len(known_rows(get_json(x, s._session, path), ds="physical_size")) >= 2
            except (ValueError, urllib.error.HTTPError):
                return False
        wait_for(enough, 30, "two samples of the SR", interval=1)
        before = get_json(x, s._session, path)
        x.stop()
        assert os.path.exists(os.path.join(x.data_dir, "rrd", sr + ".gz"))
        x.start()
        s = x.session()
        after = get_json(x, s._session, path)
        assert float(after["lastupdate"]) >= float(before["lastupdate"])
        assert len(known_rows(after, ds="physical_size")) >= len(known_rows(before, ds="physical_size"))
    finally:
        x.cleanup()
