"""RBAC, directory users and the audit log, with the PyPI XenAPI client, a
real xapid and a real OpenLDAP server (slapd) on loopback.

The role x message matrix logs in as a directory user holding each role and
calls the messages of the core classes, checking allowed vs
RBAC_PERMISSION_DENIED against the roles the datamodel (datamodel/*.dm) gives
each message (implicit ones derived by the same rules as the code generator).
Allowed calls get an invalid object reference, so they fail with
HANDLE_INVALID after the RBAC check and change nothing."""

import os
import socket
import subprocess
import time

import pytest
import XenAPI

from conftest import DATAMODEL, ROOT, Xapid
from ldaplib import GROUPS, Slapd, user_dn

ROLES = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"]
BAD_REF = "OpaqueRef:00000000-0000-0000-0000-00000000dead"
USERS = {"u-" + r: "pw-" + r for r in ROLES}
USERS.update({"alice": "alice-pw", "dave": "dave-pw", "eve": "eve-pw", "norole": "norole-pw",
              "gone": "gone-pw", "ghost": "ghost-pw", "locked": "locked-pw"})
GROUPS_ = {"operators": ["alice"], "inner": ["dave"], "outer": ["inner"]}
CORE = ["VM", "VDI", "SR", "network", "host", "pool", "session", "task", "VBD", "VIF", "PIF", "PBD",
        "console", "role", "subject", "message", "secret", "auth", "event", "VLAN", "Bond", "tunnel",
        "VM_metrics", "VM_guest_metrics", "host_metrics", "SM", "Certificate"]

# Calls that would end the caller's own session or take the server away if
# allowed; they are not called (everything else is).
SKIP = {"session.logout", "session.local_logout", "session.logout_subject_identifier",
        "host.restart_agent", "host.shutdown_agent", "VM.import", "pool.disable_external_auth",
        "host.disable_external_auth", "pool.audit_log_append"}


# ---------------------------------------------------------------- datamodel

def allowed_roles(spec):
    """`role=` text -> the set of roles allowed (a role and all above it)."""
    r = spec.split("+")[0]
    if r == "none":
        return set()
    return set(ROLES[:ROLES.index(r) + 1])


