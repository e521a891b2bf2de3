#!/usr/bin/env python3
"""Print, per class, the datamodel's explicit messages that the server does not
implement (they answer NOT_IMPLEMENTED through the generated trait defaults).
Reads datamodel/*.dm and the `impl <Class>Api for Server` blocks in
crates/server/src; removed messages are left out (they answer MESSAGE_REMOVED)."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def implemented():
    impl = {}
    for f in glob.glob(os.path.join(ROOT, "crates/server/src/**/*.rs"), recursive=True):
        s = open(f).read()
        for m in re.finditer(r"impl (\w+)Api for Server \{", s):
            i, depth = m.end(), 1
            while depth:
                depth += {"{": 1, "}": -1}.get(s[i], 0)
                i += 1
            names = re.findall(r"async fn (?:r#)?(\w+)\s*[<(]", s[m.end():i])
            # Trait methods are the snake_case of the wire name (VBDs → vbds).
            impl.setdefault(m.group(1).lower(), set()).update(n.lower() for n in names)
    return impl


def main():
    impl = implemented()
    for f in sorted(glob.glob(os.path.join(ROOT, "datamodel/*.dm"))):
        cls = os.path.basename(f)[:-3]
        have = impl.get(cls.replace("_", "").lower(), set())
        missing = []
        for line in open(f):
            if not line.startswith("message "):
                continue
            head = line.split(" -- ")[0].split()
            if "removed" in head:
                continue
            name = head[1]
            if name.lower() not in have:
                missing.append(name)
        if missing:
            print("%s (%d): %s" % (cls, len(missing), ", ".join(sorted(missing))))


if __name__ == "__main__":
    main()
