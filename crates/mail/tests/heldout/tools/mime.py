"""Small MIME writer for the held-out set: headers and parts written the way
the mail clients and servers do, in the charset and transfer encoding asked
for. Output is bytes (legacy charsets stay 8-bit where the spec says so)."""

import base64
import email.charset
import email.header
import email.utils
import hashlib
import quopri

CHARSET_ALIASES = {"iso-2022-jp": "iso2022_jp", "gb2312": "gb2312", "ks_c_5601-1987": "euc_kr"}


def py_codec(charset):
    return CHARSET_ALIASES.get(charset.lower(), charset)


def is_ascii(s):
    return all(ord(c) < 128 for c in s)


def enc_words(text, charset="utf-8", mode="B"):
    """RFC 2047 encoded words for a header value (unstructured)."""
    if is_ascii(text):
        return text
    raw = text.encode(py_codec(charset))
    if mode == "B":
        # split into chunks that stay under 75 chars per word
        words, chunk = [], b""
        for ch in text:
            b = ch.encode(py_codec(charset))
            if len(base64.b64encode(chunk + b)) > 45:
                words.append(chunk)
                chunk = b""
            chunk += b
        if chunk:
            words.append(chunk)
        return "\r\n ".join(
            "=?%s?B?%s?=" % (charset, base64.b64encode(w).decode()) for w in words
        ) if charset.lower() != "iso-2022-jp" else "=?ISO-2022-JP?B?%s?=" % base64.b64encode(raw).decode()
    # Q encoding
    out = []
    for byte in raw:
        c = chr(byte)
        if c == " ":
            out.append("_")
        elif byte < 128 and (c.isalnum() or c in "!*+-/"):
            out.append(c)
        else:
            out.append("=%02X" % byte)
    q = "".join(out)
    parts = []
    while len(q) > 60:
        cut = 60
        while q[cut - 1] == "=" or q[cut - 2] == "=":
            cut -= 1
        parts.append(q[:cut])
        q = q[cut:]
    parts.append(q)
    return "\r\n ".join("=?%s?Q?%s?=" % (charset, p) for p in parts)


def addr(name, address, charset="utf-8", mode="B", quote=False):
    if not name:
        return address
    if is_ascii(name):
        if quote or any(c in name for c in ',.;:@()<>"'):
            return '"%s" <%s>' % (name.replace('"', '\\"'), address)
        return "%s <%s>" % (name, address)
    return "%s <%s>" % (enc_words(name, charset, mode), address)


def fold(name, value):
    """Writes `Name: value`; long comma lists are folded after commas."""
    line = "%s: %s" % (name, value)
    if len(line) <= 78 or "\r\n" in value:
        return line
    if name.lower() in ("to", "cc", "references", "in-reply-to"):
        sep = " " if name.lower() in ("references", "in-reply-to") else ", "
        items = value.split(sep)
        lines, cur = [], "%s: %s" % (name, items[0])
        for it in items[1:]:
            nxt = cur + sep.rstrip() + " " + it if sep == ", " else cur + " " + it
            if len(nxt) > 78:
                lines.append(cur + (sep.rstrip() if sep == ", " else ""))
                cur = " " + it
            else:
                cur = nxt
        lines.append(cur)
        return "\r\n".join(lines)
    return line


def headers(pairs):
    return "\r\n".join(fold(n, v) for n, v in pairs) + "\r\n"


def encode_body(text, charset="utf-8", cte="7bit", newline="\n"):
    """Returns the encoded body bytes (with \n line ends) for a text part."""
    data = text.replace("\r\n", "\n")
    if cte == "base64":
        raw = data.replace("\n", "\r\n").encode(py_codec(charset))
        return base64.encodebytes(raw)
    raw = data.encode(py_codec(charset), errors="xmlcharrefreplace")
    if cte == "quoted-printable":
        return quopri.encodestring(raw, quotetabs=False)
    return raw


def text_part(text, subtype="plain", charset="utf-8", cte="7bit", params="", extra=()):
    ct = "text/%s; charset=%s%s" % (subtype, _q(charset), params)
    hs = [("Content-Type", ct)]
    hs += list(extra)
    if cte:
        hs.append(("Content-Transfer-Encoding", cte))
    return headers(hs).encode() + b"\r\n" + encode_body(text, charset, cte)


def _q(charset):
    return charset if charset.lower() == charset and '"' not in charset else charset


def raw_part(content_type, body, extra=(), cte=None):
    hs = [("Content-Type", content_type)] + list(extra)
    if cte:
        hs.append(("Content-Transfer-Encoding", cte))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return headers(hs).encode() + b"\r\n" + body


def multipart(subtype, parts, boundary, preamble=None, params="", extra=()):
    """A complete multipart entity (headers + body)."""
    hs = [("Content-Type", 'multipart/%s;%s boundary="%s"' % (subtype, params, boundary))]
    hs += list(extra)
    out = headers(hs).encode() + b"\r\n"
    if preamble:
        out += preamble.encode() + b"\r\n"
    for p in parts:
        out += b"\r\n--" + boundary.encode() + b"\r\n" + p.rstrip(b"\r\n") + b"\r\n"
    out += b"\r\n--" + boundary.encode() + b"--\r\n"
    return out


def message(head_pairs, entity, crlf=True):
    """Top-level message: header pairs then a body entity (bytes that start
    with its own Content-* headers). Normalises line ends to CRLF or LF."""
    out = headers(head_pairs).encode() + entity
    out = out.replace(b"\r\n", b"\n")
    if crlf:
        out = out.replace(b"\n", b"\r\n")
    return out


def boundary(seed, style="generic"):
    h = hashlib.sha1(seed.encode()).hexdigest()
    if style == "gmail":
        return "000000000000" + h[:16]
    if style == "outlook":
        return "_000_%s_" % (h[:30].upper())
    if style == "apple":
        return "Apple-Mail-%s-%s-%s-%s-%s" % (h[:8].upper(), h[8:12].upper(), h[12:16].upper(), h[16:20].upper(), h[20:32].upper())
    if style == "thunderbird":
        return "------------%s" % h[:24]
    if style == "yahoo":
        return "----=_Part_%d_%d.%d" % (int(h[:6], 16), int(h[6:15], 16), int(h[15:28], 16))
    if style == "postfix":
        return "%s.%d/mail.example.net" % (h[:12].upper(), 1709630000 + int(h[:4], 16))
    return "=_%s" % h[:28]


def msgid(seed, domain):
    h = hashlib.sha1(seed.encode()).hexdigest()
    return "<%s@%s>" % (h[:24], domain)
