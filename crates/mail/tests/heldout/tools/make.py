#!/usr/bin/env python3
"""Writes the held-out set (crates/mail/tests/heldout/) from the hand-written
entries in plain.py, html.py, reports.py and negatives.py.

Split rule, fixed before any run: within each family, entries are numbered in
writing order; odd numbers (1, 3, 5, ...) go to dev/, even numbers to test/.

    python3 crates/mail/tests/heldout/tools/make.py
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))

from clients import expand, reply_headers  # noqa: E402
from mime import boundary, message, text_part  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def slug(s):
    return "".join(c if c.isalnum() else "-" for c in s.lower()).strip("-")


def split_of(i):
    return "dev" if i % 2 == 0 else "test"


def crlf_of(i):
    return (i // 2) % 2 == 0


def write_family(family, items):
    """items: list of (name, bytes, gold dict)."""
    base = os.path.join(ROOT, family)
    if os.path.isdir(base):
        shutil.rmtree(base)
    for split in ("dev", "test"):
        os.makedirs(os.path.join(base, split))
    with open(os.path.join(base, "gold.jsonl"), "w", encoding="utf-8") as gold:
        for i, (name, raw, record) in enumerate(items):
            rel = "%s/%03d-%s.eml" % (split_of(i), i + 1, name)
            with open(os.path.join(base, rel), "wb") as f:
                f.write(raw)
            gold.write(json.dumps(dict(file=rel, **record), ensure_ascii=False) + "\n")
    print("%s: %d emails" % (family, len(items)))


def plain_items():
    from plain import PLAIN

    out = []
    for i, e in enumerate(PLAIN):
        body = expand(e["body"], e)
        gold = e.get("gold", e["new"])
        assert gold.strip(), e
        if not e.get("inline") and not e.get("reply_below") and "flowed" not in e.get("params", ""):
            assert body.startswith(e["new"]), (i + 1, e["client"])
        entity = text_part(body, "plain", e["charset"], e["cte"], e.get("params", ""))
        raw = message(reply_headers(e, i, e["date"]), entity, crlf_of(i))
        name = "%s-%s" % (e.get("agent", e["client"]), e["lang"])
        rec = dict(client=e.get("agent", e["client"]), lang=e["lang"], expected=gold)
        if e.get("inline"):
            rec["inline"] = True
        out.append((name, raw, rec))
    return out


def html_items():
    from html_replies import HTML, render

    out = []
    for i, e in enumerate(HTML):
        entity, gold = render(e, i)
        raw = message(reply_headers(e, i, e["date"]), entity, crlf_of(i))
        name = "%s-%s" % (e.get("agent", e["client"]), e["lang"])
        rec = dict(client=e.get("agent", e["client"]), lang=e["lang"], expected=gold)
        if e.get("inline"):
            rec["inline"] = True
        out.append((name, raw, rec))
    return out


def simple_items(module):
    mod = __import__(module)
    out = []
    for i, item in enumerate(mod.build()):
        name, raw, rec = item
        raw = raw.replace(b"\r\n", b"\n")
        if crlf_of(i):
            raw = raw.replace(b"\n", b"\r\n")
        out.append((name, raw, rec))
    return out


if __name__ == "__main__":
    families = sys.argv[1:] or ["plain", "html", "reports", "negatives"]
    for fam in families:
        if fam == "plain":
            write_family("plain", plain_items())
        elif fam == "html":
            write_family("html", html_items())
        else:
            write_family(fam, simple_items(fam))