def parse_dm(cls):
    """Messages of a class as the code generator derives them:
    {name: (allowed roles, [param types], session?)}, plus protected map keys
    {field: {key: allowed roles}} and enums {name: first value}."""
    text = open(os.path.join(DATAMODEL, cls + ".dm")).read().splitlines()
    opts, fields, explicit, enums = [], [], {}, {}
    cur, cur_enum = None, None
    for line in text:
        if line.startswith("options"):
            opts = line.split()[1:]
        elif line.startswith("enum "):
            cur_enum = line.split()[1]
        elif line.startswith("  value ") and cur_enum and cur_enum not in enums:
            enums[cur_enum] = line.split()[1]
        elif line.startswith("field "):
            data = line.split(" -- ", 1)[0].split()
            f = {"name": data[1].replace("/", "_"), "path": data[1], "type": data[2], "qual": data[3],
                 "flags": data[4:]}
            fields.append(f)
        elif line.startswith("message "):
            data = line.split(" -- ", 1)[0].split()
            name = data[1]
            flags = data[2:]
            role = next((x[5:] for x in flags if x.startswith("role=")), "read-only")
            # Removed messages answer MESSAGE_REMOVED before any check.
            cur = explicit[name] = {"roles": allowed_roles(role), "params": [],
                                    "session": "nosession" not in flags and "removed" not in flags}
        elif line.startswith("  param ") and cur is not None:
            data = line.split(" -- ", 1)[0].split()
            cur["params"].append((data[2], "=" in data))
    opt = dict(o.split("=", 1) for o in opts if "=" in o)
    read = allowed_roles(opt.get("read", "read-only"))
    write = allowed_roles(opt.get("write", "pool-operator"))
    msgs, keys = {}, {}
    me = "ref<%s>" % cls
    if "db" in opts:
        msgs["get_record"] = (read, [me])
        if any(f["name"] == "uuid" for f in fields):
            msgs["get_by_uuid"] = (read, ["string"])
        if any(f["path"] == "name/label" for f in fields):
            msgs["get_by_name_label"] = (read, ["string"])
    if "ctor" in opts:
        msgs["create"] = (write, ["record<%s>" % cls])
        msgs["destroy"] = (write, [me])
    if "db" in opts:
        for f in fields:
            fr = next((allowed_roles(x[5:]) for x in f["flags"] if x.startswith("read=")), read)
            msgs["get_" + f["name"]] = (fr, [me])
        for f in fields:
            if f["qual"] != "rw":
                continue
            fw = next((allowed_roles(x[6:]) for x in f["flags"] if x.startswith("write=")), write)
            w, ty = f["name"], f["type"]
            msgs["set_" + w] = (fw, [me, ty])
            for x in f["flags"]:
                if x.startswith("keys="):
                    keys[w] = {k: allowed_roles(r) for k, r in (kr.rsplit(":", 1) for kr in x[5:].split(","))}
            if ty.startswith("map<"):
                k, v = ty[4:-1].split(",", 1)
                msgs["add_to_" + w] = (fw, [me, k, v])
                msgs["remove_from_" + w] = (fw, [me, k])
            elif ty.startswith("set<") and "o2m" not in f["flags"] and not any(
                    x.startswith("inverse=") for x in f["flags"]):
                msgs["add_" + w] = (fw, [me, ty[4:-1]])
                msgs["remove_" + w] = (fw, [me, ty[4:-1]])
    if "getall" in opts:
        for n in ["get_all", "get_all_records"]:
            msgs[n] = (read, [])
        for n in ["get_all_where", "get_all_records_where"]:
            msgs[n] = (read, ["string"])
    out = {n: (r, p, True) for n, (r, p) in msgs.items()}
    for n, m in explicit.items():
        # Trailing defaulted parameters are left out.
        params = [t for t, _ in m["params"]]
        while m["params"][len(params) - 1:len(params)] and m["params"][len(params) - 1][1]:
            params.pop()
        out[n] = (m["roles"], params, m["session"])
    return out, keys, enums


def value_of(ty, enums):
    """A well-typed argument: refs are invalid, so an allowed call stops at
    HANDLE_INVALID."""
    if ty.startswith("ref<"):
        return BAD_REF
    if ty.startswith("set<"):
        return []
    if ty.startswith("map<") or ty.startswith("record<"):
        return {}
    if ty.startswith("option<"):
        return value_of(ty[7:-1], enums)
    return {"string": "x", "int": "0", "float": 0.0, "bool": False,
            "datetime": "19700101T00:00:00Z"}.get(ty, enums.get(ty, "x"))


def has_ref(params):
    return any(t.startswith("ref<") for t in params)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def env():
    d = Slapd(USERS, GROUPS_).start()
    x = Xapid(extra_args=["--session-revalidation-secs", "1"]).start()
    try:
        root = x.session()
        api = root.xenapi
        pool = api.pool.get_all()[0]
        # carLicense stands for the account-lock attribute (no ppolicy schema here).
        api.pool.enable_external_auth(pool, d.config(disabled_attribute="carLicense"), "example.org", "LDAP")
        role_ref = {api.role.get_name_label(r): r for r in api.role.get_all() if api.role.get_subroles(r)}

        def subject(name, roles):
            sid = api.auth.get_subject_identifier(name)
            s = api.subject.create({"subject_identifier": sid, "other_config": {"subject-name": name}})
            for r in api.subject.get_roles(s):
                api.subject.remove_from_roles(s, r)
            for r in roles:
                api.subject.add_to_roles(s, role_ref[r])
            return s

        subjects = {r: subject("u-" + r, [r]) for r in ROLES}
        subjects["operators"] = subject("operators", ["vm-operator"])
        subjects["outer"] = subject("outer", ["vm-admin"])
        subjects["norole"] = subject("norole", [])
        subjects["gone"] = subject("gone", ["read-only"])
        subjects["ghost"] = subject("ghost", ["read-only"])
        subjects["locked"] = subject("locked", ["read-only"])
        yield {"ldap": d, "x": x, "root": root, "roles": role_ref, "subjects": subjects, "pool": pool}
    finally:
        x.cleanup()
        d.cleanup()


