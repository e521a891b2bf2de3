"""The SDK guide's chapter 4 with the PyPI XenAPI client: Async calls and task
polling (§4.1.5), task records as xapi keeps them (xapi-reference.md §4),
cancellation, the task GC, the XenMotion example (§4.2.1, permute.py) and
event watching (§4.1.6; xapi-reference.md §5)."""

import re
import threading
import time

import pytest
import XenAPI

from conftest import Xapid, failure
from vmlib import NULL, install, remove, running, template, wait_for, wait_task

REF = r"OpaqueRef:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
REF_RESULT_RE = re.compile(r"^<value>(%s)</value>$" % REF)
DATETIME_RE = re.compile(r"^\d{8}T\d\d:\d\d:\d\dZ$")
EPOCH = "19700101T00:00:00Z"


def dt(v):
    return v.value if hasattr(v, "value") else str(v)


@pytest.fixture(scope="module")
def host(api):
    return api.host.get_all()[0]


@pytest.fixture
def vm(api):
    v = install(api, "ch4 vm", tmpl="Debian Etch 4.0")
    yield v
    remove(api, v)


# ------------------------------------------------------------ §4.1.5 Async

def test_async_clone_progress_loop_and_result(api, host):
    """The guide's progress-bar loop over Async.VM.clone."""
    tmpl = template(api, "Debian Etch 4.0")
    task = api.Async.VM.clone(tmpl, "async clone")
    assert re.match("^%s$" % REF, task)
    rec = api.task.get_record(task)
    assert rec["name_label"] == "Async.VM.clone"
    assert rec["resident_on"] == host
    assert rec["subtask_of"] == NULL
    assert rec["type"] == "<none/>"
    assert DATETIME_RE.match(dt(rec["created"]))
    progress = []
    while api.task.get_status(task) == "pending":
        progress.append(float(api.task.get_progress(task)))
        time.sleep(0.01)
    assert all(0.0 <= p <= 1.0 for p in progress)
    rec = api.task.get_record(task)
    assert rec["status"] == "success"
    assert float(rec["progress"]) == 1.0
    assert rec["error_info"] == []
    m = REF_RESULT_RE.match(rec["result"])
    assert m, rec["result"]
    new_vm = m.group(1)
    assert api.task.get_result(task) == rec["result"]
    assert api.VM.get_name_label(new_vm) == "async clone"
    assert api.VM.get_is_a_template(new_vm) is True
    assert dt(rec["finished"]) != EPOCH and dt(rec["finished"]) >= dt(rec["created"])
    api.task.destroy(task)
    assert failure(api.task.get_record, task)[0] == "HANDLE_INVALID"
    api.VM.destroy(new_vm)


def test_async_void_results_are_empty_value_fragments(api, vm):
    for call, args in [(api.Async.VM.start, (vm, False, False)), (api.Async.VM.clean_shutdown, (vm,))]:
        task = call(*args)
        rec = wait_task(api, task)
        assert rec["status"] == "success", rec["error_info"]
        assert rec["result"] == "<value></value>"
        assert rec["error_info"] == []
        api.task.destroy(task)
    assert api.VM.get_power_state(vm) == "Halted"


def test_async_failure_lands_in_error_info(api, vm):
    api.VM.start(vm, False, False)
    task = api.Async.VM.start(vm, False, False)     # accepted: the check runs in the task
    rec = wait_task(api, task)
    assert rec["status"] == "failure"
    assert rec["error_info"] == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
    assert float(rec["progress"]) == 1.0
    assert dt(rec["finished"]) != EPOCH
    assert api.task.get_error_info(task) == rec["error_info"]
    api.task.destroy(task)
    api.VM.hard_shutdown(vm)


def test_errors_before_the_task_exists_are_synchronous(xapid, api, vm):
    # Wrong parameter count: a Failure, no task.
    before = set(api.task.get_all())
    with pytest.raises(XenAPI.Failure) as ei:
        api.Async.VM.start(vm)
    assert ei.value.details[0] == "MESSAGE_PARAMETER_COUNT_MISMATCH"
    assert set(api.task.get_all()) == before
    # Invalid session: a Failure, no task.
    r = xapid.raw().Async.VM.start("OpaqueRef:00000000-0000-0000-0000-000000000000", vm, False, False)
    assert r["Status"] == "Failure" and r["ErrorDescription"][0] == "SESSION_INVALID"


