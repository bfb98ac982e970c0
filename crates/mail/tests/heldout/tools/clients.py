"""Per-client header conventions (Message-ID shape, X-Mailer/User-Agent,
reply subject prefix) and the quoting helpers shared by the reply families."""

import hashlib
import uuid

from mime import addr, enc_words


def h(seed, n=32):
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def q(text, prefix="> ", empty=">"):
    """Quotes every line, the way most clients do (empty lines get `empty`)."""
    return "\n".join(prefix + l if l.strip() else empty for l in text.split("\n"))


def expand(body, e):
    orig = e["orig"]
    repl = {
        "{NEW}": e["new"],
        "{Q}": q(orig, "> ", ">"),
        "{QS}": q(orig, "> ", "> "),
        "{Q1}": q(orig, ">", ">"),
        "{O}": orig,
        "{OY}": "\n".join(" " + l for l in orig.split("\n")),
        "{OQ}": q(orig, "> ", "> "),
        # iOS Mail: the quoted text starts with a byte-order mark
        "{OQB}": q("\ufeff" + orig, "> ", "> "),
    }
    for k, v in repl.items():
        body = body.replace(k, v)
    return body


def message_id(client, seed, domain):
    x = h(seed)
    u = str(uuid.UUID(x))
    if client == "gmail":
        return "<CA%s+%s=%s@mail.gmail.example>" % (x[:10].upper(), x[10:22], x[22:30].upper())
    if client.startswith("outlook"):
        return "<AM9PR04MB%s%s@AM9PR04MB%s.eurprd04.prod.outlook.example>" % (
            x[:4].upper(), x[4:18].upper(), x[:4].upper())
    if client == "apple":
        return "<%s@%s>" % (u.upper(), domain)
    if client == "yahoo":
        return "<%d.%d.%d@mail.yahoo.example>" % (int(x[:7], 16), int(x[7:13], 16), 1709630000000 + int(x[13:17], 16))
    if client == "yandex":
        return "<%d1709630%d@mail.yandex.example>" % (int(x[:5], 16), int(x[5:9], 16))
    if client == "mailru":
        return "<1709630%d.%d@f%d.i.mail.example>" % (int(x[:3], 16), int(x[3:9], 16), int(x[9:11], 16))
    if client == "zoho":
        return "<18e0%s.%s.%d@zohomail.example>" % (x[:7], x[7:19], int(x[19:30], 16))
    if client == "proton":
        return "<%s=@proton.example>" % (x[:43].replace("a", "Q").replace("f", "_"))
    if client == "gmx":
        return "<trinity-%s-%d@3c-app-gmx-bap%02d>" % (u, 1709630000000 + int(x[:4], 16), int(x[4:6], 16) % 60)
    if client == "fastmail":
        return "<%s@app.fastmail.example>" % u
    if client in ("k9", "samsung"):
        return "<%s@email.android.example>" % x[:26]
    if client == "notes":
        return "<OF%s.%s-ONC1258A%s.%s-C1258A%s.%s@%s>" % (
            x[:8].upper(), x[8:16].upper(), x[16:18].upper(), x[18:26].upper(), x[26:28].upper(), x[28:32].upper() * 2, domain)
    if client == "horde":
        return "<20240305101233.Horde.%s@webmail.%s>" % (x[:22], domain)
    if client == "mutt":
        return "<Zec%s@%s>" % (x[:13], domain)
    return "<%s@%s>" % (u, domain)


