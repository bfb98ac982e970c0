#!/usr/bin/env python3
"""Sanity checks of the held-out set with Python's own email parser (not
postdesk's): every file parses, declared charsets decode, and every gold
word of a reply is in its decoded text or HTML."""
import email, email.policy, json, os, re, sys, html as H

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
bad = 0
for fam in ("plain", "html", "reports", "negatives"):
    gold = os.path.join(ROOT, fam, "gold.jsonl")
    if not os.path.exists(gold):
        continue
    for line in open(gold, encoding="utf-8"):
        r = json.loads(line)
        raw = open(os.path.join(ROOT, fam, r["file"]), "rb").read()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        texts = []
        seen = set()
        for part in m.walk():
            if part.get_content_type() == "message/rfc822":
                break
            if part.get_content_maintype() == "text" and part.get_content_subtype() not in seen:
                seen.add(part.get_content_subtype())
                try:
                    texts.append((part.get_content_subtype(), part.get_content()))
                except Exception as e:
                    print("DECODE", r["file"], e); bad += 1
        if m.defects:
            print("DEFECTS", r["file"], m.defects)
        if "expected" in r:
            for sub, t in texts:
                if sub == "html":
                    t = H.unescape(re.sub(r"<[^>]+>", " ", t))
                words = set(re.sub(r"^>+", "", w).strip("<>") for w in t.replace("\ufeff", "").split())
                missing = [w for w in re.sub(r"(?m)^>+", "", r["expected"]).split() if w.strip("<>") and w.strip("<>") not in words]
                if missing and not (sub == "plain" and "flowed" in str(m)):
                    print("MISSING", r["file"], sub, missing[:5]); bad += 1
                if sub == "plain" and "&#" in t:
                    print("ENTITY", r["file"]); bad += 1
print("problems:", bad)
sys.exit(1 if bad else 0)