def test_task_cancel_stops_a_slow_start(api, vm):
    api.VM.add_to_other_config(vm, "sim:delay-start", "5000")
    t0 = time.time()
    task = api.Async.VM.start(vm, False, False)
    wait_for(lambda: task in api.VM.get_current_operations(vm), 5, "start in current_operations")
    assert api.VM.get_current_operations(vm)[task] == "start"
    api.task.cancel(task)
    rec = wait_task(api, task)
    assert time.time() - t0 < 4.0, "the cancelled start ran to completion"
    assert rec["status"] == "cancelled"
    assert rec["error_info"] == ["TASK_CANCELLED", task]
    assert float(rec["progress"]) == 1.0
    assert dt(rec["finished"]) != EPOCH
    assert api.VM.get_power_state(vm) == "Halted"
    wait_for(lambda: api.VM.get_current_operations(vm) == {}, 5, "current_operations emptied")
    assert "start" in api.VM.get_allowed_operations(vm)
    api.task.destroy(task)
    # The VM is fine afterwards.
    api.VM.remove_from_other_config(vm, "sim:delay-start")
    api.VM.start(vm, False, False)
    assert api.VM.get_power_state(vm) == "Running"


def test_sync_calls_run_in_a_task_that_is_gone_afterwards(xapid, api, vm):
    before = set(api.task.get_all())
    clone = api.VM.clone(vm, "sync clone")
    assert set(api.task.get_all()) == before
    api.VM.destroy(clone)

    # While a slow synchronous VM.start runs, its task is visible (name_label
    # is the wire name) and keys the VM's current_operations.
    api.VM.add_to_other_config(vm, "sim:delay-start", "1000")
    s2 = xapid.session()
    th = threading.Thread(target=s2.xenapi.VM.start, args=(vm, False, False))
    th.start()
    try:
        ops = wait_for(lambda: api.VM.get_current_operations(vm), 5, "start in current_operations")
        (task,) = ops.keys()
        assert ops[task] == "start"
        rec = api.task.get_record(task)
        assert rec["name_label"] == "VM.start"
        assert rec["status"] == "pending"
        assert task in api.task.get_all()
    finally:
        th.join(10)
        s2.xenapi.session.logout()
    assert api.VM.get_power_state(vm) == "Running"
    assert task not in api.task.get_all()
    assert set(api.task.get_all()) == before


def test_sync_call_tasks_appear_in_task_events(xapid, api, vm):
    api.VM.add_to_other_config(vm, "sim:delay-start", "600")
    w = Watcher(xapid, ["task"])
    w.start()
    try:
        api.VM.start(vm, False, False)
        adds = wait_for(lambda: w.seen(lambda e: e["operation"] == "add"
                                       and e["snapshot"]["name_label"] == "VM.start"), 5, "task add event")
        task = adds[0]["ref"]
        assert adds[0]["snapshot"]["status"] == "pending"
        wait_for(lambda: w.seen(lambda e: e["ref"] == task and e["operation"] == "del"), 5, "task del event")
    finally:
        w.close()


def test_task_create_and_setters(api, host):
    t = api.task.create("my label", "my description")
    rec = api.task.get_record(t)
    assert rec["name_label"] == "my label"
    assert rec["name_description"] == "my description"
    assert rec["status"] == "pending"
    assert float(rec["progress"]) == 0.0
    assert rec["result"] == "" and rec["error_info"] == []
    assert dt(rec["finished"]) == EPOCH
    assert rec["resident_on"] == host
    assert rec["current_operations"] == {} and rec["allowed_operations"] == []
    assert t in api.task.get_all()
    assert t in api.task.get_by_name_label("my label")

    api.task.set_progress(t, 0.5)
    assert float(api.task.get_progress(t)) == 0.5
    api.task.set_result(t, "<value>hello</value>")
    assert api.task.get_result(t) == "<value>hello</value>"
    api.task.set_status(t, "success")
    assert api.task.get_status(t) == "success"
    api.task.add_to_other_config(t, "k", "v")
    assert api.task.get_other_config(t) == {"k": "v"}
    api.task.destroy(t)
    assert t not in api.task.get_all()
    assert failure(api.task.get_status, t)[0] == "HANDLE_INVALID"

    t2 = api.task.create("failing", "")
    api.task.set_error_info(t2, ["SOME_ERROR", "a", "b"])
    api.task.set_status(t2, "failure")
    assert api.task.get_record(t2)["error_info"] == ["SOME_ERROR", "a", "b"]
    api.task.destroy(t2)


# ------------------------------------------------------- task GC (§4.5)

@pytest.fixture(scope="module")
def gc_server():
    x = Xapid(extra_args=["--gc-interval-secs", "1"]).start()
    yield x
    x.cleanup()