def login(x, user, pw=None):
    s = XenAPI.Session(x.url)
    s.xenapi.login_with_password(user, pw if pw is not None else USERS[user], "1.0", "rbac-test")
    return s


def session_valid(x, s):
    """Without XenAPI's automatic re-login: is this session still valid?"""
    r = x.raw().session.get_uuid(s._session, s._session)
    if r["Status"] == "Success":
        return True
    assert r["ErrorDescription"][0] == "SESSION_INVALID", r
    return False


def failure(fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as e:
        return e.details
    return None


# ---------------------------------------------------------------- the matrix

def test_role_message_matrix(env):
    x = env["x"]
    sessions = {r: login(x, "u-" + r) for r in ROLES}
    checked = allowed = denied = 0
    mismatches = []
    for cls in CORE:
        if not os.path.exists(os.path.join(DATAMODEL, cls + ".dm")):
            continue
        msgs, keys, enums = parse_dm(cls)
        for name, (roles_ok, params, needs_session) in sorted(msgs.items()):
            wire = "%s.%s" % (cls, name)
            if not needs_session or wire in SKIP:
                continue
            # Without a reference to stop it, only reads and constructors run.
            if not has_ref(params) and not (name.startswith("get") or name == "create"):
                continue
            args = [value_of(t, enums) for t in params]
            for role in ROLES:
                api = sessions[role].xenapi
                fn = api
                for part in wire.split("."):
                    fn = getattr(fn, part)
                err = failure(fn, *args)
                checked += 1
                if role in roles_ok:
                    allowed += 1
                    if err and err[0] == "RBAC_PERMISSION_DENIED":
                        mismatches.append("%s as %s: denied %s" % (wire, role, err))
                else:
                    denied += 1
                    want = ["RBAC_PERMISSION_DENIED", wire.lower()]
                    if not err or err[:2] != want:
                        mismatches.append("%s as %s: expected denial, got %s" % (wire, role, err))
        # Protected map keys: adding or removing such a key needs its own role.
        for field, ks in keys.items():
            for key, roles_ok in ks.items():
                key = key.rstrip("*") + ("x" if key.endswith("*") else "")
                for op, args in [("add_to_", [BAD_REF, key, "v"]), ("remove_from_", [BAD_REF, key])]:
                    wire = "%s.%s%s" % (cls, op, field)
                    for role in ROLES:
                        fn = getattr(getattr(sessions[role].xenapi, cls), op + field)
                        err = failure(fn, *args)
                        checked += 1
                        if role in roles_ok:
                            allowed += 1
                            if err and err[0] == "RBAC_PERMISSION_DENIED":
                                mismatches.append("%s(%s) as %s: denied" % (wire, key, role))
                        else:
                            denied += 1
                            if not err or err[0] != "RBAC_PERMISSION_DENIED" or "/key:" not in err[1]:
                                mismatches.append("%s(%s) as %s: got %s" % (wire, key, role, err))
    print("\nRBAC matrix: %d role x message pairs checked (%d allowed, %d denied)" % (checked, allowed, denied))
    assert not mismatches, "\n".join(mismatches[:40])
    assert checked > 3000


def test_denial_parameters_are_xapis(env):
    s = login(env["x"], "u-read-only")
    vm = s.xenapi.VM.get_all()[0]
    err = failure(s.xenapi.VM.start, vm, False, False)
    assert err == ["RBAC_PERMISSION_DENIED", "vm.start",
                   "No permission in user session. (Roles with this permission: "
                   "pool-admin, pool-operator, vm-power-admin, vm-admin, vm-operator)"]


def test_async_denial_lands_in_the_task(env):
    s = login(env["x"], "u-read-only")
    vm = s.xenapi.VM.get_all()[0]
    task = s.xenapi.Async.VM.clean_shutdown(vm)
    deadline = time.time() + 10
    while s.xenapi.task.get_status(task) == "pending" and time.time() < deadline:
        time.sleep(0.05)
    assert s.xenapi.task.get_status(task) == "failure"
    assert s.xenapi.task.get_error_info(task)[:2] == ["RBAC_PERMISSION_DENIED", "vm.clean_shutdown"]


def test_protected_keys_and_setters(env):
    x, root = env["x"], env["root"].xenapi
    vm = root.VM.get_all()[0]
    op = login(x, "u-vm-operator").xenapi
    op.VM.add_to_other_config(vm, "folder", "/ops")
    op.VM.remove_from_other_config(vm, "folder")
    op.VM.add_to_other_config(vm, "XenCenter.CustomFields.owner", "ops")
    assert failure(op.VM.add_to_other_config, vm, "plain", "x")[:2] == \
        ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config"]
    admin = login(x, "u-vm-admin").xenapi
    assert failure(admin.VM.add_to_other_config, vm, "pci", "0/0000:00:01.0")[:2] == \
        ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config/key:pci"]
    # A setter may keep a protected key it could not change, not change it.
    root.VM.add_to_other_config(vm, "pci", "0/0000:00:02.0")
    oc = root.VM.get_other_config(vm)
    admin.VM.set_other_config(vm, dict(oc, plain="1"))
    changed = dict(oc, pci="0/0000:00:03.0")
    assert failure(admin.VM.set_other_config, vm, changed)[:2] == \
        ["RBAC_PERMISSION_DENIED", "vm.add_to_other_config/key:pci"]
    assert root.VM.get_other_config(vm)["pci"] == "0/0000:00:02.0"


def test_session_permissions_and_roles(env):
    x, root = env["x"], env["root"].xenapi
    ro = login(x, "u-read-only")
    perms = set(ro.xenapi.session.get_rbac_permissions(ro._session))
    assert "vm.get_record" in perms and "http/get_rrd_updates" in perms
    assert "vm.start" not in perms and "http/get_export" not in perms
    assert root.session.get_rbac_permissions(env["root"]._session) == []
    assert root.session.get_is_local_superuser(env["root"]._session)
    assert not ro.xenapi.session.get_is_local_superuser(ro._session)
    assert ro.xenapi.session.get_subject(ro._session) == env["subjects"]["read-only"]
    ops = env["roles"]["vm-operator"]
    names = set(root.role.get_permissions_name_label(ops))
    assert "vm.start" in names and "vm.destroy" not in names
    assert "vm.add_to_other_config/key:folder" in names
    assert len(root.role.get_permissions(ops)) == len(names)
    by = [root.role.get_name_label(r) for r in root.role.get_by_permission_name_label("vm.start")]
    assert by == ROLES[:5]
    perm = root.role.get_by_name_label("vm.start")[0]
    assert root.role.get_by_permission(perm) == root.role.get_by_permission_name_label("vm.start")
    assert set(root.subject.get_permissions_name_label(env["subjects"]["vm-operator"])) == names
    subj = env["subjects"]["ghost"]
    assert failure(root.subject.add_to_roles, subj, env["roles"]["read-only"]) == ["ROLE_ALREADY_EXISTS"]
    assert failure(root.subject.add_to_roles, subj, perm) == ["ROLE_NOT_FOUND"]
    assert failure(root.subject.remove_from_roles, subj, env["roles"]["pool-admin"]) == ["ROLE_NOT_FOUND"]
    sid = root.subject.get_subject_identifier(subj)
    assert failure(root.subject.create, {"subject_identifier": sid}) == ["SUBJECT_ALREADY_EXISTS"]


def test_roles_from_groups_nested(env):
    x = env["x"]
    alice = login(x, "alice").xenapi
    vm = alice.VM.get_all()[0]
    # vm-operator through the operators group.
    assert failure(alice.VM.start, BAD_REF, False, False)[0] == "HANDLE_INVALID"
    assert failure(alice.VM.destroy, vm)[0] == "RBAC_PERMISSION_DENIED"
    # vm-admin through inner, a member of outer.
    dave = login(x, "dave").xenapi
    assert failure(dave.VM.destroy, BAD_REF)[0] == "HANDLE_INVALID"
    assert failure(dave.VM.pool_migrate, vm, BAD_REF, {})[0] == "RBAC_PERMISSION_DENIED"
    root = env["root"].xenapi
    sid = root.auth.get_subject_identifier("dave")
    groups = root.auth.get_group_membership(sid)
    assert set(groups) == {root.auth.get_subject_identifier("inner"), root.auth.get_subject_identifier("outer")}
    info = root.auth.get_subject_information_from_identifier(sid)
    assert info["subject-name"] == "dave" and info["subject-is-group"] == "false"
    assert info["subject-gecos"] == "Dave Example"
    assert failure(root.auth.get_subject_identifier, "nobody-at-all") == ["SUBJECT_CANNOT_BE_RESOLVED"]
    assert failure(root.auth.get_subject_information_from_identifier, "no-such-id") == \
        ["SUBJECT_CANNOT_BE_RESOLVED"]


def test_bad_logins(env):
    x = env["x"]
    for user in ["*)(uid=*", "*", "alice)(|(uid=*", "u-read-only*"]:
        err = failure(XenAPI.Session(x.url).xenapi.login_with_password, user, "pw-read-only", "1.0", "t")
        assert err[0] == "SESSION_AUTHENTICATION_FAILED", (user, err)
    err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "alice", "wrong", "1.0", "t")
    assert err[:2] == ["SESSION_AUTHENTICATION_FAILED", "alice"]
    # An empty password would be an anonymous bind.
    err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "alice", "", "1.0", "t")
    assert err[0] == "SESSION_AUTHENTICATION_FAILED"
    err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "eve", "eve-pw", "1.0", "t")
    assert err[:2] == ["SESSION_AUTHORIZATION_FAILED", "eve"]
    err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "norole", "norole-pw", "1.0", "t")
    assert err[:2] == ["RBAC_PERMISSION_DENIED", "norole"]
    # root still logs in locally.
    x.session().xenapi.logout()


