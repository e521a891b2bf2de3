"""A real OpenLDAP server (Debian's slapd) for directory-user tests: its own
config and data in a temporary directory, listening on a free loopback port,
loaded with slapadd. Users are posixAccounts with clear-text passwords under
ou=people; groups are groupOfNames under ou=groups (nesting allowed)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import free_port, require_tool

SUFFIX = "dc=example,dc=org"
ADMIN_DN = "cn=admin," + SUFFIX
ADMIN_PW = "admin-secret"
PEOPLE = "ou=people," + SUFFIX
GROUPS = "ou=groups," + SUFFIX
SCHEMAS = ["core", "cosine", "nis", "inetorgperson"]


def user_dn(name):
    return "uid=%s,%s" % (name, PEOPLE)


def group_dn(name):
    return "cn=%s,%s" % (name, GROUPS)


class Slapd:
    def __init__(self, users, groups, tls=False):
        """users: {name: password}; groups: {name: [member user or group names]}
        (a member that is also a group name is the nested group). With `tls`,
        a CA and a server certificate for 127.0.0.1 are made with openssl, and
        slapd also listens for ldaps:// (`ldaps_url`) and offers StartTLS."""
        self.slapd = require_tool("slapd")
        self.slapadd = require_tool("slapadd")
        self.dir = tempfile.mkdtemp(prefix="slapd-test-")
        self.port = free_port()
        self.users = dict(users)
        self.groups = dict(groups)
        self.proc = None
        self.tls_port = free_port() if tls else None
        self.ca_path = os.path.join(self.dir, "ca.pem")
        os.makedirs(os.path.join(self.dir, "data"))
        if tls:
            self._make_certificates()
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(self.conf, "w") as f:
            for s in SCHEMAS:
                f.write("include /etc/ldap/schema/%s.schema\n" % s)
            f.write("modulepath /usr/lib/ldap\nmoduleload back_mdb\n")
            if tls:
                f.write("TLSCACertificateFile %s\n" % self.ca_path)
                f.write("TLSCertificateFile %s/server.pem\nTLSCertificateKeyFile %s/server.key\n" % (self.dir, self.dir))
            f.write("pidfile %s/slapd.pid\n" % self.dir)
            f.write("database mdb\nmaxsize 10485760\n")
            f.write('suffix "%s"\nrootdn "%s"\nrootpw %s\n' % (SUFFIX, ADMIN_DN, ADMIN_PW))
            f.write("directory %s/data\n" % self.dir)
            # Passwords are for binding only; everything else is readable.
            f.write("access to attrs=userPassword by self write by anonymous auth by * none\n")
            f.write("access to * by * read\n")
        ldif = [self._entry(SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"}),
                self._entry(PEOPLE, ["organizationalUnit"], {"ou": "people"}),
                self._entry(GROUPS, ["organizationalUnit"], {"ou": "groups"})]
        for i, (name, pw) in enumerate(sorted(self.users.items())):
            ldif.append(self.user_ldif(name, pw, 10000 + i))
        for name, members in sorted(self.groups.items()):
            ldif.append(self.group_ldif(name, members))
        path = os.path.join(self.dir, "data.ldif")
        with open(path, "w") as f:
            f.write("\n".join(ldif))
        subprocess.run([self.slapadd, "-f", self.conf, "-l", path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    @staticmethod
    def _entry(dn, classes, attrs):
        lines = ["dn: " + dn] + ["objectClass: " + c for c in classes]
        for k, v in attrs.items():
            for x in (v if isinstance(v, list) else [v]):
                lines.append("%s: %s" % (k, x))
        return "\n".join(lines) + "\n"

    def user_ldif(self, name, pw, uid):
        return self._entry(user_dn(name), ["inetOrgPerson", "posixAccount"], {
            "uid": name, "cn": name.capitalize(), "sn": name, "userPassword": pw,
            "uidNumber": str(uid), "gidNumber": "10000", "homeDirectory": "/home/" + name,
            "gecos": name.capitalize() + " Example", "mail": name + "@example.org"})

    def group_ldif(self, name, members):
        dns = [group_dn(m) if m in self.groups else user_dn(m) for m in members] or [ADMIN_DN]
        return self._entry(group_dn(name), ["groupOfNames"], {"cn": name, "member": dns})

    def _make_certificates(self):
        openssl = require_tool("openssl")
        d = self.dir
        run = lambda *a: subprocess.run([openssl, *a], check=True, cwd=d, timeout=60,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=xapi-rs test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")

    @property
    def url(self):
        return "ldap://127.0.0.1:%d" % self.port

    @property
    def ldaps_url(self):
        return "ldaps://127.0.0.1:%d" % self.tls_port

    def config(self, **extra):
        c = {"url": self.url, "bind_dn": ADMIN_DN, "bind_password": ADMIN_PW,
             "user_base": PEOPLE, "group_base": GROUPS, "timeout_secs": "3"}
        c.update(extra)
        return c

    def start(self):
        urls = self.url + "/" + (" " + self.ldaps_url + "/" if self.tls_port else "")
        self.proc = subprocess.Popen(
            [self.slapd, "-f", self.conf, "-h", urls, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited with %s" % self.proc.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def delete(self, dn):
        """Remove an entry (the server keeps running)."""
        tool = require_tool("ldapdelete")
        subprocess.run([tool, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, dn],
                       check=True, stdout=subprocess.DEVNULL, timeout=30)

    def add_attribute(self, dn, attr, value):
        """Add an attribute value to an entry (the server keeps running)."""
        tool = require_tool("ldapmodify")
        change = "dn: %s\nchangetype: modify\nadd: %s\n%s: %s\n" % (dn, attr, attr, value)
        subprocess.run([tool, "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW], input=change.encode(),
                       check=True, stdout=subprocess.DEVNULL, timeout=30)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
