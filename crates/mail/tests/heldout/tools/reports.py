"""Bounces and reports about emails we sent (from support@example.com),
written after each mail server's own format. build() returns
(name, raw bytes, gold record) in writing order.

Gold: is_bounce (delivery failed for good for at least one recipient),
kind (failed / delayed / delivered / receipt / feedback), failed_recipients
(the addresses whose delivery failed; empty unless is_bounce), and for delay
warnings delayed_recipients; status is the RFC 3463 code where the report
gives one."""

import base64

from mime import boundary, enc_words, headers, message, multipart, raw_part, text_part

OUR = "support@example.com"
OUR_HOST = "mail.example.com"


def orig(to, subject, mid, date="Tue, 5 Mar 2024 10:12:33 +0100", body=None, to_hdr=None, cc=None):
    body = body or "Hi,\n\nThanks for your message. We've looked into it and the issue is fixed.\n\nBest,\nTom\nAcme Support\n"
    hs = [("Return-Path", "<%s>" % OUR),
          ("Received", "from app.example.com (app.example.com [203.0.113.10])\n\tby %s (Postfix) with ESMTPSA id 4TqB2x0Y7Zz9\n\tfor <%s>; %s" % (OUR_HOST, to.split(",")[0].strip(), date)),
          ("From", "Acme Support <%s>" % OUR), ("To", to_hdr or to)]
    if cc:
        hs.append(("Cc", cc))
    hs += [("Subject", subject), ("Date", date), ("Message-ID", "<%s@%s>" % (mid, OUR_HOST)),
           ("In-Reply-To", "<CAF%s@mail.example.net>" % mid[:12]), ("MIME-Version", "1.0"),
           ("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "7bit")]
    return (headers(hs) + "\r\n" + body).replace("\r\n", "\n")


def orig_headers(to, subject, mid, date="Tue, 5 Mar 2024 10:12:33 +0100"):
    return orig(to, subject, mid, date).split("\n\n", 1)[0] + "\n"


def top(frm, subject, date, mid_host, extra=(), to=OUR, null_path=True, seed=""):
    hs = []
    if null_path:
        hs.append(("Return-Path", "<>"))
    hs += [("Received", "from %s (%s [192.0.2.%d])\n\tby mx.example.com (Postfix) with ESMTPS id 4TqC%s\n\tfor <%s>; %s"
                         % (mid_host, mid_host, 1 + sum(map(ord, seed)) % 250, seed[:6].upper() or "0A1B2C", to.strip("<>"), date)),
           ("Date", date), ("From", frm), ("To", to), ("Subject", subject),
           ("Message-ID", "<%s@%s>" % (("bounce" + seed) or "bounce", mid_host))]
    hs += list(extra)
    hs.append(("MIME-Version", "1.0"))
    return hs


def report(parts_seed, human, status, original, human_sub="plain", human_cs="us-ascii", human_cte="7bit",
           orig_type="message/rfc822", report_type="delivery-status", status_type="message/delivery-status",
           human_parts=None, bstyle="generic"):
    parts = human_parts or [text_part(human, human_sub, human_cs, human_cte, extra=[("Content-Description", "Notification")])]
    parts.append(raw_part(status_type, status, [("Content-Description", "Delivery report")]))
    if original is not None:
        parts.append(raw_part(orig_type, original, [("Content-Description", "Undelivered Message" if orig_type == "message/rfc822" else "Undelivered Message Headers")]))
    return multipart("report", parts, boundary(parts_seed, bstyle), params=" report-type=%s;" % report_type)


def rec(kind, failed=(), status=None, delayed=(), server="", note=None):
    r = dict(server=server, is_bounce=kind == "failed", kind=kind, failed_recipients=list(failed))
    if delayed:
        r["delayed_recipients"] = list(delayed)
    if status:
        r["status"] = status
    if note:
        r["note"] = note
    return r


def postfix_human(host, rcpt_lines, delayed=False, hours=None):
    if delayed:
        return ("This is the mail system at host %s.\n\n####################################################################\n"
                "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n####################################################################\n\n"
                "Your message could not be delivered for more than %d hour(s).\nIt will be retried until it is 5 day(s) old.\n\n"
                "For further assistance, please send mail to postmaster.\n\nIf you do so, please include this problem report. You can\n"
                "delete your own text from the attached returned message.\n\n                   The mail system\n\n%s\n" % (host, hours or 4, rcpt_lines))
    return ("This is the mail system at host %s.\n\nI'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients. It's attached below.\n\nFor further assistance, please send mail to postmaster.\n\n"
            "If you do so, please include this problem report. You can\ndelete your own text from the attached returned message.\n\n"
            "                   The mail system\n\n%s\n" % (host, rcpt_lines))


def postfix_status(host, qid, arrival, blocks):
    return ("Reporting-MTA: dns; %s\nX-Postfix-Queue-ID: %s\nX-Postfix-Sender: rfc822; %s\nArrival-Date: %s\n\n" % (host, qid, OUR, arrival)
            + "\n".join(blocks))


def block(rcpt, action, status, diag=None, remote=None, orig_rcpt=True, extra=""):
    s = "Final-Recipient: rfc822; %s\n" % rcpt
    if orig_rcpt:
        s += "Original-Recipient: rfc822;%s\n" % rcpt
    s += "Action: %s\nStatus: %s\n" % (action, status)
    if remote:
        s += "Remote-MTA: dns; %s\n" % remote
    if diag:
        s += "Diagnostic-Code: %s\n" % diag
    return s + extra


def build():
    out = []

    def add(name, head, entity, gold):
        if not entity.startswith((b"Content-Type", b"\r\n", b"\n")):
            entity = b"\r\n" + entity  # a single-part body after the top headers
        out.append((name, message(head, entity, True), gold))

    D = "Tue, 5 Mar 2024 10:12:40 +0100 (CET)"

    # 1 Postfix, user unknown
    o = orig("lisa.moss@example.org", "Re: Your refund", "r1a2b3c4")
    add("postfix-user-unknown",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Undelivered Mail Returned to Sender", D, OUR_HOST,
            [("Auto-Submitted", "auto-replied")], seed="p1"),
        report("p1", postfix_human(OUR_HOST, "<lisa.moss@example.org>: host mx.example.org[192.0.2.25] said: 550 5.1.1\n    <lisa.moss@example.org>: Recipient address rejected: User unknown in\n    virtual mailbox table (in reply to RCPT TO command)"),
               postfix_status(OUR_HOST, "4TqB2x0Y7Zz9", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("lisa.moss@example.org", "failed", "5.1.1", "smtp; 550 5.1.1 <lisa.moss@example.org>: Recipient address\n    rejected: User unknown in virtual mailbox table", "mx.example.org")]), o, bstyle="postfix"),
        rec("failed", ["lisa.moss@example.org"], "5.1.1", server="postfix"))

    # 2 Postfix, mailbox full, headers only
    o = orig_headers("omar.haddad@example.net", "Re: Login problem", "r2b3c4d5")
    add("postfix-mailbox-full",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Undelivered Mail Returned to Sender", D, OUR_HOST,
            [("Auto-Submitted", "auto-replied")], seed="p2"),
        report("p2", postfix_human(OUR_HOST, "<omar.haddad@example.net>: host mx1.example.net[198.51.100.7] said: 552 5.2.2\n    Mailbox full (in reply to end of DATA command)"),
               postfix_status(OUR_HOST, "4TqB3y1Z8Ab0", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("omar.haddad@example.net", "failed", "5.2.2", "smtp; 552 5.2.2 Mailbox full", "mx1.example.net")]),
               o, orig_type="text/rfc822-headers", bstyle="postfix"),
        rec("failed", ["omar.haddad@example.net"], "5.2.2", server="postfix"))

    # 3 Postfix, delayed (warning only)
    o = orig_headers("kim.nguyen@example.org", "Re: Password reset", "r3c4d5e6")
    add("postfix-delayed",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Delayed Mail (still being retried)", "Tue, 5 Mar 2024 14:13:02 +0100 (CET)", OUR_HOST,
            [("Auto-Submitted", "auto-replied")], seed="p3"),
        report("p3", postfix_human(OUR_HOST, "<kim.nguyen@example.org>: connect to mx.example.org[192.0.2.30]:25: Connection\n    timed out", True, 4),
               postfix_status(OUR_HOST, "4TqB4z2A9Bc1", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("kim.nguyen@example.org", "delayed", "4.4.1", "X-Postfix; connect to mx.example.org[192.0.2.30]:25:\n    Connection timed out", extra="Will-Retry-Until: Sun, 10 Mar 2024 10:12:33 +0100 (CET)\n")]),
               o, orig_type="text/rfc822-headers", bstyle="postfix"),
        rec("delayed", delayed=["kim.nguyen@example.org"], status="4.4.1", server="postfix"))

    # 4 Sendmail, user unknown
    o = orig("b.okafor@example.net", "Re: Delivery address", "r4d5e6f7")
    add("sendmail-user-unknown",
        top("Mail Delivery Subsystem <MAILER-DAEMON@relay.example.com>", "Returned mail: see transcript for details", "Tue, 5 Mar 2024 10:12:41 +0100", "relay.example.com",
            [("Auto-Submitted", "auto-generated (failure)")], seed="s4"),
        report("s4", "The original message was received at Tue, 5 Mar 2024 10:12:35 +0100\nfrom app.example.com [203.0.113.10]\n\n"
                     "   ----- The following addresses had permanent fatal errors -----\n<b.okafor@example.net>\n"
                     "    (reason: 550 5.1.1 <b.okafor@example.net>... User unknown)\n\n   ----- Transcript of session follows -----\n"
                     "... while talking to mx.example.net.:\n>>> DATA\n<<< 550 5.1.1 <b.okafor@example.net>... User unknown\n550 5.1.1 <b.okafor@example.net>... User unknown\n<<< 503 5.0.0 Need RCPT (recipient)\n",
               "Reporting-MTA: dns; relay.example.com\nReceived-From-MTA: DNS; app.example.com\nArrival-Date: Tue, 5 Mar 2024 10:12:35 +0100\n\n"
               "Final-Recipient: RFC822; b.okafor@example.net\nAction: failed\nStatus: 5.1.1\nRemote-MTA: DNS; mx.example.net\n"
               "Diagnostic-Code: SMTP; 550 5.1.1 <b.okafor@example.net>... User unknown\nLast-Attempt-Date: Tue, 5 Mar 2024 10:12:41 +0100\n", o),
        rec("failed", ["b.okafor@example.net"], "5.1.1", server="sendmail"))

    # 5 Exim, X-Failed-Recipients, plain text
    o = orig("hans.vogel@de.example", "Re: Rechnung 2024-118", "r5e6f7a8")
    add("exim-failed",
        top("Mail Delivery System <Mailer-Daemon@mx.example.com>", "Mail delivery failed: returning message to sender", "Tue, 05 Mar 2024 10:12:44 +0100", "mx.example.com",
            [("X-Failed-Recipients", "hans.vogel@de.example"), ("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=us-ascii")], seed="e5"),
        ("\nThis message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n"
         "recipients. This is a permanent error. The following address(es) failed:\n\n  hans.vogel@de.example\n    host mx.de.example [192.0.2.41]\n"
         "    SMTP error from remote mail server after RCPT TO:<hans.vogel@de.example>:\n    550 5.1.1 <hans.vogel@de.example>: Recipient address rejected: User unknown\n\n"
         "------ This is a copy of the message, including all the headers. ------\n\n" + o).encode(),
        rec("failed", ["hans.vogel@de.example"], "5.1.1", server="exim"))

    # 6 Exim, delay warning
    o = orig_headers("rosa.mendez@mx.example", "Re: Factura", "r6f7a8b9")
    add("exim-delayed",
        top("Mail Delivery System <Mailer-Daemon@mx.example.com>", "Warning: message 1rhXyZ-000AbC-De delayed 24 hours", "Wed, 06 Mar 2024 10:13:00 +0100", "mx.example.com",
            [("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=us-ascii")], seed="e6"),
        ("This message was created automatically by mail delivery software.\nA message that you sent has not yet been delivered to one or more of its\n"
         "recipients after more than 24 hours on the queue on mx.example.com.\n\nThe message identifier is:     1rhXyZ-000AbC-De\n"
         "The subject of the message is: Re: Factura\nThe date of the message is:    Tue, 5 Mar 2024 10:12:33 +0100\n\n"
         "The address to which the message has not yet been delivered is:\n\n  rosa.mendez@mx.example\n    host mx.mx.example [192.0.2.52]\n"
         "    Delay reason: SMTP error from remote mail server after RCPT TO:<rosa.mendez@mx.example>:\n    451 4.7.1 Greylisting in action, please come back later\n\n"
         "No action is required on your part. Delivery attempts will continue for\nsome time, and this warning may be repeated at intervals if the message\n"
         "remains undelivered. Eventually the mail delivery software will give up,\nand when that happens, the message will be returned to you.\n").encode(),
        rec("delayed", delayed=["rosa.mendez@mx.example"], status="4.7.1", server="exim"))

    # 7 qmail, remote user unknown
    o = orig("tony.russo@it.example", "Re: Ordine 5521", "r7a8b9c0")
    add("qmail-remote",
        top("MAILER-DAEMON@mail.example.com", "failure notice", "5 Mar 2024 09:12:45 -0000", OUR_HOST, [], seed="q7"),
        ("Hi. This is the qmail-send program at mail.example.com.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n"
         "This is a permanent error; I've given up. Sorry it didn't work out.\n\n<tony.russo@it.example>:\n192.0.2.61 does not like recipient.\n"
         "Remote host said: 550 5.1.1 <tony.russo@it.example>: Recipient address rejected: User unknown in local recipient table\nGiving up on 192.0.2.61.\n\n"
         "--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["tony.russo@it.example"], "5.1.1", server="qmail"))

    # 8 qmail, local "no mailbox here" (vpopmail)
    o = orig("info@shop.example.net", "Re: Wholesale prices", "r8b9c0d1")
    add("qmail-no-mailbox",
        top("MAILER-DAEMON@shop.example.net", "failure notice", "5 Mar 2024 09:12:50 -0000", "shop.example.net", [], seed="q8"),
        ("Hi. This is the qmail-send program at shop.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n"
         "This is a permanent error; I've given up. Sorry it didn't work out.\n\n<info@shop.example.net>:\nSorry, no mailbox here by that name. vpopmail (#5.1.1)\n\n"
         "--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["info@shop.example.net"], "5.1.1", server="qmail"))

    # 9 Office 365, recipient not found, DSN with HTML human part
    o = orig("j.kowalski@fabrikam.example", "Re: API key rotation", "r9c0d1e2")
    human_txt = ("Your message to j.kowalski@fabrikam.example couldn't be delivered.\n\nj.kowalski wasn't found at fabrikam.example.\n\n"
                 "support      Office 365      j.kowalski\nAction Required                 Recipient\n\nUnknown To address\n\n"
                 "How to Fix It\nThe address may be misspelled or may not exist. Try one or more of the following:\n\n"
                 "  *   Send the message again following these steps: In Outlook, open this non-delivery report (NDR) and choose Send Again from the Report ribbon.\n\n"
                 "More Info for Email Admins\nStatus code: 550 5.1.10\n\nThis error occurs because the sender sent a message to an email address hosted by Office 365 but the address is incorrect or doesn't exist at the destination domain.\n\n"
                 "Original Message Details\nCreated Date:    3/5/2024 9:12:33 AM\nSender Address:  support@example.com\nRecipient Address:       j.kowalski@fabrikam.example\nSubject: Re: API key rotation\n\n"
                 "Error Details\nReported error:  550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient j.kowalski@fabrikam.example not found by SMTP address lookup\n"
                 "DSN generated by:        AM9PR04MB7475.eurprd04.prod.outlook.example\n")
    human_html = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=us-ascii\"></head><body><p><b><font color=\"#000066\" size=\"3\" face=\"Segoe UI\">"
                  "Your message to <a href=\"mailto:j.kowalski@fabrikam.example\">j.kowalski@fabrikam.example</a> couldn't be delivered.</font></b></p>"
                  "<p>j.kowalski wasn't found at fabrikam.example.</p><p>Status code: 550 5.1.10</p></body></html>")
    b = boundary("o9alt", "outlook")
    alt = multipart("alternative", [text_part(human_txt, "plain", "us-ascii", "quoted-printable"), text_part(human_html, "html", "us-ascii", "quoted-printable")], b)
    add("office365-not-found",
        top("Microsoft Outlook <postmaster@outbound.example.com>", "Undeliverable: Re: API key rotation", "Tue, 5 Mar 2024 09:12:40 +0000", "AM9PR04MB7475.eurprd04.prod.outlook.example",
            [("Content-Language", "en-US"), ("X-MS-Exchange-Message-Is-Ndr", ""), ("Auto-Submitted", "auto-replied")], seed="o9", to="<support@example.com>"),
        report("o9", None, "Reporting-MTA: dns;AM9PR04MB7475.eurprd04.prod.outlook.example\nReceived-From-MTA: dns;app.example.com\n"
               "Arrival-Date: Tue, 5 Mar 2024 09:12:35 +0000\n\nFinal-Recipient: rfc822;j.kowalski@fabrikam.example\nAction: failed\nStatus: 5.1.10\n"
               "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient j.kowalski@fabrikam.example not found by SMTP address lookup\n",
               o, human_parts=[alt], bstyle="outlook"),
        rec("failed", ["j.kowalski@fabrikam.example"], "5.1.10", server="office365"))

    # 10 Exchange, delayed
    o = orig_headers("m.ivanova@bg.example", "Re: Contract renewal", "r10d1e2f3")
    add("exchange-delayed",
        top("Microsoft Outlook <postmaster@example.com>", "Delivery delayed:Re: Contract renewal", "Tue, 5 Mar 2024 18:12:40 +0000", "EX01.corp.example.com",
            [("Content-Language", "en-US"), ("Auto-Submitted", "auto-replied")], seed="x10"),
        report("x10", "Delivery is delayed to these recipients or groups:\n\nm.ivanova@bg.example (m.ivanova@bg.example)<mailto:m.ivanova@bg.example>\n\n"
                      "Subject: Re: Contract renewal\n\nThis message hasn't been delivered yet. Delivery will continue to be attempted.\n\n"
                      "The server will keep trying to deliver this message for the next 1 days, 19 hours and 54 minutes. You'll be notified if the message can't be delivered by that time.\n\n"
                      "Diagnostic information for administrators:\n\nGenerating server: EX01.corp.example.com\nReceiving server: mx.bg.example (192.0.2.77)\n\n"
                      "m.ivanova@bg.example\nRemote Server at mx.bg.example (192.0.2.77) returned '400 4.4.7 Message delayed'\n3/5/2024 6:07:34 PM - Remote Server at mx.bg.example (192.0.2.77) returned '441 4.4.1 Error communicating with target host.'\n",
               "Reporting-MTA: dns;EX01.corp.example.com\nReceived-From-MTA: dns;app.example.com\nArrival-Date: Tue, 5 Mar 2024 10:12:35 +0000\n\n"
               "Final-Recipient: rfc822;m.ivanova@bg.example\nAction: delayed\nStatus: 4.4.7\nWill-Retry-Until: Thu, 7 Mar 2024 10:12:35 +0000\nX-Display-Name: m.ivanova@bg.example\n",
               o, orig_type="text/rfc822-headers", bstyle="outlook"),
        rec("delayed", delayed=["m.ivanova@bg.example"], status="4.4.7", server="exchange"))

    # 11 Exchange 2010, NDR with DSN
    o = orig("reception@hotel.at.example", "Re: Booking 3312", "r11e2f3a4")
    add("exchange2010-failed",
        top("Microsoft Exchange <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@hotel.at.example>", "Undeliverable: Re: Booking 3312", "Tue, 5 Mar 2024 10:13:02 +0100", "EXCH01.hotel.at.example",
            [("Content-Language", "en-US"), ("X-MS-Exchange-Organization-SCL", "-1")], seed="x11", null_path=False),
        report("x11", "Delivery has failed to these recipients or groups:\n\nreception@hotel.at.example\n"
                      "The e-mail address you entered couldn't be found. Please check the recipient's e-mail address and try to resend the message. If the problem continues, please contact your helpdesk.\n\n\n\n\n\n"
                      "Diagnostic information for administrators:\n\nGenerating server: EXCH01.hotel.at.example\n\nreception@hotel.at.example\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n\n"
                      "Original message headers:\n\nReceived: from mail.example.com (203.0.113.20) by EXCH01.hotel.at.example\n (10.0.0.5) with Microsoft SMTP Server id 14.3.498.0; Tue, 5 Mar 2024 10:13:01 +0100\n",
               "Reporting-MTA: dns;EXCH01.hotel.at.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:13:01 +0000\n\n"
               "Final-Recipient: rfc822;reception@hotel.at.example\nAction: failed\nStatus: 5.1.1\nX-Display-Name: reception@hotel.at.example\n",
               o, bstyle="outlook"),
        rec("failed", ["reception@hotel.at.example"], "5.1.1", server="exchange"))

    # 12 Exchange 2003 style, plain text only (report stripped by a relay)
    o = orig("d.fischer@ch.example", "Re: Quote 2024-77", "r12f3a4b5")
    add("exchange2003-plain",
        top("System Administrator <postmaster@ch.example>", "Undeliverable: Re: Quote 2024-77", "Tue, 5 Mar 2024 10:14:00 +0100", "mail.ch.example",
            [("Content-Type", "multipart/mixed; boundary=\"----_=_NextPart_001_01DA6F00.3C4D5E6F\"")], seed="x12", null_path=False)[:-1]
        + [("MIME-Version", "1.0")],
        (b"\r\nThis message is in MIME format. Since your mail reader does not understand\r\nthis format, some or all of this message may not be legible.\r\n\r\n"
         b"------_=_NextPart_001_01DA6F00.3C4D5E6F\r\nContent-Type: text/plain;\r\n\tcharset=\"iso-8859-1\"\r\n\r\n"
         b"Your message did not reach some or all of the intended recipients.\r\n\r\n      Subject:\tRe: Quote 2024-77\r\n      Sent:\t05.03.2024 10:12\r\n\r\n"
         b"The following recipient(s) could not be reached:\r\n\r\n      d.fischer@ch.example on 05.03.2024 10:14\r\n"
         b"            The e-mail account does not exist at the organization this message was sent to.  Check the e-mail address, or contact the recipient directly to find out the correct address.\r\n"
         b"            <mail.ch.example #5.1.1>\r\n\r\n------_=_NextPart_001_01DA6F00.3C4D5E6F\r\nContent-Type: message/rfc822\r\n\r\n" + o.encode()
         + b"\r\n------_=_NextPart_001_01DA6F00.3C4D5E6F--\r\n"),
        rec("failed", ["d.fischer@ch.example"], "5.1.1", server="exchange2003"))

    # 13 Exchange German NDR
    o = orig("k.bauer@de.example", "Re: Zugangsdaten", "r13a4b5c6")
    add("exchange-de-failed",
        top("Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@de.example>", "Unzustellbar: Re: Zugangsdaten", "Tue, 5 Mar 2024 10:13:10 +0100", "EX02.de.example",
            [("Content-Language", "de-DE"), ("Auto-Submitted", "auto-replied")], seed="x13", null_path=False),
        report("x13", "Fehler bei der Zustellung an folgende Empfänger oder Gruppen:\n\nk.bauer@de.example\nDas Postfach des Empfängers ist voll und kann derzeit keine Nachrichten annehmen. Versuchen Sie später erneut, die Nachricht zu senden, oder wenden Sie sich direkt an den Empfänger.\n\n"
                      "Diagnoseinformationen für Administratoren:\n\nGenerierender Server: EX02.de.example\n\nk.bauer@de.example\nRemote Server returned '554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded'\n",
               "Reporting-MTA: dns;EX02.de.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:13:05 +0000\n\n"
               "Final-Recipient: rfc822;k.bauer@de.example\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded\n",
               o, human_cs="utf-8", human_cte="quoted-printable", bstyle="outlook"),
        rec("failed", ["k.bauer@de.example"], "5.2.2", server="exchange"))

    # 14 Domino, DSN
    o = orig("Peter.Huber@at.example", "Re: Lizenzverlängerung", "r14b5c6d7")
    add("domino-dsn",
        top("Postmaster@at.example", "DELIVERY FAILURE: User Peter Huber (Peter.Huber@at.example) not listed in Domino Directory", "Tue, 5 Mar 2024 10:13:20 +0100", "notes01.at.example",
            [("X-MIMETrack", "Itemize by SMTP Server on NOTES01/EXAMPLE(Release 9.0.1FP10|January 22, 2018) at 05.03.2024 10:13:20")], seed="d14", null_path=False),
        report("d14", "Your message\n\n  Subject: Re: Lizenzverlängerung\n\nwas not delivered to:\n\n  Peter.Huber@at.example\n\nbecause:\n\n  User Peter Huber (Peter.Huber@at.example) not listed in Domino Directory\n",
               "Reporting-MTA: dns;notes01.at.example\nArrival-Date: Tue, 5 Mar 2024 10:13:19 +0100\n\nFinal-Recipient: rfc822;Peter.Huber@at.example\nAction: failed\nStatus: 5.0.0\n"
               "Diagnostic-Code: X-Notes; User Peter Huber (Peter.Huber@at.example) not listed in Domino Directory\n",
               o, human_cs="ISO-8859-1", human_cte="quoted-printable"),
        rec("failed", ["Peter.Huber@at.example"], "5.0.0", server="domino"))

    # 15 GroupWise, non-standard
    o = orig("a.schulte@gw.example.org", "Re: Ticket 8812", "r15c6d7e8")
    add("groupwise",
        top("postmaster@gw.example.org", "Message status - undeliverable", "Tue, 05 Mar 2024 10:13:30 +0100", "gw.example.org",
            [("X-Mailer", "Novell GroupWise Internet Agent 18.4.1"), ("Content-Type", "multipart/mixed; boundary=\"=__Part8D5C2A1B.0__=\"")], seed="g15", null_path=False)[:-1]
        + [("MIME-Version", "1.0")],
        (b"\r\nThis is a MIME message. If you are reading this text, you may want to \r\nconsider changing to a mail reader or gateway that understands how to \r\nproperly handle MIME multipart messages.\r\n\r\n"
         b"--=__Part8D5C2A1B.0__=\r\nContent-Type: text/plain; charset=US-ASCII\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
         b"The message that you sent was undeliverable to the following:\r\n\ta.schulte (user not found)\r\n\r\nPossibly truncated original message follows:\r\n\r\n"
         b"--=__Part8D5C2A1B.0__=\r\nContent-Type: message/rfc822\r\n\r\n" + o.encode() + b"\r\n--=__Part8D5C2A1B.0__=--\r\n"),
        rec("failed", ["a.schulte@gw.example.org"], None, server="groupwise",
            note="the notice names the user without the domain; the address is the returned message's To"))

    # 16 CommuniGate Pro, non-standard
    o = orig("olga.petrenko@ua.example", "Re: Доступ до звітів", "r16d7e8f9")
    add("communigate",
        top("MAILER-DAEMON@mail.ua.example", "Undeliverable mail: Failed to deliver to '<olga.petrenko@ua.example>'", "Tue, 05 Mar 2024 11:13:40 +0200", "mail.ua.example",
            [("X-Mailer", "CommuniGate Pro SMTP 6.3.15"), ("Content-Type", "text/plain; charset=\"utf-8\"")], seed="c16"),
        ("Failed to deliver to '<olga.petrenko@ua.example>'\nLOCAL module(account olga.petrenko@ua.example) reports:\n account is full (disk quota exceeded)\n\n" + o).encode(),
        rec("failed", ["olga.petrenko@ua.example"], None, server="communigate"))

    # 17 Yahoo, failure notice
    o = orig("mike_t1985@yahoo.example", "Re: Warranty claim", "r17e8f9a0")
    add("yahoo-failure",
        top("MAILER-DAEMON@yahoo.example", "Failure Notice", "5 Mar 2024 09:13:50 +0000", "mta4012.mail.gq1.yahoo.example", [], seed="y17"),
        ("Sorry, we were unable to deliver your message to the following address.\n\n<mike_t1985@yahoo.example>:\n"
         "554: delivery error: dd This user doesn't have a yahoo.example account (mike_t1985@yahoo.example) [0] - mta4012.mail.gq1.yahoo.example\n\n"
         "--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["mike_t1985@yahoo.example"], None, server="yahoo"))

    # 18 Google, address not found, DSN
    o = orig("chen.li@sg.example", "Re: Shipping to Singapore", "r18f9a0b1")
    human = ("\n** Address not found **\n\nYour message wasn't delivered to chen.li@sg.example because the address couldn't be found, or is unable to receive mail.\n\n"
             "Learn more here: https://support.google.example/mail/?p=NoSuchUser\n\nThe response was:\n\n"
             "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.example/mail/?p=NoSuchUser 4si123456qkb.12 - gsmtp\n")
    html = ("<html><head><style>* { font-family:Roboto, \"Helvetica Neue\", Helvetica, Arial, sans-serif; }</style></head><body><table cellpadding=\"0\" cellspacing=\"0\" class=\"email-wrapper\" style=\"padding-top:32px;background-color:#ffffff;\"><tbody><tr><td>"
            "<h1 style=\"font-size:24px;\">Address not found</h1><p>Your message wasn't delivered to <a style='color:#212121;text-decoration:none'><b>chen.li@sg.example</b></a> because the address couldn't be found, or is unable to receive mail.</p>"
            "<p>The response from the remote server was:</p><p>550 5.1.1 The email account that you tried to reach does not exist.</p></td></tr></tbody></table></body></html>")
    alt = multipart("alternative", [text_part(human, "plain", "UTF-8", "quoted-printable"), text_part(html, "html", "UTF-8", "quoted-printable")], boundary("g18alt", "gmail"))
    add("google-not-found",
        top("Mail Delivery Subsystem <mailer-daemon@googlemail.example>", "Delivery Status Notification (Failure)", "Tue, 05 Mar 2024 01:13:55 -0800 (PST)", "mx.google.example",
            [("Auto-Submitted", "auto-replied")], seed="g18"),
        report("g18", None, "Reporting-MTA: dns; googlemail.example\nArrival-Date: Tue, 05 Mar 2024 01:13:54 -0800 (PST)\nX-Original-Message-ID: <r18f9a0b1@mail.example.com>\n\n"
               "Final-Recipient: rfc822; chen.li@sg.example\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.sg.example. (192.0.2.90, the server for the domain sg.example.)\n"
               "Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist.\nLast-Attempt-Date: Tue, 05 Mar 2024 01:13:55 -0800 (PST)\n",
               o, human_parts=[alt], bstyle="gmail"),
        rec("failed", ["chen.li@sg.example"], "5.1.1", server="google"))

    # 19 Google, delayed
    o = orig("f.rahman@bd.example", "Re: Payment link", "r19a0b1c2")
    human = ("\n** Delivery incomplete **\n\nThere was a temporary problem delivering your message to f.rahman@bd.example. Gmail will retry for 46 more hours. You'll be notified if the delivery fails permanently.\n\n"
             "Learn more here: https://support.google.example/mail/answer/7720\n\nThe response was:\n\nThe recipient server did not accept our requests to connect. [mx.bd.example. 192.0.2.91: timed out]\n")
    add("google-delayed",
        top("Mail Delivery Subsystem <mailer-daemon@googlemail.example>", "Delivery Status Notification (Delay)", "Tue, 05 Mar 2024 04:14:00 -0800 (PST)", "mx.google.example",
            [("Auto-Submitted", "auto-replied")], seed="g19"),
        report("g19", human, "Reporting-MTA: dns; googlemail.example\nArrival-Date: Tue, 05 Mar 2024 01:12:35 -0800 (PST)\nX-Original-Message-ID: <r19a0b1c2@mail.example.com>\n\n"
               "Final-Recipient: rfc822; f.rahman@bd.example\nAction: delayed\nStatus: 4.4.1\nDiagnostic-Code: smtp; The recipient server did not accept our requests to connect. [mx.bd.example. 192.0.2.91: timed out]\n"
               "Last-Attempt-Date: Tue, 05 Mar 2024 04:14:00 -0800 (PST)\nWill-Retry-Until: Thu, 07 Mar 2024 01:12:35 -0800 (PST)\n",
               orig_headers("f.rahman@bd.example", "Re: Payment link", "r19a0b1c2"), orig_type="text/rfc822-headers", human_cs="UTF-8", bstyle="gmail"),
        rec("delayed", delayed=["f.rahman@bd.example"], status="4.4.1", server="google"))

    # 20 MDaemon, permanent failure
    o = orig("sales@supplier.example.net", "Re: Purchase order 4410", "r20b1c2d3")
    add("mdaemon",
        top("MDaemon@mail.example.net", "Permanent Delivery Failure", "Tue, 05 Mar 2024 10:14:10 +0100", "mail.example.net",
            [("X-MDaemon-Deliver-To", "support@example.com"), ("X-Mailer", "MDaemon PRO v23.5.1"), ("Content-Type", "multipart/mixed; boundary=\"0D5A7B2C_MDaemon\"")], seed="m20")[:-1]
        + [("MIME-Version", "1.0")],
        (b"\r\n--0D5A7B2C_MDaemon\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
         b"The attached message had PERMANENT fatal delivery errors!\r\n\r\nAfter one or more unsuccessful delivery attempts the attached message has\r\n"
         b"been removed from the mail queue on this server.  The number and frequency\r\nof delivery attempts are determined by local configuration parameters.\r\n\r\n"
         b"YOUR MESSAGE WAS NOT DELIVERED TO ONE OR MORE RECIPIENTS!\r\n\r\n--- Session Transcript ---\r\n"
         b" Tue 2024-03-05 10:14:05.123: Parsing message <mail.example.net\\pd50000012345.msg>\r\n"
         b" Tue 2024-03-05 10:14:05.124: *  From: support@example.com\r\n Tue 2024-03-05 10:14:05.124: *  To: sales@supplier.example.net\r\n"
         b" Tue 2024-03-05 10:14:05.130: Attempting SMTP connection to [mx.supplier.example.net]\r\n"
         b" Tue 2024-03-05 10:14:05.412: --> RCPT To:<sales@supplier.example.net>\r\n"
         b" Tue 2024-03-05 10:14:05.530: <-- 550 5.1.1 <sales@supplier.example.net>: Recipient address rejected: User unknown in virtual alias table\r\n"
         b" Tue 2024-03-05 10:14:05.531: --> QUIT\r\n--- End Transcript ---\r\n\r\n"
         b"--0D5A7B2C_MDaemon\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + o.encode() + b"\r\n--0D5A7B2C_MDaemon--\r\n"),
        rec("failed", ["sales@supplier.example.net"], "5.1.1", server="mdaemon"))

    # 21 Mailman: post by non-member rejected
    o = orig("partners@lists.example.org", "Re: Q2 partner update", "r21c2d3e4")
    add("mailman-rejected",
        top("partners-owner@lists.example.org", "Your message to Partners was rejected", "Tue, 05 Mar 2024 10:14:20 +0100", "lists.example.org",
            [("X-List-Administrivia", "yes"), ("Precedence", "bulk"), ("X-Mailman-Version", "2.1.39"), ("Content-Type", "multipart/mixed; boundary=\"===============4170224386571542210==\"")], seed="l21", null_path=False)[:-1]
        + [("MIME-Version", "1.0")],
        (b"\r\n--===============4170224386571542210==\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
         b"Your message to the Partners mailing-list was rejected for the following\r\nreasons:\r\n\r\n"
         b"Non-members are not allowed to post messages to this list.\r\n\r\nThe original message as received by Mailman is attached.\r\n\r\n"
         b"--===============4170224386571542210==\r\nContent-Type: message/rfc822\r\nMIME-Version: 1.0\r\n\r\n" + o.encode() + b"\r\n--===============4170224386571542210==--\r\n"),
        rec("failed", ["partners@lists.example.org"], None, server="mailman",
            note="the list refused the message: its address is the failed one"))

    # 22 Outlook read receipt (RFC 3798)
    add("receipt-outlook",
        top("Laura Chen <laura.chen@example.com>", "Read: Re: Invoice 5561", "Tue, 5 Mar 2024 11:02:05 +0000", "EX03.example.com",
            [("Content-Language", "en-US")], seed="r22", null_path=False),
        multipart("report", [
            text_part("Your message\n\n  To: Laura Chen\n  Subject: Re: Invoice 5561\n  Sent: Tuesday, March 5, 2024 9:12:33 AM (UTC+00:00) Dublin, Edinburgh, Lisbon, London\n\nwas read on Tuesday, March 5, 2024 11:02:05 AM (UTC+00:00) Dublin, Edinburgh, Lisbon, London.\n", "plain", "us-ascii", "7bit"),
            raw_part("message/disposition-notification", "Reporting-UA: EX03.example.com; Microsoft Exchange Server 2016\nFinal-Recipient: rfc822;laura.chen@example.com\nOriginal-Message-ID: <r22d3e4f5@mail.example.com>\nDisposition: automatic-action/MDN-sent-automatically; displayed\n"),
        ], boundary("r22", "outlook"), params=" report-type=disposition-notification;"),
        rec("receipt", server="exchange"))

    # 23 ARF abuse report
    o = orig("complainer@example.net", "Acme newsletter, March", "r23e4f5a6")
    add("arf-abuse",
        top("Feedback Loop <fbl@isp.example>", "Email Feedback Report for IP 203.0.113.20", "Tue, 05 Mar 2024 12:00:00 +0000", "fbl.isp.example", [], seed="a23"),
        multipart("report", [
            text_part("This is an email abuse report for an email message received from IP 203.0.113.20 on Tue, 05 Mar 2024 09:12:35 +0000.\nFor more information about this format please see http://www.mipassoc.example/arf/.\n", "plain", "us-ascii", "7bit"),
            raw_part("message/feedback-report", "Feedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\nVersion: 1\nOriginal-Mail-From: <support@example.com>\nOriginal-Rcpt-To: <complainer@example.net>\nArrival-Date: Tue, 05 Mar 2024 09:12:35 +0000\nSource-IP: 203.0.113.20\nReported-Domain: example.com\n"),
            raw_part("message/rfc822", o, [("Content-Disposition", "inline")]),
        ], boundary("a23"), params=" report-type=feedback-report;"),
        rec("feedback", server="arf"))

    # 24 DSN nested in multipart/mixed by a security gateway (banner first)
    o = orig("ravi.kumar@in.example", "Re: Onboarding call", "r24f5a6b7")
    inner = report("n24", postfix_human("mx.gateway.example.com", "<ravi.kumar@in.example>: host mx.in.example[192.0.2.100] said: 550 5.1.1 No such\n    user - psmtp (in reply to RCPT TO command)"),
                   postfix_status("mx.gateway.example.com", "4TqD9Z0Ab1C2", "Tue,  5 Mar 2024 10:12:36 +0100 (CET)",
                                  [block("ravi.kumar@in.example", "failed", "5.1.1", "smtp; 550 5.1.1 No such user - psmtp", "mx.in.example")]), o, bstyle="postfix")
    banner = text_part("[External] This message was scanned by Gateway Mail Security. 0 threats found.\n", "plain", "us-ascii", "7bit")
    add("nested-mixed",
        top("MAILER-DAEMON@mx.gateway.example.com (Mail Delivery System)", "[External] Undelivered Mail Returned to Sender", D, "mx.gateway.example.com",
            [("Auto-Submitted", "auto-replied"), ("X-Gateway-Scanned", "yes")], seed="n24"),
        multipart("mixed", [banner, inner], boundary("n24mix")),
        rec("failed", ["ravi.kumar@in.example"], "5.1.1", server="postfix+gateway"))

    # 25 Postfix, two recipients failed (one To, one Cc)
    o = orig("anna.berg@se.example", "Re: Offert", "r25a6b7c8", cc="lars.berg@se.example")
    add("postfix-two-recipients",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Undelivered Mail Returned to Sender", D, OUR_HOST, [("Auto-Submitted", "auto-replied")], seed="p25"),
        report("p25", postfix_human(OUR_HOST, "<anna.berg@se.example>: host mx.se.example[192.0.2.110] said: 550 5.1.1\n    <anna.berg@se.example>: Recipient address rejected: User unknown (in reply to\n    RCPT TO command)\n\n"
                                    "<lars.berg@se.example>: host mx.se.example[192.0.2.110] said: 550 5.1.1\n    <lars.berg@se.example>: Recipient address rejected: User unknown (in reply to\n    RCPT TO command)"),
               postfix_status(OUR_HOST, "4TqE1A2B3C4D", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("anna.berg@se.example", "failed", "5.1.1", "smtp; 550 5.1.1 <anna.berg@se.example>: Recipient address\n    rejected: User unknown", "mx.se.example"),
                               block("lars.berg@se.example", "failed", "5.1.1", "smtp; 550 5.1.1 <lars.berg@se.example>: Recipient address\n    rejected: User unknown", "mx.se.example")]), o, bstyle="postfix"),
        rec("failed", ["anna.berg@se.example", "lars.berg@se.example"], "5.1.1", server="postfix"))

    # 26 Sendmail, delay warning
    o = orig_headers("w.tanaka@jp.example", "Re: 見積書", "r26b7c8d9")
    add("sendmail-delayed",
        top("Mail Delivery Subsystem <MAILER-DAEMON@relay.example.com>", "Warning: could not send message for past 4 hours", "Tue, 5 Mar 2024 14:12:50 +0100", "relay.example.com",
            [("Auto-Submitted", "auto-generated (warning-timeout)")], seed="s26"),
        report("s26", "    **********************************************\n    **      THIS IS A WARNING MESSAGE ONLY      **\n    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n    **********************************************\n\n"
                      "The original message was received at Tue, 5 Mar 2024 10:12:35 +0100\nfrom app.example.com [203.0.113.10]\n\n"
                      "   ----- Transcript of session follows -----\n<w.tanaka@jp.example>... Deferred: Connection timed out with mx.jp.example.\n"
                      "Warning: message still undelivered after 4 hours\nWill keep trying until message is 5 days old\n",
               "Reporting-MTA: dns; relay.example.com\nArrival-Date: Tue, 5 Mar 2024 10:12:35 +0100\n\nFinal-Recipient: RFC822; w.tanaka@jp.example\nAction: delayed\nStatus: 4.4.1\n"
               "Remote-MTA: DNS; mx.jp.example\nLast-Attempt-Date: Tue, 5 Mar 2024 14:12:50 +0100\nWill-Retry-Until: Sun, 10 Mar 2024 10:12:35 +0100\n",
               o, orig_type="text/rfc822-headers"),
        rec("delayed", delayed=["w.tanaka@jp.example"], status="4.4.1", server="sendmail"))

    # 27 Exim, two recipients, no X-Failed-Recipients (removed by a relay), retry time exceeded
    o = orig("info@bakery.uk.example", "Re: Catering order", "r27c8d9e0", cc="orders@bakery.uk.example")
    add("exim-two-no-header",
        top("Mail Delivery System <Mailer-Daemon@mx.example.com>", "Mail delivery failed: returning message to sender", "Thu, 07 Mar 2024 10:14:00 +0000", "mx.example.com",
            [("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=us-ascii")], seed="e27"),
        ("This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n"
         "recipients. This is a permanent error. The following address(es) failed:\n\n  info@bakery.uk.example\n    retry timeout exceeded\n"
         "  orders@bakery.uk.example\n    retry timeout exceeded\n\n------ This is a copy of the message, including all the headers. ------\n\n" + o).encode(),
        rec("failed", ["info@bakery.uk.example", "orders@bakery.uk.example"], None, server="exim"))

    # 28 Exim (German hoster), German and English notice
    o = orig("sabine.roth@de.example", "Re: Vertragsunterlagen", "r28d9e0f1")
    add("exim-de",
        top("Mail Delivery System <mailer-daemon@mout.de.example>", "Mail delivery failed: returning message to sender", "Tue, 05 Mar 2024 10:14:10 +0100", "mout.de.example",
            [("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")], seed="e28"),
        ("Diese Nachricht wurde automatisch vom Mail-System erstellt.\n\nEine Nachricht, die Sie gesendet haben, konnte nicht an einen oder mehrere\n"
         "Empfänger zugestellt werden. Dies ist ein permanenter Fehler. Folgende\nAdresse(n) schlugen fehl:\n\n  sabine.roth@de.example:\n"
         "    SMTP error from remote server for RCPT TO command, host: mx00.de.example (192.0.2.120) reason: 550 Requested action not taken: mailbox unavailable\n\n"
         "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of\n"
         "its recipients. This is a permanent error. The following address(es)\nfailed:\n\n  sabine.roth@de.example:\n"
         "    SMTP error from remote server for RCPT TO command, host: mx00.de.example (192.0.2.120) reason: 550 Requested action not taken: mailbox unavailable\n\n"
         "--- The header of the original message is following. ---\n\n" + orig_headers("sabine.roth@de.example", "Re: Vertragsunterlagen", "r28d9e0f1")).encode(),
        rec("failed", ["sabine.roth@de.example"], None, server="exim-de"))

    # 29 qmail (netqmail), over quota, remote
    o = orig("pedro.alves@br.example", "Re: Segunda via do boleto", "r29e0f1a2")
    add("qmail-quota",
        top("MAILER-DAEMON@mx.example.com", "failure notice", "5 Mar 2024 09:14:20 -0000", "mx.example.com", [], seed="q29"),
        ("Hi. This is the qmail-send program at mx.example.com.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n"
         "This is a permanent error; I've given up. Sorry it didn't work out.\n\n<pedro.alves@br.example>:\n192.0.2.130 failed after I sent the message.\n"
         "Remote host said: 552 5.2.2 <pedro.alves@br.example>: user is over quota\n\n--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["pedro.alves@br.example"], "5.2.2", server="qmail"))

    # 30 Office 365, sender not allowed (restricted group)
    o = orig("allstaff@northwind.example", "Re: Service maintenance window", "r30f1a2b3")
    human = ("Your message to allstaff@northwind.example couldn't be delivered.\n\nallstaff only accepts messages from people in its organization or on its allowed senders list, and you're not currently allowed to send to it.\n\n"
             "support      Office 365      allstaff\nAction Required                 Recipient\n\nNot authorized to send to recipient\n\n"
             "More Info for Email Admins\nStatus code: 550 5.7.133\n\nThis error occurs when the group is configured to reject messages from senders outside the organization.\n")
    add("office365-restricted",
        top("Microsoft Outlook <postmaster@northwind.example>", "Undeliverable: Re: Service maintenance window", "Tue, 5 Mar 2024 09:14:30 +0000", "DB8PR10MB3456.eurprd10.prod.outlook.example",
            [("Content-Language", "en-US"), ("X-MS-Exchange-Message-Is-Ndr", ""), ("Auto-Submitted", "auto-replied")], seed="o30", to="<support@example.com>"),
        report("o30", human, "Reporting-MTA: dns;DB8PR10MB3456.eurprd10.prod.outlook.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:14:28 +0000\n\n"
               "Final-Recipient: rfc822;allstaff@northwind.example\nAction: failed\nStatus: 5.7.133\n"
               "Diagnostic-Code: smtp;550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; Delivery restriction check failed because the sender was not authenticated when sending to this group\n",
               orig_headers("allstaff@northwind.example", "Re: Service maintenance window", "r30f1a2b3"), orig_type="text/rfc822-headers", human_cte="quoted-printable", bstyle="outlook"),
        rec("failed", ["allstaff@northwind.example"], "5.7.133", server="office365"))

    # 31 Exchange French NDR
    o = orig("c.leroy@fr.example", "Re: Facture 2024-031", "r31a2b3c4")
    add("exchange-fr",
        top("Microsoft Outlook <postmaster@fr.example>", "Non remis : Re: Facture 2024-031", "Tue, 5 Mar 2024 10:14:40 +0100", "EX04.fr.example",
            [("Content-Language", "fr-FR"), ("Auto-Submitted", "auto-replied")], seed="x31"),
        report("x31", "La remise aux destinataires ou groupes suivants a échoué :\n\nc.leroy@fr.example\nL'adresse de messagerie que vous avez entrée est introuvable. Vérifiez l'adresse de messagerie du destinataire et essayez de renvoyer le message. Si le problème persiste, contactez votre support technique.\n\n\n"
                      "Informations de diagnostic pour les administrateurs :\n\nServeur de génération : EX04.fr.example\n\nc.leroy@fr.example\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n",
               "Reporting-MTA: dns;EX04.fr.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:14:38 +0000\n\n"
               "Final-Recipient: rfc822;c.leroy@fr.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\n",
               o, human_cs="utf-8", human_cte="quoted-printable", bstyle="outlook"),
        rec("failed", ["c.leroy@fr.example"], "5.1.1", server="exchange"))

    # 32 Exchange Japanese NDR (base64)
    o = orig("y.kobayashi@jp.example", "Re: 納品書", "r32b3c4d5")
    add("exchange-ja",
        top("Microsoft Outlook <postmaster@jp.example>", enc_words("配信不能: Re: 納品書"), "Tue, 5 Mar 2024 18:14:50 +0900", "EX05.jp.example",
            [("Content-Language", "ja-JP"), ("Auto-Submitted", "auto-replied")], seed="x32"),
        report("x32", "次の受信者またはグループへの配信に失敗しました:\n\ny.kobayashi@jp.example\n入力したメール アドレスが見つかりませんでした。受信者のメール アドレスを確認してから、メッセージを再送信してください。問題が解決しない場合は、ヘルプデスクに問い合わせてください。\n\n"
                      "管理者向けの診断情報:\n\n生成元サーバー: EX05.jp.example\n\ny.kobayashi@jp.example\nRemote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\n",
               "Reporting-MTA: dns;EX05.jp.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:14:48 +0000\n\n"
               "Final-Recipient: rfc822;y.kobayashi@jp.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\n",
               o, human_cs="utf-8", human_cte="base64", bstyle="outlook"),
        rec("failed", ["y.kobayashi@jp.example"], "5.1.1", server="exchange"))

    # 33 Outlook.com consumer, mailbox unavailable
    o = orig("jenny.w@hotmail.example", "Re: Your order", "r33c4d5e6")
    add("outlookcom",
        top("postmaster@outlook.example", "Undeliverable: Re: Your order", "Tue, 5 Mar 2024 09:15:00 +0000", "BN8NAM12HT123.mail.protection.outlook.example",
            [("Content-Language", "en-US"), ("X-MS-Exchange-Message-Is-Ndr", ""), ("Auto-Submitted", "auto-replied")], seed="x33"),
        report("x33", "Delivery has failed to these recipients or groups:\n\njenny.w@hotmail.example<mailto:jenny.w@hotmail.example>\nThe email address you entered couldn't be found. Please check the recipient's email address and try to resend the message. If the problem continues, please contact your email admin.\n\n\n\n\n\n"
                      "Diagnostic information for administrators:\n\nGenerating server: BN8NAM12HT123.mail.protection.outlook.example\n\njenny.w@hotmail.example\nRemote Server returned '550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [BN8NAM12FT045.eop-nam12.prod.protection.outlook.example 2024-03-05T09:14:59.123Z 08DC3C1F2A3B4C5D]'\n",
               "Reporting-MTA: dns;BN8NAM12HT123.mail.protection.outlook.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:14:58 +0000\n\n"
               "Final-Recipient: rfc822;jenny.w@hotmail.example\nAction: failed\nStatus: 5.5.0\nDiagnostic-Code: smtp;550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302).\n",
               o, bstyle="outlook"),
        rec("failed", ["jenny.w@hotmail.example"], "5.5.0", server="outlook.com"))

    # 34 Domino, old non-standard "Delivery Failure Report"
    o = orig("Franz.Gruber@at.example", "Re: Schulungstermin", "r34d5e6f7")
    add("domino-old",
        top("Mail Router <Mail.Router@at.example>", "DELIVERY FAILURE: Error transferring to NOTES02/EXAMPLE; Maximum hop count exceeded.  Message probably in a routing loop.", "Tue, 5 Mar 2024 10:15:10 +0100", "notes02.at.example",
            [("X-Mailer", "Lotus Notes Release 6.5.6 March 06, 2007"), ("Content-Type", "text/plain; charset=ISO-8859-1")], seed="d34", null_path=False),
        ("------- Failure Reasons  --------\n\nError transferring to NOTES02/EXAMPLE; Maximum hop count exceeded.  Message probably in a routing loop.\n"
         "Franz.Gruber@at.example\n\n\n------- Returned Message --------\n\n" + o).encode("iso-8859-1"),
        rec("failed", ["Franz.Gruber@at.example"], None, server="domino"))

    # 35 GroupWise, DSN flavoured
    o = orig("m.novak@gw.cz.example", "Re: Smlouva", "r35e6f7a8")
    add("groupwise-dsn",
        top("postmaster@gw.cz.example", "Mail Delivery Failure", "Tue, 05 Mar 2024 10:15:20 +0100", "gw.cz.example",
            [("X-Mailer", "GroupWise Internet Agent 18.4.0")], seed="g35", null_path=False),
        report("g35", "The message that you sent was undeliverable to the following:\n\tm.novak@gw.cz.example (Mailbox full)\n\nPossibly truncated original message follows:\n",
               "Reporting-MTA: dns; gw.cz.example\nArrival-Date: Tue, 05 Mar 2024 10:15:19 +0100\n\nFinal-Recipient: rfc822; m.novak@gw.cz.example\nAction: failed\nStatus: 5.2.2\n",
               o),
        rec("failed", ["m.novak@gw.cz.example"], "5.2.2", server="groupwise"))

    # 36 AOL failure notice
    o = orig("grandma.jones@aol.example", "Re: Gift card balance", "r36f7a8b9")
    add("aol-failure",
        top("MAILER-DAEMON@aol.example", "Failure Notice", "Tue, 5 Mar 2024 09:15:30 +0000", "mtaproxy.aol.example", [], seed="a36"),
        ("Sorry, we were unable to deliver your message to the following address.\n\n<grandma.jones@aol.example>:\n"
         "550: 5.1.1 <grandma.jones@aol.example>: Recipient address rejected: aol.example\n\n--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["grandma.jones@aol.example"], "5.1.1", server="aol"))

    # 37 Google, old "Delivery to the following recipient failed permanently"
    o = orig("noemi.kiss@hu.example", "Re: Számla", "r37a8b9c0")
    add("google-legacy",
        top("Mail Delivery Subsystem <mailer-daemon@googlemail.example>", "Delivery Status Notification (Failure)", "Tue, 05 Mar 2024 01:15:40 -0800 (PST)", "mx.google.example",
            [("Content-Type", "text/plain; charset=ISO-8859-1")], seed="g37"),
        ("Delivery to the following recipient failed permanently:\n\n     noemi.kiss@hu.example\n\nTechnical details of permanent failure:\n"
         "Google tried to deliver your message, but it was rejected by the server for the recipient domain hu.example by mx.hu.example. [192.0.2.140].\n\n"
         "The error that the other server returned was:\n550 5.1.1 <noemi.kiss@hu.example>: Recipient address rejected: User unknown in virtual mailbox table\n\n"
         "----- Original message -----\n\n" + o).encode("iso-8859-1", errors="replace"),
        rec("failed", ["noemi.kiss@hu.example"], "5.1.1", server="google"))

    # 38 LISTSERV, not authorized to post
    o = orig("RESEARCH-L@LISTSERV.EXAMPLE.ORG", "Re: Dataset access", "r38b9c0d1")
    add("listserv-rejected",
        top("\"L-Soft list server at LISTSERV.EXAMPLE.ORG (17.0)\" <LISTSERV@LISTSERV.EXAMPLE.ORG>", "Rejected posting to RESEARCH-L@LISTSERV.EXAMPLE.ORG", "Tue, 5 Mar 2024 04:15:50 -0500", "LISTSERV.EXAMPLE.ORG",
            [("Content-Type", "text/plain; charset=\"US-ASCII\"")], seed="l38", null_path=False),
        ("You are not authorized to send mail to the RESEARCH-L list from your\nsupport@example.com account. You might be authorized to send to the list\n"
         "from another of your accounts, or perhaps when using another mail program\nwhich generates slightly different addresses, but LISTSERV has no way to\n"
         "associate this other account or address with yours. If you need assistance\nor if you have any question regarding the policy of the RESEARCH-L list,\n"
         "please contact the list owners: RESEARCH-L-request@LISTSERV.EXAMPLE.ORG.\n\n------------------------ Rejected message (16 lines) --------------------------\n" + o).encode(),
        rec("failed", ["RESEARCH-L@LISTSERV.EXAMPLE.ORG"], None, server="listserv"))

    # 39 Thunderbird return receipt (RFC 3798)
    add("receipt-thunderbird",
        top("Bernd Kaiser <bernd.kaiser@de.example>", "Return Receipt (displayed) - Re: Ihre Anfrage", "Tue, 5 Mar 2024 11:05:00 +0100", "de.example",
            [("User-Agent", "Mozilla Thunderbird")], seed="r39", null_path=False),
        multipart("report", [
            text_part("This is a Return Receipt for the mail that you sent to bernd.kaiser@de.example.\n\nNote: This Return Receipt only acknowledges that the message was displayed on the recipient's computer. There is no guarantee that the recipient has read or understood the message contents.\n", "plain", "UTF-8", "7bit"),
            raw_part("message/disposition-notification", "Reporting-UA: de.example; Mozilla Thunderbird\nFinal-Recipient: rfc822;bernd.kaiser@de.example\nOriginal-Message-ID: <r39c0d1e2@mail.example.com>\nDisposition: manual-action/MDN-sent-manually; displayed\n"),
            raw_part("text/rfc822-headers", orig_headers("bernd.kaiser@de.example", "Re: Ihre Anfrage", "r39c0d1e2"), [("Content-Disposition", "inline")]),
        ], boundary("r39", "thunderbird"), params=" report-type=disposition-notification;"),
        rec("receipt", server="thunderbird"))

    # 40 DSN success (delivered)
    o = orig_headers("h.weber@ch.example", "Re: Signed contract", "r40d1e2f3")
    add("dsn-delivered",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Successful Mail Delivery Report", D, OUR_HOST, [("Auto-Submitted", "auto-replied")], seed="p40"),
        report("p40", "This is the mail system at host mail.example.com.\n\nYour message was successfully delivered to the destination(s)\nlisted below. If the message was delivered to mailbox you will\n"
                      "receive no further notifications. Otherwise you may still receive\nnotifications of mail delivery errors from other systems.\n\n                   The mail system\n\n"
                      "<h.weber@ch.example>: delivery via mx.ch.example[192.0.2.150]:25: 250 2.0.0 Ok:\n    queued as 4TqF5G6H7J8K\n",
               postfix_status(OUR_HOST, "4TqE9F0G1H2J", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("h.weber@ch.example", "relayed", "2.0.0", "smtp; 250 2.0.0 Ok: queued as 4TqF5G6H7J8K", "mx.ch.example")]),
               o, orig_type="text/rfc822-headers", bstyle="postfix"),
        rec("delivered", server="postfix"))

    # 41 Forwarded DSN: a relay forwards the bounce it got, attached
    o = orig("e.kowalczyk@pl.example", "Re: Reklamacja", "r41e2f3a4")
    dsn_msg = message(
        top("MAILER-DAEMON@smtp.relay.example.net (Mail Delivery System)", "Undelivered Mail Returned to Sender", D, "smtp.relay.example.net",
            [("Auto-Submitted", "auto-replied")], to="bounces+acme@relay.example.net", seed="f41i"),
        report("f41i", postfix_human("smtp.relay.example.net", "<e.kowalczyk@pl.example>: host mx.pl.example[192.0.2.160] said: 550 5.1.1\n    <e.kowalczyk@pl.example>: Recipient address rejected: Mailbox does not exist\n    (in reply to RCPT TO command)"),
               postfix_status("smtp.relay.example.net", "4TqG0H1J2K3L", "Tue,  5 Mar 2024 10:12:34 +0100 (CET)",
                              [block("e.kowalczyk@pl.example", "failed", "5.1.1", "smtp; 550 5.1.1 <e.kowalczyk@pl.example>: Recipient address\n    rejected: Mailbox does not exist", "mx.pl.example")]), o, bstyle="postfix"), False).decode()
    add("forwarded-dsn",
        top("Relay Bounce Forwarder <bounces@relay.example.net>", "Fwd: Undelivered Mail Returned to Sender", "Tue, 5 Mar 2024 10:13:00 +0100", "relay.example.net",
            [("Auto-Submitted", "auto-generated")], seed="f41", null_path=False),
        multipart("mixed", [text_part("A message sent through relay.example.net on behalf of support@example.com\nwas returned. The bounce is attached.\n", "plain", "us-ascii", "7bit"),
                            raw_part("message/rfc822", dsn_msg, [("Content-Disposition", "attachment; filename=\"bounce.eml\"")])], boundary("f41mix")),
        rec("failed", ["e.kowalczyk@pl.example"], "5.1.1", server="forwarded postfix"))

    # 42 Barracuda
    o = orig("accounts@za.example", "Re: Statement", "r42f3a4b5")
    add("barracuda",
        top("Barracuda Email Security Service <mailer-daemon@ess.barracuda.example>", "Message delivery has failed", "Tue, 05 Mar 2024 09:16:00 +0000", "ess.barracuda.example",
            [("Content-Type", "text/plain; charset=us-ascii")], seed="b42"),
        ("Your message could not be delivered to the following recipients:\n\n  accounts@za.example\n\n"
         "#550 permanent failure for one or more recipients (accounts@za.example:550 5.1.1 <accounts@za.example>: Recipient address rejected: User unknown in local recipient table)\n\n"
         "--- Original message headers follow ---\n\n" + orig_headers("accounts@za.example", "Re: Statement", "r42f3a4b5")).encode(),
        rec("failed", ["accounts@za.example"], "5.1.1", server="barracuda"))

    # 43 hMailServer
    o = orig("tom.hardy@ie.example", "Re: Renewal", "r43a4b5c6")
    add("hmailserver",
        top("mailer-daemon@mail.ie.example", "Message undeliverable: Re: Renewal", "Tue, 5 Mar 2024 09:16:10 +0000", "mail.ie.example",
            [("Content-Type", "text/plain; charset=us-ascii")], seed="h43"),
        ("Your message did not reach some or all of the intended recipients.\n\n   Sent: Tue, 5 Mar 2024 09:12:33 +0000\n   Subject: Re: Renewal\n\n"
         "The following recipient(s) could not be reached:\n\ntom.hardy@ie.example\n   Error Type: SMTP\n   Remote server (192.0.2.170) issued an error.\n"
         "   hMailServer sent: RCPT TO:<tom.hardy@ie.example>\n   Remote server replied: 550 5.1.1 <tom.hardy@ie.example>: Recipient address rejected: User unknown\n\n").encode(),
        rec("failed", ["tom.hardy@ie.example"], "5.1.1", server="hmailserver"))

    # 44 OpenSMTPD
    o = orig("nils@no.example", "Re: Faktura", "r44b5c6d7")
    add("opensmtpd",
        top("Mailer Daemon <MAILER-DAEMON@mx.example.com>", "Delivery status notification: error", "Tue, 5 Mar 2024 10:16:20 +0100 (CET)", "mx.example.com",
            [("Content-Type", "multipart/mixed; boundary=\"16994_1709630180_5f2c\"")], seed="o44")[:-1] + [("MIME-Version", "1.0")],
        (b"\r\nThis is a MIME-encapsulated message.\r\n\r\n--16994_1709630180_5f2c\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
         b"Hi!\r\n\r\nThis is the MAILER-DAEMON, please DO NOT REPLY to this email.\r\n\r\nAn error has occurred while attempting to deliver a message for\r\n"
         b"the following list of recipients:\r\n\r\nnils@no.example: 550 5.1.1 <nils@no.example>: Recipient address rejected: User unknown in local recipient table\r\n\r\n"
         b"Below is a copy of the original message:\r\n\r\n--16994_1709630180_5f2c\r\nContent-Description: Message headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
         + orig_headers("nils@no.example", "Re: Faktura", "r44b5c6d7").encode() + b"\r\n--16994_1709630180_5f2c--\r\n"),
        rec("failed", ["nils@no.example"], "5.1.1", server="opensmtpd"))

    # 45 Courier, failed
    o = orig("marta.lind@fi.example", "Re: Lasku", "r45c6d7e8")
    add("courier-failed",
        top("Courier mail server at mail.fi.example <@>", "NOTICE: mail delivery status.", "Tue, 05 Mar 2024 11:16:30 +0200", "mail.fi.example", [], seed="c45"),
        report("c45", "This is a delivery status notification from mail.fi.example,\nrunning the Courier mail server, version 1.1.8.\n\n"
                      "The original message was received on Tue, 05 Mar 2024 11:12:35 +0200\nfrom mail.example.com (mail.example.com [203.0.113.20])\n\n"
                      "---------------------------------------------------------------------------\n\n                           UNDELIVERABLE MAIL\n\n"
                      "Your message to the following recipients cannot be delivered:\n\n<marta.lind@fi.example>:\n    mx.fi.example [192.0.2.180]:\n"
                      ">>> RCPT TO:<marta.lind@fi.example>\n<<< 550 User unknown\n\n---------------------------------------------------------------------------\n\n"
                      "If your message was also sent to additional recipients, their delivery\nstatus is not included in this report.  You may or may not receive\nother delivery status notifications for additional recipients.\n",
               "Reporting-MTA: dns; mail.fi.example\nArrival-Date: Tue, 05 Mar 2024 11:12:35 +0200\n\nFinal-Recipient: rfc822; marta.lind@fi.example\nAction: failed\nStatus: 5.0.0\n"
               "Remote-MTA: dns; mx.fi.example\nDiagnostic-Code: smtp; 550 User unknown\n", o),
        rec("failed", ["marta.lind@fi.example"], "5.0.0", server="courier"))

    # 46 Courier, delayed
    o = orig_headers("j.lopez@cl.example", "Re: Cotización", "r46d7e8f9")
    add("courier-delayed",
        top("Courier mail server at mail.example.com <@>", "WARNING: delayed mail.", "Tue, 05 Mar 2024 14:16:40 +0100", OUR_HOST, [], seed="c46"),
        report("c46", "This is a delivery status notification from mail.example.com,\nrunning the Courier mail server, version 1.1.8.\n\n"
                      "The original message was received on Tue, 05 Mar 2024 10:12:35 +0100\nfrom app.example.com (app.example.com [203.0.113.10])\n\n"
                      "---------------------------------------------------------------------------\n\n                          DELAYS IN DELIVERING YOUR MESSAGE\n\n"
                      "This is an automatic notice: delivery of your message has been delayed. The mail server will keep trying to deliver it; you do not need to do anything.\n\n"
                      "<j.lopez@cl.example>:\n    mx.cl.example [192.0.2.190]:\n>>> RCPT TO:<j.lopez@cl.example>\n<<< 421 4.3.2 Service not available, try again later\n",
               "Reporting-MTA: dns; mail.example.com\nArrival-Date: Tue, 05 Mar 2024 10:12:35 +0100\n\nFinal-Recipient: rfc822; j.lopez@cl.example\nAction: delayed\nStatus: 4.3.2\n"
               "Remote-MTA: dns; mx.cl.example\nDiagnostic-Code: smtp; 421 4.3.2 Service not available, try again later\n", o, orig_type="text/rfc822-headers"),
        rec("delayed", delayed=["j.lopez@cl.example"], status="4.3.2", server="courier"))

    # 47 Mail.ru (Exim-based), Russian notice
    o = orig("vasya.pupkin@mail.example", "Re: Заказ 7781", "r47e8f9a0")
    add("mailru-bounce",
        top("Mail Delivery System <mailer-daemon@corp.mail.example>", "Mail delivery failed: returning message to sender", "Tue, 05 Mar 2024 12:16:50 +0300", "corp.mail.example",
            [("X-Failed-Recipients", "vasya.pupkin@mail.example"), ("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")], seed="m47"),
        ("Это письмо создано автоматически\nсервером Mail.Ru, отвечать на него не\nнужно.\n\nК сожалению, Ваше письмо не может\nбыть доставлено одному или нескольким\nполучателям:\n\n"
         "vasya.pupkin@mail.example\nmailbox is full (quota exceeded)\n\nРекомендуем Вам проверить корректность\nуказания адресов получателей.\n\n"
         "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n"
         "recipients. This is a permanent error. The following address(es) failed:\n\n  vasya.pupkin@mail.example\n    mailbox is full (quota exceeded)\n\n"
         "------ This is a copy of the message, including all the headers. ------\n\n" + o).encode(),
        rec("failed", ["vasya.pupkin@mail.example"], None, server="mailru"))

    # 48 Yandex (Postfix-based), spam rejection
    o = orig("marina.k@yandex.example", "Re: Акция", "r48f9a0b1")
    add("yandex-bounce",
        top("mailer-daemon@yandex.example", enc_words("Недоставленное сообщение"), "Tue, 5 Mar 2024 12:17:00 +0300", "forward100.mail.yandex.example",
            [("Auto-Submitted", "auto-replied")], seed="y48"),
        report("y48", "This is the mail system at host forward100.mail.yandex.example.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n\n"
                      "Please, do not reply to this message.\n\n\n<marina.k@yandex.example>: host mx.yandex.example[192.0.2.200] said: 554 5.7.1\n    [2] Message rejected under suspicion of SPAM;\n    https://ya.example/cgi/AAAA (in reply to end of DATA command)\n",
               postfix_status("forward100.mail.yandex.example", "1A2B3C4D5E", "Tue,  5 Mar 2024 12:12:35 +0300 (MSK)",
                              [block("marina.k@yandex.example", "failed", "5.7.1", "smtp; 554 5.7.1 [2] Message rejected under suspicion of SPAM;\n    https://ya.example/cgi/AAAA", "mx.yandex.example")]),
               o, bstyle="postfix"),
        rec("failed", ["marina.k@yandex.example"], "5.7.1", server="yandex"))

    # 49 Japanese ISP (Sendmail-based), ISO-2022-JP notice, non-MIME report
    o = orig("taro.yamada@ne.jp.example", "Re: ご注文の件", "r49a0b1c2")
    jp = ("このメールは、送信したメールの配送に失敗したことをお知らせするものです。\n"
          "宛先のメールアドレスが存在しないため、配送できませんでした。\n\n"
          "   ----- The following addresses had permanent fatal errors -----\n<taro.yamada@ne.jp.example>\n    (reason: 550 5.1.1 <taro.yamada@ne.jp.example>... User unknown)\n\n"
          "   ----- Transcript of session follows -----\n... while talking to mx.ne.jp.example.:\n>>> RCPT To:<taro.yamada@ne.jp.example>\n<<< 550 5.1.1 <taro.yamada@ne.jp.example>... User unknown\n550 5.1.1 <taro.yamada@ne.jp.example>... User unknown\n\n"
          "   ----- Original message follows -----\n\n")
    add("jp-isp",
        top("Mail Delivery Subsystem <MAILER-DAEMON@mail.ne.jp.example>", "Returned mail: see transcript for details", "Tue, 5 Mar 2024 18:17:10 +0900 (JST)", "mail.ne.jp.example",
            [("Content-Type", "text/plain; charset=ISO-2022-JP"), ("Content-Transfer-Encoding", "7bit")], seed="j49"),
        (jp + o).encode("iso2022_jp", errors="replace"),
        rec("failed", ["taro.yamada@ne.jp.example"], "5.1.1", server="sendmail-jp"))

    # 50 Outlook "Not read" receipt (deleted)
    add("receipt-not-read",
        top("Marco Bellini <marco.bellini@it.example>", "Non letto: Re: Preventivo", "Tue, 5 Mar 2024 16:00:00 +0100", "EX06.it.example",
            [("Content-Language", "it-IT")], seed="r50", null_path=False),
        multipart("report", [
            text_part("Il messaggio\n\n  A: Marco Bellini\n  Oggetto: Re: Preventivo\n  Inviato: martedì 5 marzo 2024 10:12:33 (UTC+01:00) Amsterdam, Berlino, Berna, Roma, Stoccolma, Vienna\n\nè stato eliminato senza essere letto martedì 5 marzo 2024 16:00:00 (UTC+01:00) Amsterdam, Berlino, Berna, Roma, Stoccolma, Vienna.\n", "plain", "utf-8", "quoted-printable"),
            raw_part("message/disposition-notification", "Reporting-UA: EX06.it.example; Microsoft Exchange Server 2016\nFinal-Recipient: rfc822;marco.bellini@it.example\nOriginal-Message-ID: <r50b1c2d3@mail.example.com>\nDisposition: automatic-action/MDN-sent-automatically; deleted\n"),
        ], boundary("r50", "outlook"), params=" report-type=disposition-notification;"),
        rec("receipt", server="exchange"))

    # 51 Sendmail, one failed and one delayed in the same DSN
    o = orig("a.dubois@be.example", "Re: Commande", "r51c2d3e4", cc="compta@be.example")
    add("sendmail-mixed",
        top("Mail Delivery Subsystem <MAILER-DAEMON@relay.example.com>", "Returned mail: see transcript for details", "Tue, 5 Mar 2024 14:17:20 +0100", "relay.example.com",
            [("Auto-Submitted", "auto-generated (failure)")], seed="s51"),
        report("s51", "The original message was received at Tue, 5 Mar 2024 10:12:35 +0100\nfrom app.example.com [203.0.113.10]\n\n"
                      "   ----- The following addresses had permanent fatal errors -----\n<a.dubois@be.example>\n    (reason: 550 5.1.1 <a.dubois@be.example>... User unknown)\n\n"
                      "   ----- The following addresses had transient non-fatal errors -----\n<compta@be.example>\n    (reason: 452 4.2.2 Mailbox full)\n\n"
                      "   ----- Transcript of session follows -----\n... while talking to mx.be.example.:\n>>> RCPT To:<a.dubois@be.example>\n<<< 550 5.1.1 <a.dubois@be.example>... User unknown\n"
                      ">>> RCPT To:<compta@be.example>\n<<< 452 4.2.2 Mailbox full\n<compta@be.example>... Deferred: 452 4.2.2 Mailbox full\n",
               "Reporting-MTA: dns; relay.example.com\nArrival-Date: Tue, 5 Mar 2024 10:12:35 +0100\n\n"
               "Final-Recipient: RFC822; a.dubois@be.example\nAction: failed\nStatus: 5.1.1\nRemote-MTA: DNS; mx.be.example\nDiagnostic-Code: SMTP; 550 5.1.1 <a.dubois@be.example>... User unknown\n\n"
               "Final-Recipient: RFC822; compta@be.example\nAction: delayed\nStatus: 4.2.2\nRemote-MTA: DNS; mx.be.example\nDiagnostic-Code: SMTP; 452 4.2.2 Mailbox full\nWill-Retry-Until: Sun, 10 Mar 2024 10:12:35 +0100\n",
               o),
        rec("failed", ["a.dubois@be.example"], "5.1.1", delayed=["compta@be.example"], server="sendmail",
            note="the delayed recipient is not a failure"))

    # 52 Old Sendmail, non-MIME
    o = orig("root@legacy.example.org", "Re: Server alert", "r52d3e4f5")
    add("sendmail-old",
        top("Mail Delivery Subsystem <MAILER-DAEMON@legacy.example.org>", "Returned mail: User unknown", "Tue, 5 Mar 2024 10:17:30 +0100", "legacy.example.org", [], seed="s52"),
        ("Transcript of session follows.\n\n   ----- Transcript of session follows -----\n550 5.1.1 <root@legacy.example.org>... User unknown\n\n"
         "   ----- Unsent message follows -----\n" + o).encode(),
        rec("failed", ["root@legacy.example.org"], "5.1.1", server="sendmail"))

    # 53 Google Groups: group does not exist or no permission
    o = orig("team@groups.example.net", "Re: Offsite planning", "r53e4f5a6")
    add("google-groups",
        top("Mail Delivery Subsystem <mailer-daemon@googlemail.example>", "Delivery Status Notification (Failure)", "Tue, 05 Mar 2024 01:17:40 -0800 (PST)", "mx.google.example",
            [("Auto-Submitted", "auto-replied")], seed="g53"),
        report("g53", "\n** Message blocked **\n\nYour message to team@groups.example.net has been blocked. See technical details below for more information.\n\n"
                      "The response was:\n\nWe're writing to let you know that the group you tried to contact (team) may not exist, or you may not have permission to post messages to the group. A few more details on why you weren't able to post:\n\n"
                      " * You might have spelled or formatted the group name incorrectly.\n * The owner of the group may have removed this group.\n * You may need to join the group before receiving permission to post.\n * This group may not be open to posting.\n",
               "Reporting-MTA: dns; googlemail.example\nArrival-Date: Tue, 05 Mar 2024 01:17:39 -0800 (PST)\nX-Original-Message-ID: <r53e4f5a6@mail.example.com>\n\n"
               "Final-Recipient: rfc822; team@groups.example.net\nAction: failed\nStatus: 5.7.0\nDiagnostic-Code: smtp; 550 5.7.0 We're writing to let you know that the group you tried to contact (team) may not exist, or you may not have permission to post messages to the group.\n",
               o, human_cs="UTF-8", bstyle="gmail"),
        rec("failed", ["team@groups.example.net"], "5.7.0", server="google-groups"))

    # 54 Sympa rejection
    o = orig("clients@lists.example.net", "Re: Release notes 4.2", "r54f5a6b7")
    add("sympa-rejected",
        top("SYMPA <sympa@lists.example.net>", "Message distribution: Authorization denied", "Tue, 5 Mar 2024 10:17:50 +0100", "lists.example.net",
            [("Auto-Submitted", "auto-replied"), ("Content-Type", "text/plain; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit")], seed="y54", null_path=False),
        ("The message that you sent to the clients@lists.example.net list, with the following subject:\n  Re: Release notes 4.2\nwas rejected.\n\n"
         "You are not allowed to send messages to this list. Please contact the list owner: clients-request@lists.example.net\n").encode(),
        rec("failed", ["clients@lists.example.net"], None, server="sympa"))

    # 55 ARF opt-out report (another feedback type)
    o = orig("former.client@example.com", "Your subscription is renewing soon", "r55a6b7c8")
    add("arf-optout",
        top("Abuse Desk <abuse-reports@mail.example.net>", "FW: Your subscription is renewing soon", "Tue, 05 Mar 2024 13:00:00 +0000", "mail.example.net", [], seed="a55", null_path=False),
        multipart("report", [
            text_part("This is an unsubscribe request reported through our feedback loop.\n", "plain", "us-ascii", "7bit"),
            raw_part("message/feedback-report", "Feedback-Type: opt-out\nUser-Agent: MailNet-FBL/2.1\nVersion: 1\nOriginal-Rcpt-To: former.client@example.com\nArrival-Date: Tue, 05 Mar 2024 09:12:36 +0000\nSource-IP: 203.0.113.20\n"),
            raw_part("text/rfc822-headers", orig_headers("former.client@example.com", "Your subscription is renewing soon", "r55a6b7c8")),
        ], boundary("a55"), params=" report-type=feedback-report;"),
        rec("feedback", server="arf"))

    # 56 Zimbra (Postfix), mail loop
    o = orig("helpdesk@zimbra.example.org", "Re: Ticket 552", "r56b7c8d9")
    add("zimbra-loop",
        top("MAILER-DAEMON@zimbra.example.org (Mail Delivery System)", "Undelivered Mail Returned to Sender", "Tue,  5 Mar 2024 10:18:00 +0100 (CET)", "zimbra.example.org",
            [("Auto-Submitted", "auto-replied")], seed="z56"),
        report("z56", postfix_human("zimbra.example.org", "<helpdesk@zimbra.example.org>: mail for zimbra.example.org loops back to myself"),
               postfix_status("zimbra.example.org", "4TqH2J3K4L5M", "Tue,  5 Mar 2024 10:17:58 +0100 (CET)",
                              [block("helpdesk@zimbra.example.org", "failed", "5.4.6", "X-Postfix; mail for zimbra.example.org loops back to myself")]), o, bstyle="postfix"),
        rec("failed", ["helpdesk@zimbra.example.org"], "5.4.6", server="zimbra"))

    # 57 Exchange Spanish NDR, mailbox full, with HTML human part only
    o = orig("r.gil@es.example", "Re: Presupuesto", "r57c8d9e0")
    human_html = ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head><body><p><b><font color=\"#000066\" size=\"3\" face=\"Segoe UI\">"
                  "No se puede entregar el mensaje a <a href=\"mailto:r.gil@es.example\">r.gil@es.example</a>.</font></b></p>"
                  "<p>El buzón de r.gil está lleno y no puede aceptar mensajes en este momento.</p><p>Código de estado: 552 5.2.2</p></body></html>")
    add("exchange-es-html",
        top("Microsoft Outlook <postmaster@es.example>", "No se puede entregar: Re: Presupuesto", "Tue, 5 Mar 2024 10:18:10 +0100", "EX07.es.example",
            [("Content-Language", "es-ES"), ("Auto-Submitted", "auto-replied")], seed="x57"),
        report("x57", None, "Reporting-MTA: dns;EX07.es.example\nReceived-From-MTA: dns;mail.example.com\nArrival-Date: Tue, 5 Mar 2024 09:18:08 +0000\n\n"
               "Final-Recipient: rfc822;r.gil@es.example\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp;552 5.2.2 mailbox full\n",
               o, human_parts=[text_part(human_html, "html", "utf-8", "quoted-printable")], bstyle="outlook"),
        rec("failed", ["r.gil@es.example"], "5.2.2", server="exchange"))

    # 58 Exim with DSN (multipart/report)
    o = orig("ole.hansen@dk.example", "Re: Faktura", "r58d9e0f1")
    add("exim-dsn",
        top("Mail Delivery System <Mailer-Daemon@mx.example.com>", "Mail delivery failed: returning message to sender", "Tue, 05 Mar 2024 10:18:20 +0100", "mx.example.com",
            [("X-Failed-Recipients", "ole.hansen@dk.example"), ("Auto-Submitted", "auto-replied")], seed="e58"),
        report("e58", "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\n"
                      "recipients. This is a permanent error. The following address(es) failed:\n\n  ole.hansen@dk.example\n    host mx.dk.example [192.0.2.210]\n"
                      "    SMTP error from remote mail server after RCPT TO:<ole.hansen@dk.example>:\n    550 5.1.1 User unknown\n",
               "Reporting-MTA: dns; mx.example.com\n\nAction: failed\nFinal-Recipient: rfc822;ole.hansen@dk.example\nStatus: 5.0.0\nRemote-MTA: dns; mx.dk.example\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n",
               o),
        rec("failed", ["ole.hansen@dk.example"], "5.1.1", server="exim"))

    # 59 Postfix, Action: delayed for one of two, other delivered (relayed); warning
    o = orig_headers("li.wei@cn.example", "Re: 报价单", "r59e0f1a2")
    add("postfix-delayed-cjk",
        top("MAILER-DAEMON@mail.example.com (Mail Delivery System)", "Delayed Mail (still being retried)", "Tue,  5 Mar 2024 15:12:40 +0100 (CET)", OUR_HOST,
            [("Auto-Submitted", "auto-replied")], seed="p59"),
        report("p59", postfix_human(OUR_HOST, "<li.wei@cn.example>: host mx.cn.example[192.0.2.220] said: 450 4.2.0\n    <li.wei@cn.example>: Recipient address rejected: Mailbox temporarily\n    unavailable (in reply to RCPT TO command)", True, 5),
               postfix_status(OUR_HOST, "4TqJ3K4L5M6N", "Tue,  5 Mar 2024 10:12:33 +0100 (CET)",
                              [block("li.wei@cn.example", "delayed", "4.2.0", "smtp; 450 4.2.0 <li.wei@cn.example>: Recipient address\n    rejected: Mailbox temporarily unavailable", "mx.cn.example",
                                     extra="Will-Retry-Until: Sun, 10 Mar 2024 10:12:33 +0100 (CET)\n")]),
               o, orig_type="text/rfc822-headers", bstyle="postfix"),
        rec("delayed", delayed=["li.wei@cn.example"], status="4.2.0", server="postfix"))

    # 60 MDaemon warning (temporary)
    o = orig("office@ro.example", "Re: Contract", "r60f1a2b3")
    add("mdaemon-warning",
        top("MDaemon@mail.example.net", "Warning: Temporary Delivery Failure Notice", "Tue, 05 Mar 2024 14:18:30 +0100", "mail.example.net",
            [("X-Mailer", "MDaemon PRO v23.5.1"), ("Content-Type", "text/plain; charset=us-ascii")], seed="m60"),
        ("The attached message has not yet been delivered.  This message is a courtesy\nnotification only.  The server will continue to attempt delivery.\n\n"
         "WARNING: YOUR MESSAGE HAS NOT YET BEEN DELIVERED TO ONE OR MORE RECIPIENTS!\nTHE SERVER WILL CONTINUE TO ATTEMPT DELIVERY - YOU DO NOT NEED TO RESEND.\n\n"
         "--- Session Transcript ---\n Tue 2024-03-05 14:18:25.101: *  To: office@ro.example\n Tue 2024-03-05 14:18:25.410: --> RCPT To:<office@ro.example>\n"
         " Tue 2024-03-05 14:18:25.530: <-- 451 4.7.1 Please try again later\n--- End Transcript ---\n").encode(),
        rec("delayed", delayed=["office@ro.example"], status="4.7.1", server="mdaemon"))

    # 61 Yahoo, full mailbox, mixed-case address
    o = orig("Carla.Brandt@yahoo.example", "Re: Rückerstattung", "r61a2b3c4")
    add("yahoo-quota",
        top("MAILER-DAEMON@yahoo.example", "Failure Notice", "5 Mar 2024 09:18:40 +0000", "mta1001.mail.ir2.yahoo.example", [], seed="y61"),
        ("Sorry, we were unable to deliver your message to the following address.\n\n<Carla.Brandt@yahoo.example>:\n"
         "552 1 Requested mail action aborted, mailbox not found\n\n--- Below this line is a copy of the message.\n\n" + o).encode(),
        rec("failed", ["Carla.Brandt@yahoo.example"], None, server="yahoo"))

    # 62 CommuniGate, DSN flavour
    o = orig("pavel@sk.example", "Re: Objednávka", "r62b3c4d5")
    add("communigate-dsn",
        top("MAILER-DAEMON@sk.example", "Undeliverable mail: Failed to deliver to '<pavel@sk.example>'", "Tue, 05 Mar 2024 10:18:50 +0100", "sk.example",
            [("X-Mailer", "CommuniGate Pro SMTP 6.2.14")], seed="c62"),
        report("c62", "Failed to deliver to '<pavel@sk.example>'\nSMTP module(domain sk.example) reports:\n host mx2.sk.example says:\n 550 5.1.1 <pavel@sk.example>: Recipient address rejected: User unknown\n",
               "Reporting-MTA: dns; sk.example\nArrival-Date: Tue, 05 Mar 2024 10:18:49 +0100\n\nFinal-Recipient: rfc822; pavel@sk.example\nAction: failed\nStatus: 5.0.0\n",
               o),
        rec("failed", ["pavel@sk.example"], "5.1.1", server="communigate"))

    return out