def test_destroying_a_pending_task_marks_it(gc_server):
    s = gc_server.session()
    api = s.xenapi
    vm = install(api, "gc pending", other_config={"sim:delay-start": "800"})
    try:
        task = api.Async.VM.start(vm, False, False)
        api.task.destroy(task)
        # Still there while pending, marked for destruction (xapi_task.ml: key "task").
        rec = api.task.get_record(task)
        assert rec["status"] == "pending"
        assert rec["current_operations"] == {"task": "destroy"}
        wait_for(lambda: api.VM.get_power_state(vm) == "Running", 5, "VM running")
        # The work itself is not affected. The collector (every second here) may already have
        # removed the finished task, so a vanished task counts as finished.
        try:
            assert api.task.get_status(task) in ("success", "pending")
        except XenAPI.Failure as e:
            assert e.details[0] == "HANDLE_INVALID", e.details
    finally:
        remove(api, vm)
        s.xenapi.session.logout()


def test_destroyed_pending_task_is_collected_once_complete(gc_server):
    s = gc_server.session()
    api = s.xenapi
    vm = install(api, "gc pending 2", other_config={"sim:delay-start": "500"})
    try:
        task = api.Async.VM.start(vm, False, False)
        api.task.destroy(task)
        wait_for(lambda: api.VM.get_power_state(vm) == "Running", 5, "VM running")
        # Completed (status success) with `destroy` pending: the next GC pass (1 s here) removes it.
        wait_for(lambda: task not in api.task.get_all(), 3, "task GC'd after completion")
    finally:
        remove(api, vm)
        s.xenapi.session.logout()


def test_gc_keeps_at_most_200_tasks(gc_server):
    s = gc_server.session()
    api = s.xenapi
    vm = install(api, "gc vm")

    def make(n):
        ts = [api.Async.VM.assert_operation_valid(vm, "start") for _ in range(n)]

        def all_done():
            recs = api.task.get_all_records()     # (some may already be collected)
            return all(recs[t]["status"] == "success" for t in ts if t in recs)
        wait_for(all_done, 10, "tasks done")
        return ts

    try:
        pending = api.task.create("a pending task", "")
        old = make(30)
        time.sleep(1.2)            # the old batch finished strictly earlier
        new = make(200)
        # 231 young tasks > 200: completed ones go, oldest first; pending ones stay.
        wait_for(lambda: len(api.task.get_all()) <= 200, 6, "GC down to 200 tasks")
        left = set(api.task.get_all())
        assert pending in left
        assert not (set(old) & left), "the oldest completed tasks must be collected first"
        assert api.task.get_status(pending) == "pending"
        api.task.destroy(pending)
        assert len(left) <= 200
        del new
    finally:
        remove(api, vm)
        s.xenapi.session.logout()


# ------------------------------------------- §4.2.1 XenMotion (permute.py)

def test_xenmotion_permute(api):
    vms = [running(api, "permute %d" % i, tmpl="Debian Etch 4.0", other_config={"sim:delay-migrate": "800"})
           for i in range(3)]
    try:
        # main(): every running non-template, non-control-domain VM and its host.
        found, hosts = [], []
        for v in api.VM.get_all():
            record = api.VM.get_record(v)
            if not record["is_a_template"] and not record["is_control_domain"] and record["power_state"] == "Running":
                found.append(v)
                hosts.append(record["resident_on"])
        assert set(vms) <= set(found)
        hosts = [hosts[-1]] + hosts[:len(hosts) - 1]     # rotation
        t0 = time.time()
        tasks = [api.Async.VM.pool_migrate(v, h, {"live": "true"}) for v, h in zip(found, hosts)]
        # All migrations are in flight together.
        wait_for(lambda: all("pool_migrate" in api.VM.get_current_operations(v).values() for v in vms), 5,
                 "concurrent pool_migrate operations")
        finished = False
        records = {}
        while not finished:
            finished = True
            for task in tasks:
                record = api.task.get_record(task)
                records[task] = record
                if record["status"] == "pending":
                    finished = False
            time.sleep(0.05)
        elapsed = time.time() - t0
        for task in tasks:
            r = records[task]
            assert r["status"] == "success", (r["name_label"], r["error_info"])
            assert r["name_label"] == "Async.VM.pool_migrate"
            assert r["result"] == "<value></value>"
        assert elapsed < 2.2, "migrations ran one after another (%.1fs)" % elapsed
        for task in tasks:
            api.task.destroy(task)
        for task in tasks:
            assert failure(api.task.get_record, task)[0] == "HANDLE_INVALID"
        for v, h in zip(found, hosts):
            rec = api.VM.get_record(v)
            assert rec["power_state"] == "Running"
            assert rec["resident_on"] == h
            assert rec["current_operations"] == {}
    finally:
        for v in vms:
            remove(api, v)


