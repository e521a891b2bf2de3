"""Server certificates seen by a real TLS client (openssl s_client): install,
reset and emergency reset swap the HTTPS listener's certificate without a
restart; bad certificates are refused and change nothing; set_https_only
closes plain HTTP on TCP while HTTPS and the Unix socket stay."""

import http.client
import os
import ssl
import subprocess
import xmlrpc.client
import tempfile

import pytest
import XenAPI

from conftest import PASSWORD, Xapid, free_port, require_tool


def served_cert(port):
    """The PEM certificate the server presents, as openssl s_client sees it."""
    openssl = require_tool("openssl")
    r = subprocess.run([openssl, "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"],
                       input="", capture_output=True, text=True, timeout=30)
    out = r.stdout
    a, b = out.find("-----BEGIN CERTIFICATE-----"), out.find("-----END CERTIFICATE-----")
    assert a >= 0 and b > a, out + r.stderr
    return out[a:b + len("-----END CERTIFICATE-----")] + "\n"


def fingerprint(pem):
    r = subprocess.run([require_tool("openssl"), "x509", "-noout", "-fingerprint", "-sha256"],
                       input=pem, capture_output=True, text=True, timeout=30, check=True)
    return r.stdout.strip().split("=", 1)[1]


def subject(pem):
    r = subprocess.run([require_tool("openssl"), "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                       input=pem, capture_output=True, text=True, timeout=30)
    return r.stdout


def openssl(*args, cwd):
    subprocess.run([require_tool("openssl"), *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture()
def tls():
    https = free_port()
    x = Xapid(extra_args=["--https", "127.0.0.1:%d" % https]).start()
    d = tempfile.mkdtemp(prefix="certs-")
    try:
        yield x, https, d
    finally:
        x.cleanup()
        subprocess.run(["rm", "-rf", d])


def failure(fn, *args):
    try:
        fn(*args)
    except XenAPI.Failure as e:
        return e.details
    return None


def test_install_reset_and_bad_certificates(tls):
    x, port, d = tls
    api = x.session().xenapi
    host = api.host.get_all()[0]
    first = served_cert(port)
    assert api.host.get_server_certificate(host) == first
    certs = api.Certificate.get_all_records()
    assert [c["fingerprint"] for c in certs.values() if c["type"] == "host"] == [fingerprint(first)]

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
            "-days", "30", "-subj", "/CN=installed.example", cwd=d)
    cert, key = open(os.path.join(d, "c.pem")).read(), open(os.path.join(d, "k.pem")).read()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.pem", "-out", "o.pem",
            "-days", "30", "-subj", "/CN=other", cwd=d)
    other_key = open(os.path.join(d, "other.pem")).read()
    # Expired: signed by itself with a validity in the past.
    os.makedirs(os.path.join(d, "ca", "new"))
    open(os.path.join(d, "ca", "index.txt"), "w").close()
    open(os.path.join(d, "ca", "serial"), "w").write("01\n")
    open(os.path.join(d, "ca.cnf"), "w").write(
        "[ca]\ndefault_ca = d\n[d]\ndir = ./ca\ndatabase = ./ca/index.txt\nnew_certs_dir = ./ca/new\n"
        "serial = ./ca/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ek.pem", "-out", "e.csr",
            "-subj", "/CN=expired", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "ek.pem", "-in", "e.csr",
            "-out", "e.pem", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", cwd=d)
    expired, expired_key = open(os.path.join(d, "e.pem")).read(), open(os.path.join(d, "ek.pem")).read()

    assert failure(api.host.install_server_certificate, host, cert, other_key) == ["SERVER_CERTIFICATE_KEY_MISMATCH"]
    err = failure(api.host.install_server_certificate, host, expired, expired_key)
    assert err[0] == "SERVER_CERTIFICATE_EXPIRED" and err[2].startswith("20210101")
    assert failure(api.host.install_server_certificate, host, "not a certificate", key) == \
        ["SERVER_CERTIFICATE_INVALID"]
    assert failure(api.host.install_server_certificate, host, cert, "not a key") == ["SERVER_CERTIFICATE_KEY_INVALID"]
    assert served_cert(port) == first, "a refused certificate changes nothing"

    api.host.install_server_certificate(host, cert, key, "")
    now = served_cert(port)
    assert fingerprint(now) == fingerprint(cert)
    assert "installed.example" in subject(now)
    certs = api.Certificate.get_all_records()
    assert [c["fingerprint"] for c in certs.values() if c["type"] == "host"] == [fingerprint(cert)]

    # The installed certificate survives a restart.
    x.restart()
    api = x.session().xenapi
    assert fingerprint(served_cert(port)) == fingerprint(cert)

    api.host.reset_server_certificate(host)
    reset = served_cert(port)
    assert fingerprint(reset) != fingerprint(cert)
    subj = subject(reset)
    name = api.host.get_hostname(host)
    assert "CN = " + name in subj and "DNS:" + name in subj and "IP Address:127.0.0.1" in subj, subj
    end = subprocess.run([require_tool("openssl"), "x509", "-noout", "-enddate"], input=reset,
                         capture_output=True, text=True, timeout=30).stdout
    assert int(end.split()[-2]) >= 2035, end

    # The emergency reset is for the local superuser (root over the Unix socket).
    u = x.uds_session()
    u.xenapi.login_with_password("root", "")
    u.xenapi.host.emergency_reset_server_certificate()
    assert fingerprint(served_cert(port)) != fingerprint(reset)


def test_https_only(tls):
    x, port, _ = tls
    api = x.session().xenapi
    pool = api.pool.get_all()[0]
    host = api.host.get_all()[0]
    api.pool.set_https_only(pool, True)
    assert api.host.get_https_only(host)
    with pytest.raises((OSError, http.client.HTTPException)):
        XenAPI.Session(x.url).xenapi.login_with_password("root", PASSWORD, "1.0", "t")
    # HTTPS and the Unix socket still serve.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = XenAPI.Session("https://127.0.0.1:%d" % port, transport=xmlrpc.client.SafeTransport(context=ctx))
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "t")
    u = x.uds_session()
    u.xenapi.login_with_password("root", "")
    u.xenapi.pool.set_https_only(pool, False)
    XenAPI.Session(x.url).xenapi.login_with_password("root", PASSWORD, "1.0", "t")


def test_ca_certificates(tls):
    x, _, d = tls
    api = x.session().xenapi
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "cak.pem", "-out", "ca.pem",
            "-days", "30", "-subj", "/CN=Test CA", cwd=d)
    ca = open(os.path.join(d, "ca.pem")).read()
    api.pool.install_ca_certificate("test-ca.pem", ca)
    rows = [c for c in api.Certificate.get_all_records().values() if c["type"] == "ca"]
    assert [(c["name"], c["fingerprint"]) for c in rows] == [("test-ca.pem", fingerprint(ca))]
    assert os.path.exists(os.path.join(x.data_dir, "ca", "test-ca.pem"))
    assert failure(api.pool.install_ca_certificate, "test-ca.pem", ca) == \
        ["CERTIFICATE_ALREADY_EXISTS", "test-ca.pem"]
    assert failure(api.pool.install_ca_certificate, "../evil", ca) == ["CERTIFICATE_NAME_INVALID", "../evil"]
    assert failure(api.pool.install_ca_certificate, "bad.pem", "junk") == ["CA_CERTIFICATE_INVALID"]
    api.pool.uninstall_ca_certificate("test-ca.pem")
    assert not [c for c in api.Certificate.get_all_records().values() if c["type"] == "ca"]
    assert not os.path.exists(os.path.join(x.data_dir, "ca", "test-ca.pem"))
    assert failure(api.pool.uninstall_ca_certificate, "test-ca.pem") == \
        ["CERTIFICATE_DOES_NOT_EXIST", "test-ca.pem"]