def test_http_handlers_per_role(env):
    x, root = env["x"], env["root"].xenapi
    vm = root.VM.get_all()[0]
    uuid = root.VM.get_uuid(vm)

    def status(user, path, method="GET"):
        s = login(x, user)
        sep = "&" if "?" in path else "?"
        c = x.connection(timeout=10)
        try:
            c.request(method, path + sep + "session_id=" + s._session, b"" if method == "PUT" else None,
                      {"Content-Length": "0"} if method == "PUT" else {})
            return c.getresponse().status
        finally:
            c.close()

    assert status("u-read-only", "/rrd_updates?start=0") == 200
    assert status("u-read-only", "/host_rrd") == 200
    assert status("u-read-only", "/audit_log") == 200
    assert status("u-read-only", "/export?uuid=" + uuid) == 403
    assert status("u-vm-operator", "/export?uuid=" + uuid) == 403
    assert status("u-vm-operator", "/console?uuid=" + uuid) != 403
    assert status("u-read-only", "/console?uuid=" + uuid) == 403
    assert status("u-vm-admin", "/export_raw_vdi?vdi=" + BAD_REF) != 403
    assert status("u-vm-operator", "/import_raw_vdi?vdi=" + BAD_REF, "PUT") == 403
    assert status("u-pool-operator", "/pool/xmldbdump") == 403
    assert status("u-pool-admin", "/pool/xmldbdump") == 200