AGENTS = {
    "gmail": [],
    "outlook": [("X-MS-Has-Attach", ""), ("X-MS-TNEF-Correlator", ""), ("x-ms-exchange-organization-authas", "Internal")],
    "outlook-desktop": [("X-Mailer", "Microsoft Outlook 16.0")],
    "outlook-web": [("X-MS-Has-Attach", ""), ("msip_labels", "")],
    "outlook-mobile": [("X-MS-Has-Attach", "")],
    "apple": [("X-Mailer", "Apple Mail (2.3774.400.31)")],
    "ios": [("X-Mailer", "iPhone Mail (21D61)")],
    "ipad": [("X-Mailer", "iPad Mail (21D61)")],
    "thunderbird": [("User-Agent", "Mozilla Thunderbird")],
    "yahoo": [("X-Mailer", "WebService/1.1.22077 YMailNorrin")],
    "yahoo-android": [("X-Mailer", "WebService/1.1.22077 YahooMailAndroidMobile")],
    "yandex": [("X-Mailer", "Yamail [ http://yandex.example ] 5.0")],
    "mailru": [("X-Mailer", "Mail.Ru Mailer 1.0"), ("X-Originating-IP", "[203.0.113.54]")],
    "zoho": [("User-Agent", "Zoho Mail"), ("X-Mailer", "Zoho Mail")],
    "proton": [("X-Pm-Origin", "internal"), ("X-Pm-Content-Encryption", "end-to-end")],
    "gmx": [("Importance", "normal"), ("Sensitivity", "Normal"), ("X-Priority", "3"), ("X-UI-Message-Type", "mail")],
    "fastmail": [("User-Agent", "Cyrus-JMAP/3.11.0-alpha0-181-g6c8e8d7a0-fm-20240301.001-g6c8e8d7a")],
    "k9": [("User-Agent", "K-9 Mail for Android")],
    "fairemail": [],
    "mutt": [("User-Agent", "Mutt/2.2.12 (2023-09-09)"), ("Content-Disposition", "inline")],
    "samsung": [],
    "notes": [("X-Mailer", "Lotus Notes Release 8.5.3FP6 November 21, 2013"), ("X-MIMETrack", "Serialize by Router on MAIL01/ACME(Release 9.0.1FP10|January 22, 2018) at 05.03.2024 10:31:07")],
    "evolution": [("X-Mailer", "Evolution 3.50.2 (3.50.2-1.fc39)")],
    "roundcube": [("User-Agent", "Roundcube Webmail/1.6.6")],
    "horde": [("User-Agent", "Horde Application Framework 5")],
    "claws": [("X-Mailer", "Claws Mail 4.2.0 (GTK 3.24.41; x86_64-pc-linux-gnu)")],
    "wlm": [("X-Priority", "3"), ("X-MSMail-Priority", "Normal"), ("Importance", "Normal"), ("X-Mailer", "Microsoft Windows Live Mail 16.4.3528.331"), ("X-MimeOLE", "Produced By Microsoft MimeOLE V16.4.3528.331")],
    "blackberry": [],
    "spark": [("X-Readdle-Message-ID", "placeholder")],
    "kmail": [("User-Agent", "KMail/5.24.5 (Linux/6.7.7-arch1-1; KDE/5.115.0; x86_64; ; )")],
    "sogo": [("User-Agent", "SOGoMail 5.10.0")],
    "airmail": [("X-Mailer", "Airmail (650)")],
    "superhuman": [("X-Mailer", "Superhuman Desktop (2024-03-04T19:10:22Z)")],
}


def reply_headers(e, idx, date, content_headers_follow=True):
    """The top-level headers of a customer's reply to one of our emails."""
    cust_name, cust_email = e["cust"]
    us_name, us_email = e["us"]
    domain = cust_email.split("@")[1]
    seed = "%s-%d" % (e["client"], idx)
    our_id = "<%s@mail.%s>" % (h(seed + "ours", 20), us_email.split("@")[1])
    earlier = "<%s@%s>" % (h(seed + "first", 18), domain)
    cs = e.get("hcharset", "utf-8")
    mode = e.get("hmode", "B")
    subject = e["subject"]
    pairs = []
    if e.get("received", True):
        pairs.append(("Return-Path", "<%s>" % cust_email))
        pairs.append(("Received", "from mx.%s (mx.%s [198.51.100.%d])\r\n\tby mail.%s (Postfix) with ESMTPS id 4Tq%s\r\n\tfor <%s>; %s" % (
            domain, domain, 10 + idx % 200, us_email.split("@")[1], h(seed, 8).upper(), us_email, date)))
    ordering = e.get("order", "std")
    hs = {
        "From": addr(cust_name, cust_email, cs, mode),
        "To": addr(us_name, us_email, cs, mode),
        "Subject": enc_words(subject, cs, mode),
        "Date": date,
        "Message-ID": message_id(e["mid"] if "mid" in e else e["client"].split("-")[0], seed, domain),
        "In-Reply-To": our_id,
        "References": "%s %s" % (earlier, our_id),
        "MIME-Version": e.get("mimever", "1.0"),
    }
    if e.get("cc"):
        hs["Cc"] = e["cc"]
    order = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "MIME-Version"]
    if ordering == "ms":
        order = ["From", "To", "Cc", "Subject", "Thread-Topic", "Thread-Index", "Date", "Message-ID", "References", "In-Reply-To", "Accept-Language", "Content-Language", "MIME-Version"]
        topic = subject.split(":", 1)[-1].strip()
        hs["Thread-Topic"] = enc_words(topic, cs, mode)
        hs["Thread-Index"] = "AQHabv" + h(seed + "ti", 30)
        hs["Accept-Language"] = e.get("lang_tag", "en-US")
        hs["Content-Language"] = e.get("lang_tag", "en-US")
    for name in order:
        if name in hs:
            pairs.append((name, hs[name]))
    agent = e.get("agent", e["client"])
    for k, v in AGENTS.get(agent, []):
        if k == "X-Readdle-Message-ID":
            v = "%s@Spark" % h(seed + "rd", 24)
        pairs.append((k, v))
    return pairs
