"""GET /metrics scraped by a real Prometheus server (Debian's `prometheus`,
started here on loopback with its own config and storage): the VM CPU series
reaches its query API; the endpoint wants credentials like the other
statistics handlers."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import PASSWORD, Xapid, free_port, require_tool
from vmlib import running, wait_for


def test_prometheus_scrapes_metrics():
    prometheus = require_tool("prometheus")
    x = Xapid().start()
    tmp = tempfile.mkdtemp(prefix="prometheus-test-")
    proc = None
    try:
        api = x.session().xenapi
        vm = api.VM.get_uuid(running(api, "scraped"))
        # Without credentials: refused, as every statistics handler.
        try:
            urllib.request.urlopen(x.url + "/metrics", timeout=10)
            raise AssertionError("unauthenticated /metrics answered")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        port = free_port()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: xapi
    metrics_path: /metrics
    basic_auth: {username: root, password: "%s"}
    static_configs:
      - targets: ["127.0.0.1:%d"]
""" % (PASSWORD, x.port))
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        proc = subprocess.Popen([prometheus, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log)

        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(q))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return json.loads(r.read())["data"]["result"]
            except (OSError, ValueError, KeyError):
                return None

        series = wait_for(lambda: query('xapi_vm_cpu_usage_ratio{uuid="%s"}' % vm), 60,
                          "the VM CPU series in Prometheus", interval=1)
        assert series[0]["metric"]["name"] == "scraped" and series[0]["metric"]["cpu"] == "0"
        assert 0.0 <= float(series[0]["value"][1]) <= 1.0
        assert wait_for(lambda: query("xapi_host_memory_total_bytes"), 30, "host memory", interval=1)
        up = query('up{job="xapi"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        x.cleanup()