def test_cli_per_role(env):
    """The real xe over TCP as directory users: /cli runs its calls under the
    user's roles."""
    xe = os.environ.get("XE_BIN", os.path.join(ROOT, "target", "debug", "xe"))
    if not os.path.exists(xe):
        if os.environ.get("CI"):
            pytest.fail("xe is missing: " + xe)
        pytest.skip("xe is not built (cargo build -p xe)")
    x = env["x"]
    env_ = dict(os.environ, XE_UNIX_SOCKET=os.path.join(x.data_dir, "no-such-socket"), HOME=x.data_dir)

    def run(user, *args):
        return subprocess.run([xe, "-s", "127.0.0.1", "-p", str(x.port), "--nossl", "-u", user,
                               "-pw", USERS[user], *args], capture_output=True, text=True, timeout=60, env=env_)

    r = run("u-read-only", "vm-list", "--minimal")
    assert r.returncode == 0 and r.stdout.strip(), r
    vm = r.stdout.strip().split(",")[0]
    r = run("u-read-only", "vm-param-set", "uuid=" + vm, "name-description=cli")
    assert r.returncode != 0 and "vm.set_name_description" in (r.stdout + r.stderr), r
    r = run("u-vm-admin", "vm-param-set", "uuid=" + vm, "name-description=cli")
    assert r.returncode == 0, r
    assert env["root"].xenapi.VM.get_name_description(env["root"].xenapi.VM.get_by_uuid(vm)) == "cli"