def test_pool_migrate_needs_running(api, vm):
    host = api.host.get_all()[0]
    assert failure(api.VM.pool_migrate, vm, host, {"live": "true"}) == \
        ["VM_BAD_POWER_STATE", vm, "running", "halted"]


# --------------------------------------------------- §4.1.6 events

class Watcher(threading.Thread):
    """A client watching event.from on its own session (XenAPI proxies are
    not thread-safe)."""

    def __init__(self, xapid, classes):
        super().__init__(daemon=True)
        self.session = xapid.session()
        self.api = self.session.xenapi
        self.classes = classes
        self.token = self.api.event_from(classes, "", 0.0)["token"]
        self.events = []
        self.lock = threading.Lock()
        self.stop = False

    def run(self):
        while not self.stop:
            r = self.api.event_from(self.classes, self.token, 0.5)
            self.token = r["token"]
            with self.lock:
                self.events.extend(r["events"])

    def seen(self, pred):
        with self.lock:
            return [e for e in self.events if pred(e)]

    def close(self):
        self.stop = True
        self.join(5)
        self.session.xenapi.session.logout()


def test_event_from_sees_a_vm_lifecycle(xapid, api):
    vm = install(api, "watched", tmpl="Debian Etch 4.0", other_config={"sim:delay-start": "300"})
    w = Watcher(xapid, ["vm"])
    w.start()
    try:
        def saw(state):
            wait_for(lambda: w.seen(lambda e: e["ref"] == vm and e["operation"] == "mod"
                                    and e["snapshot"]["power_state"] == state), 5, "a %s mod event" % state)

        api.VM.start(vm, False, False)
        saw("Running")
        api.VM.suspend(vm)
        saw("Suspended")
        api.VM.resume(vm, False, False)
        wait_for(lambda: [e for e in w.seen(lambda e: e["ref"] == vm)][-1]["snapshot"]["power_state"] == "Running",
                 5, "Running again")
        api.VM.clean_shutdown(vm)
        wait_for(lambda: [e for e in w.seen(lambda e: e["ref"] == vm)][-1]["snapshot"]["power_state"] == "Halted",
                 5, "Halted again")
    finally:
        w.close()
    mine = [e for e in w.events if e["ref"] == vm]
    assert all(e["class"] == "vm" and e["operation"] == "mod" for e in mine)
    states = []
    for e in mine:
        ps = e["snapshot"]["power_state"]
        if not states or states[-1] != ps:
            states.append(ps)
    while states and states[0] == "Halted":
        states.pop(0)
    assert states == ["Running", "Suspended", "Running", "Halted"]
    # The slow start was visible in flight: Halted, with "start" in current_operations.
    assert any(e["snapshot"]["power_state"] == "Halted" and "start" in e["snapshot"]["current_operations"].values()
               for e in mine)
    remove(api, vm)


def test_event_from_sees_tasks_finish(api):
    token = api.event_from(["task"], "", 0.0)["token"]
    task = api.Async.VM.clone(template(api, "Debian Etch 4.0"), "evented clone")
    done = None
    deadline = time.time() + 10
    while done is None and time.time() < deadline:
        r = api.event_from(["task"], token, 2.0)
        token = r["token"]
        for e in r["events"]:
            assert e["class"] == "task"
            if e["ref"] == task and e["snapshot"]["status"] != "pending":
                done = e
    assert done is not None, "no event showed the task finishing"
    assert done["snapshot"]["status"] == "success"
    m = REF_RESULT_RE.match(done["snapshot"]["result"])
    assert m
    assert r["valid_ref_counts"]["task"] == len(api.task.get_all())
    api.task.destroy(task)
    dels = []
    deadline = time.time() + 5
    while not dels and time.time() < deadline:
        r = api.event_from(["task"], token, 2.0)
        token = r["token"]
        dels = [e for e in r["events"] if e["ref"] == task and e["operation"] == "del"]
    assert dels and "snapshot" not in dels[0]
    api.VM.destroy(m.group(1))


def test_guide_register_next_loop(api, vm):
    """§4.1.6's watch-all-events loop: event.register(["*"]) + event.next()."""
    api.event.register(["*"])
    try:
        api.VM.set_name_label(vm, "renamed for event.next")
        found = None
        deadline = time.time() + 5
        while found is None and time.time() < deadline:
            for event in api.event.next():
                name = "(unknown)"
                if "snapshot" in event.keys():
                    snapshot = event["snapshot"]
                    if "name_label" in snapshot.keys():
                        name = snapshot["name_label"]
                "%8s %20s %5s %s" % (event["id"], event["class"], event["operation"], name)
                if event["class"] == "vm" and event["ref"] == vm and name == "renamed for event.next":
                    found = event
        assert found is not None and found["operation"] == "mod"
    finally:
        api.event.unregister(["*"])
