"""host.restart_agent restarts the toolstack for real, as xapi does: the call
returns, the process stops cleanly and starts again (same pid: it re-executes
itself), agent_start_time moves (Xen Orchestra waits for that), state and
running guests are kept, and clients log in again."""

import time

import XenAPI

from conftest import Xapid
from vmlib import running, wait_for


def agent_start(api, host):
    return float(api.host.get_other_config(host)["agent_start_time"])


def test_restart_agent_restarts_the_process():
    x = Xapid().start()
    try:
        api = x.session().xenapi
        host = api.host.get_all()[0]
        vm = running(api, "survives restart", tmpl="Debian Etch 4.0")
        api.network.create({"name_label": "kept", "MTU": "1500", "other_config": {}})
        before = agent_start(api, host)
        pid = x.proc.pid
        time.sleep(1.1)  # agent_start_time has one-second resolution
        assert api.host.restart_agent(host) == ""

        def restarted():
            try:
                a = x.session().xenapi
                return a if agent_start(a, host) > before else None
            except (OSError, XenAPI.Failure):
                return None

        api = wait_for(restarted, 30, "agent restarted", interval=0.2)
        assert x.proc.poll() is None and x.proc.pid == pid
        assert api.network.get_by_name_label("kept")
        wait_for(lambda: api.VM.get_power_state(vm) == "Running", 10, "guest adopted")
        assert "restarting the agent" in open(x.log_path).read()
    finally:
        x.cleanup()