def test_audit_log(env):
    x, root = env["x"], env["root"]
    ro = login(x, "u-read-only")
    vm = ro.xenapi.VM.get_all()[0]
    failure(ro.xenapi.VM.set_name_label, vm, "nope")
    root.xenapi.VM.set_name_description(vm, "audited")
    root.xenapi.pool.audit_log_append("[20991231T00:00:00.000Z|audit|elsewhere] ('appended')")
    st, _, body = x.post("/audit_log?session_id=" + root._session, b"", method="GET")
    assert st == 200
    text = body.decode()
    sid = root.xenapi.subject.get_subject_identifier(env["subjects"]["read-only"])
    denied = [l for l in text.splitlines() if "'DENIED'" in l and "'vm.set_name_label'" in l]
    assert denied and sid in denied[-1] and "'u-read-only'" in denied[-1] and vm in denied[-1]
    ok = [l for l in text.splitlines() if "'ALLOWED' 'OK' 'API' 'vm.set_name_description'" in l]
    assert ok and "'LOCAL_SUPERUSER'" in ok[-1]
    assert "('appended')" in text
    st, _, body = x.post("/audit_log?since=2099-01-01&session_id=" + root._session, b"", method="GET")
    assert body.decode().strip().splitlines() == ["[20991231T00:00:00.000Z|audit|elsewhere] ('appended')"]
    # Appending is pool-admin only.
    assert failure(ro.xenapi.pool.audit_log_append, "x")[0] == "RBAC_PERMISSION_DENIED"


def test_subject_sessions_and_revalidation(env):
    x, d, root = env["x"], env["ldap"], env["root"].xenapi
    a = login(x, "gone")
    b = login(x, "ghost")
    sid = root.subject.get_subject_identifier(env["subjects"]["gone"])
    assert sid in root.session.get_all_subject_identifiers()
    # A user removed from the directory loses its sessions.
    d.delete(user_dn("gone"))
    deadline = time.time() + 15
    while time.time() < deadline and session_valid(x, a):
        time.sleep(0.2)
    assert not session_valid(x, a)
    # A subject deleted here: its sessions end too.
    root.subject.destroy(env["subjects"]["ghost"])
    deadline = time.time() + 15
    while time.time() < deadline and session_valid(x, b):
        time.sleep(0.2)
    assert not session_valid(x, b)
    # A user disabled in the directory: its sessions end, it cannot log in.
    c = login(x, "locked")
    d.add_attribute(user_dn("locked"), "carLicense", "locked")
    deadline = time.time() + 15
    while time.time() < deadline and session_valid(x, c):
        time.sleep(0.2)
    assert not session_valid(x, c)
    err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "locked", "locked-pw", "1.0", "t")
    assert err[:2] == ["SESSION_AUTHORIZATION_FAILED", "locked"]
    # logout_subject_identifier ends every session of a subject.
    c1, c2 = login(x, "alice"), login(x, "alice")
    alice_sid = root.auth.get_subject_identifier("alice")
    root.session.logout_subject_identifier(alice_sid)
    assert not session_valid(x, c1) and not session_valid(x, c2)
    assert alice_sid not in root.session.get_all_subject_identifiers()


