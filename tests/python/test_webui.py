"""The management page's files as xapid serves them: caching, compression,
revalidation, the CSP, and no CORS header on them (RPC keeps xapi's)."""
import gzip
import http.client
import re


def get(xapid, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", xapid.port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def test_index_headers(xapid):
    st, h, body = get(xapid, "/")
    assert st == 200
    assert h["content-type"].startswith("text/html")
    assert h["cache-control"] == "no-cache"
    assert "access-control-allow-origin" not in h
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert f"ws://127.0.0.1:{xapid.port}" in csp
    assert h["x-content-type-options"] == "nosniff"
    assert b"<html" in body


def test_assets_are_immutable_compressed_and_revalidated(xapid):
    _, _, index = get(xapid, "/")
    assets = re.findall(rb'/assets/[^"]+\.(?:js|css)', index)
    if not assets:
        # The placeholder page (no npm build before cargo build) names none.
        assert b"npm run build" in index
        return
    path = assets[0].decode()
    st, h, plain = get(xapid, path)
    assert st == 200 and h["cache-control"] == "public, max-age=31536000, immutable"
    st, hz, packed = get(xapid, path, {"Accept-Encoding": "gzip"})
    assert st == 200 and hz.get("content-encoding") == "gzip" and hz["vary"] == "accept-encoding"
    assert gzip.decompress(packed) == plain
    st, h304, body = get(xapid, path, {"If-None-Match": h["etag"]})
    assert st == 304 and body == b""
    st, hh, body = get(xapid, path, method="HEAD")
    assert st == 200 and body == b"" and int(hh["content-length"]) == len(plain)


def test_unknown_path_is_404(xapid):
    st, h, _ = get(xapid, "/no/such/file.js")
    assert st == 404
    st, _, _ = get(xapid, "/../../etc/passwd")
    assert st == 404