def test_enable_errors():
    d = Slapd({"bob": "bob-pw"}, {}).start()
    x = Xapid().start()
    try:
        api = x.session().xenapi
        pool = api.pool.get_all()[0]
        host = api.host.get_all()[0]
        assert failure(api.pool.enable_external_auth, pool, d.config(), "x", "NTLM") == \
            ["AUTH_UNKNOWN_TYPE", "NTLM"]
        err = failure(api.pool.enable_external_auth, pool, d.config(bind_password="wrong"), "x", "LDAP")
        assert err[:2] == ["POOL_AUTH_ENABLE_FAILED_WRONG_CREDENTIALS", host]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = "ldap://127.0.0.1:%d" % s.getsockname()[1]
        err = failure(api.pool.enable_external_auth, pool, d.config(url=dead), "x", "LDAP")
        assert err[:2] == ["POOL_AUTH_ENABLE_FAILED_UNAVAILABLE", host]
        err = failure(api.pool.enable_external_auth, pool, d.config(url="http://x"), "x", "LDAP")
        assert err[:2] == ["POOL_AUTH_ENABLE_FAILED", host]
        assert api.host.get_external_auth_type(host) == ""
        assert failure(api.auth.get_subject_identifier, "bob") == ["AUTH_IS_DISABLED"]
        api.pool.enable_external_auth(pool, d.config(), "example.org", "LDAP")
        conf = api.host.get_external_auth_configuration(host)
        assert "bind_password" not in conf and "wrong" not in str(conf) and conf["url"] == d.url
        assert api.host.get_external_auth_type(host) == "LDAP"
        assert failure(api.pool.enable_external_auth, pool, d.config(), "x", "LDAP") == \
            ["POOL_AUTH_ALREADY_ENABLED", host]
        api.subject.create({"subject_identifier": api.auth.get_subject_identifier("bob")})
        bob = login(x, "bob", "bob-pw")
        # The settings survive a restart (the password from its secret).
        x.restart()
        bob = login(x, "bob", "bob-pw")
        # The directory goes down: directory logins fail with xapi's error,
        # root still logs in (TCP and the Unix socket).
        d.stop()
        err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "bob", "bob-pw", "1.0", "t")
        assert err[:2] == ["SESSION_AUTHORIZATION_FAILED", "bob"]
        x.session().xenapi.logout()
        u = x.uds_session()
        u.xenapi.login_with_password("root", "")
        assert u.xenapi.pool.get_all() == [pool]
        d.start()
        bob = login(x, "bob", "bob-pw")
        api = x.session().xenapi
        api.pool.disable_external_auth(pool, {})
        assert not session_valid(x, bob)
        err = failure(XenAPI.Session(x.url).xenapi.login_with_password, "bob", "bob-pw", "1.0", "t")
        assert err[0] == "SESSION_AUTHENTICATION_FAILED"
        assert api.host.get_external_auth_configuration(host) == {}
        assert api.secret.get_all() == [] or all(
            api.secret.get_value(s) != "admin-secret" for s in api.secret.get_all())
    finally:
        x.cleanup()
        d.cleanup()


def test_directory_over_tls():
    """ldaps:// and StartTLS, the directory's certificate checked against
    `ca_cert`; without the CA (the system's roots) the directory is refused."""
    d = Slapd({"tina": "tina-pw"}, {}, tls=True).start()
    x = Xapid().start()
    try:
        api = x.session().xenapi
        pool = api.pool.get_all()[0]
        host = api.host.get_all()[0]
        # Not signed by a CA the host trusts.
        err = failure(api.pool.enable_external_auth, pool, d.config(url=d.ldaps_url), "x", "LDAP")
        assert err[:2] == ["POOL_AUTH_ENABLE_FAILED_UNAVAILABLE", host], err
        err = failure(api.pool.enable_external_auth, pool, d.config(starttls="true"), "x", "LDAP")
        assert err[:2] == ["POOL_AUTH_ENABLE_FAILED_UNAVAILABLE", host], err
        assert api.host.get_external_auth_type(host) == ""
        for conf in (d.config(url=d.ldaps_url, ca_cert=d.ca_path), d.config(starttls="true", ca_cert=d.ca_path)):
            api.pool.enable_external_auth(pool, conf, "example.org", "LDAP")
            subj = api.subject.create({"subject_identifier": api.auth.get_subject_identifier("tina")})
            tina = login(x, "tina", "tina-pw")
            assert tina.xenapi.pool.get_all() == [pool]
            tina.xenapi.logout()
            api.subject.destroy(subj)
            api.pool.disable_external_auth(pool, {})
    finally:
        x.cleanup()
        d.cleanup()
