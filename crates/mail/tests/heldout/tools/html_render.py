"""HTML reply layouts, one function per client, as each client writes its
reply and quote: (html, plain alternative) from an entry. The new text is
`e["new"]` (lines; blank line = paragraph break), the quoted email is ours
(`e["orig"]`), the attribution `e["attr"]` or Outlook's header block
`e["hdr"]` (label, value) pairs."""

import html as _html
import re

from clients import q


def esc(s):
    return _html.escape(s, quote=False)


def link_addr(s, mailto=True, target=False):
    """`Name <a@b>` in an attribution, escaped, with the address linked."""
    s = esc(s)
    t = ' target="_blank"' if target else ""
    if not mailto:
        return s
    return re.sub(r"&lt;([^&\s]+@[^&\s]+)&gt;", r'&lt;<a href="mailto:\1"%s>\1</a>&gt;' % t, s)


def paras(text):
    return [p for p in text.split("\n\n")]


def lines_html(text, style="div"):
    out = []
    if style == "div":
        for l in text.split("\n"):
            out.append("<div>%s</div>" % esc(l) if l else "<div><br></div>")
    elif style == "divdir":
        for l in text.split("\n"):
            out.append('<div dir="ltr">%s</div>' % esc(l) if l else '<div dir="ltr"><br></div>')
    elif style == "auto":
        for l in text.split("\n"):
            out.append('<div dir="auto">%s</div>' % esc(l) if l else '<div dir="auto"><br></div>')
    elif style == "yahoo":
        for l in text.split("\n"):
            out.append('<div dir="ltr" data-setdir="false">%s</div>' % esc(l) if l else '<div dir="ltr" data-setdir="false"><br></div>')
    elif style == "p":
        for p in paras(text):
            out.append("<p>%s</p>" % "<br>\n".join(esc(l) for l in p.split("\n")))
    elif style == "p-tb":
        for p in paras(text):
            out.append("    <p>%s</p>" % "<br>\n      ".join(esc(l) for l in p.split("\n")))
    elif style == "mso":
        for l in text.split("\n"):
            out.append("<p class=MsoNormal>%s<o:p></o:p></p>" % esc(l) if l else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>")
    elif style == "mso-q":
        for l in text.split("\n"):
            out.append('<p class="MsoNormal">%s<o:p></o:p></p>' % esc(l) if l else '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>')
    elif style == "br":
        out.append("<br>".join(esc(l) for l in text.split("\n")))
    elif style == "apple":
        ls = text.split("\n")
        out.append(esc(ls[0]))
        for l in ls[1:]:
            out.append("<div>%s</div>" % esc(l) if l else "<div><br></div>")
    elif style == "font":
        for l in text.split("\n"):
            out.append('<font size=2 face="sans-serif">%s</font><br>' % esc(l) if l else "<br>")
    elif style == "owa":
        out.append('<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, Aptos_MSFontService, Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">')
        out.append("<br>".join(esc(l) for l in text.split("\n")))
        out.append("</div>")
    elif style == "owa-old":
        for l in text.split("\n"):
            out.append('<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">%s</div>' % (esc(l) if l else "<br>"))
    elif style == "zoho":
        for l in text.split("\n"):
            out.append("<div>%s<br></div>" % esc(l) if l else "<div><br></div>")
    elif style == "proton":
        for l in text.split("\n"):
            out.append('<div style="font-family: Arial, sans-serif; font-size: 14px;">%s</div>' % (esc(l) if l else "<br>"))
    elif style == "gmx":
        for l in text.split("\n"):
            out.append("<div>%s</div>" % (esc(l) if l else "&nbsp;"))
    else:
        raise ValueError(style)
    return "\n".join(out) if style in ("p-tb", "mso", "mso-q", "owa-old", "gmx") else "".join(out)


def ours_html(orig):
    """Our earlier email as the customer's client received it (postdesk
    sends paragraphs)."""
    return "".join("<p>%s</p>" % "<br>".join(esc(l) for l in p.split("\n")) for p in orig.split("\n\n"))


def ours_mso(orig):
    return "\n".join(
        "<p class=MsoNormal>%s<o:p></o:p></p>" % esc(l) if l else "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        for l in orig.split("\n"))


def hdr_plain(hdr, sep=": "):
    return "\n".join("%s%s%s" % (k, sep, v) for k, v in hdr)


def hdr_html(hdr, bold_colon=True):
    return "<br>".join("<b>%s:</b> %s" % (esc(k), esc(v)) for k, v in hdr)


# --- clients -------------------------------------------------------------------------

def gmail(e):
    sig = e.get("sig")
    sig_html = ""
    sig_plain = ""
    if sig:
        sig_html = ('<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
                    '<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature"><div dir="ltr">%s</div></div>'
                    % "<br>".join(esc(l) for l in sig.split("\n")))
        sig_plain = "\n\n-- \n" + sig
    quote_cls = "gmail_quote gmail_quote_container" if e.get("v2") else "gmail_quote"
    body_html = e.get("orig_html") or ours_html(e["orig"])
    html = ('<div dir="ltr">%s</div>%s<br><div class="%s"><div dir="ltr" class="gmail_attr">%s<br></div>'
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">%s</blockquote></div>\n'
            % (lines_html(e["new"], "div"), sig_html, quote_cls, link_addr(e["attr"]), body_html))
    plain = "%s%s\n\n%s\n\n%s\n" % (e["new"], sig_plain, e.get("attr_plain", e["attr"]), q(e.get("orig_plain", e["orig"])))
    return html, plain


OUTLOOK_HEAD = ('<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
                'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
                'xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=%s">\n'
                '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n<style><!--\n/* Font Definitions */\n'
                '@font-face\n\t{font-family:"Cambria Math";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n@font-face\n\t{font-family:Calibri;\n\tpanose-1:2 15 5 2 2 2 4 3 2 4;}\n'
                '/* Style Definitions */\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;\n\tmso-ligatures:standardcontextual;}\n'
                'span.EmailStyle19\n\t{mso-style-type:personal-reply;\n\tfont-family:"Calibri",sans-serif;\n\tcolor:windowtext;}\n'
                '.MsoChpDefault\n\t{mso-style-type:export-only;\n\tfont-size:10.0pt;}\n@page WordSection1\n\t{size:612.0pt 792.0pt;\n\tmargin:72.0pt 72.0pt 72.0pt 72.0pt;}\n'
                'div.WordSection1\n\t{page:WordSection1;}\n--></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext="edit" spidmax="1026" />\n</xml><![endif]-->'
                '<!--[if gte mso 9]><xml>\n<o:shapelayout v:ext="edit">\n<o:idmap v:ext="edit" data="1" />\n</o:shapelayout></xml><![endif]-->\n</head>\n')


def outlook_desktop(e):
    """Outlook for Windows (Word HTML). style: 2016 (E1E1E1 border), 2010
    (B5C4DF), 2003 (OutlookMessageHeader with an hr)."""
    style = e.get("style", "2016")
    cs = e.get("meta_charset", e.get("charset", "us-ascii"))
    lang = e.get("lang_word", "EN-US")
    new = lines_html(e["new"], "mso")
    hdr = e["hdr"]
    if style == "2003":
        hdr_html_ = "<br>".join("<b>%s:</b> %s" % (esc(k), esc(v)) for k, v in hdr)
        html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=%s"><META content="MSHTML 6.00.2900.3698" name=GENERATOR></head>\n'
                '<body>\n%s\n<br>\n<div class=OutlookMessageHeader lang=en-us dir=ltr align=left>\n<hr tabIndex=-1>\n<font face=Tahoma size=2>%s<br></font><br></div>\n<div></div>\n%s\n</body></html>\n'
                % (cs, "".join('<div dir=ltr align=left><span class=%s><font face=Arial size=2>%s</font></span></div>' % ("842111010-05032024", esc(l) if l else "&nbsp;") for l in e["new"].split("\n")),
                   hdr_html_, ours_html(e["orig"])))
        plain = "%s\n\n%s\n\n_____\n\n%s\n\n%s\n" % (e["new"], "", hdr_plain(hdr), e["orig"])
        return html, plain
    color = "#E1E1E1" if style == "2016" else "#B5C4DF"
    parts = []
    for i, (k, v) in enumerate(hdr):
        if i == 0:
            parts.append("<b><span lang=%s>%s:</span></b><span lang=%s> %s" % (lang, esc(k), lang, esc(v)))
        else:
            parts.append("<b>%s:</b> %s" % (esc(k), esc(v)))
    block = ("<div>\n<div style='border:none;border-top:solid %s 1.0pt;padding:3.0pt 0cm 0cm 0cm'>\n<p class=MsoNormal>%s<o:p></o:p></span></p>\n</div>\n</div>"
             % (color, "<br>\n".join(parts)))
    mid = e.get("mso_mid", "")
    html = (OUTLOOK_HEAD % cs + '<body lang=%s link="#0563C1" vlink="#954F72" style=\'word-wrap:break-word\'>\n<div class=WordSection1>\n%s\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n%s%s\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\n%s\n</div>\n</body>\n</html>\n'
            % (lang, new, mid, block, e.get("orig_mso") or ours_mso(e["orig"])))
    plain = "%s\n\n%s\n\n%s\n" % (e["new"], hdr_plain(hdr), e.get("orig_plain", e["orig"]))
    return html, plain


def outlook_mac(e):
    new = lines_html(e["new"], "mso-q")
    hdr = e["hdr"]
    rows = "<br>\n".join("<b>%s: </b>%s" % (esc(k), esc(v)) for k, v in hdr[1:])
    html = ('<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">\n'
            '<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
            '<style><!--\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;\n\tfont-size:10.0pt;\n\tfont-family:"Calibri",sans-serif;}\n--></style>\n</head>\n'
            '<body lang="%s" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n<div class="WordSection1">\n%s\n'
            '<p class="MsoNormal"><span style="font-size:11.0pt"><o:p>&nbsp;</o:p></span></p>\n'
            '<div id="mail-editor-reference-message-container">\n<div>\n<div>\n'
            '<div style="border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
            '<p class="MsoNormal" style="margin-bottom:12.0pt"><b><span style="font-size:12.0pt;color:black">%s: </span></b><span style="font-size:12.0pt;color:black">%s<br>\n%s<o:p></o:p></span></p>\n'
            '</div>\n%s\n</div>\n</div>\n</div>\n</div>\n</body>\n</html>\n'
            % (e.get("lang_word", "EN-US"), new, esc(hdr[0][0]), esc(hdr[0][1]), rows,
               "\n".join('<p class="MsoNormal">%s<o:p></o:p></p>' % (esc(l) if l else "&nbsp;") for l in e["orig"].split("\n"))))
    plain = "%s\n\n%s\n\n%s\n" % (e["new"], hdr_plain(hdr), e["orig"])
    return html, plain


def outlook_web(e):
    """Outlook on the web / new Outlook / Outlook.com."""
    sig = e.get("sig")
    sig_html = ""
    sig_plain = ""
    if sig:
        sig_html = ('<div id="Signature" class="elementToProof"><div style="font-family: Aptos, Aptos_EmbeddedFont, Aptos_MSFontService, Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);">%s</div></div>'
                    % "<br>".join(esc(l) for l in sig.split("\n")))
        sig_plain = "\n\n" + sig
    style = "owa-old" if e.get("old") else "owa"
    html = ('<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=%s">\n<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>\n</head>\n<body dir="ltr">\n'
            '%s\n%s\n<div id="appendonsend"></div>\n<hr style="display:inline-block;width:98%%" tabindex="-1">\n'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">%s</font>\n<div>&nbsp;</div>\n</div>\n'
            '<div>%s</div>\n</body>\n</html>\n'
            % (e.get("meta_charset", e.get("charset", "iso-8859-1")), lines_html(e["new"], style), sig_html, hdr_html(e["hdr"]), ours_html(e["orig"])))
    plain = "%s%s\n________________________________\n%s\n\n%s\n" % (e["new"], sig_plain, hdr_plain(e["hdr"]), e["orig"])
    return html, plain


def outlook_mobile(e):
    app = e.get("app", "iOS")
    link = "https://aka.example/o0ukef" if app == "iOS" else "https://aka.example/ghei36"
    get = e.get("get", "Get <a href=\"%s\">Outlook for %s</a>" % (link, app))
    get_plain = re.sub(r"<a href=\"([^\"]+)\">([^<]+)</a>", r"\2<\1>", get)
    if e.get("container"):
        # 2023+: the quote sits in mail-editor-reference-message-container
        hdr_rows = "<br>".join("<b>%s: </b>%s" % (esc(k), esc(v)) for k, v in e["hdr"])
        html = ('<html><head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>\n<body>\n'
                '%s<div dir="auto"><br></div>\n<div id="ms-outlook-mobile-signature" dir="auto"><div dir="auto">%s</div></div>\n'
                '<div id="mail-editor-reference-message-container" dir="auto"><div class="ms-outlook-mobile-reference-message skipProofing" dir="auto">'
                '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in" dir="auto"><p style="font-size:11pt;font-family:Calibri,sans-serif;margin:0">%s<br></p></div><br>'
                '<div dir="auto">%s</div></div></div>\n</body></html>\n'
                % (lines_html(e["new"], "auto"), get, hdr_rows, ours_html(e["orig"])))
    else:
        html = ('<html><head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>\n<body>\n'
                '<div dir="auto">%s</div>\n<div dir="auto"><br></div>\n<div id="ms-outlook-mobile-signature" dir="auto">%s</div>\n'
                '<hr style="display:inline-block;width:98%%" tabindex="-1">\n<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">%s</font>\n<div>&nbsp;</div>\n</div>\n%s\n</body></html>\n'
                % ("<br>".join(esc(l) for l in e["new"].split("\n")), get, hdr_html(e["hdr"]), ours_html(e["orig"])))
    plain = "%s\n\n%s\n________________________________\n%s\n\n%s\n" % (e["new"], get_plain, hdr_plain(e["hdr"]), e["orig"])
    return html, plain


def apple(e):
    """Apple Mail on macOS: the attribution inside the blockquote's first div."""
    html = ('<html aria-label="message body"><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
            '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">%s<br id="lineBreakAtBeginningOfMessage"><div><br>'
            '<blockquote type="cite"><div>%s</div><br class="Apple-interchange-newline"><div><div>%s</div></div></blockquote></div><br></body></html>'
            % (lines_html(e["new"], "apple"), esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n\n%s\n\n%s\n" % (e["new"], e["attr"], q(e["orig"], "> ", "> "))
    return html, plain


def ios(e):
    """iPhone/iPad Mail: the attribution in a blockquote of its own."""
    tag = e.get("tag", "Sent from my iPhone")
    html = ('<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body dir="auto">%s'
            '<br id="lineBreakAtBeginningOfSignature"><div dir="ltr">%s</div><div dir="ltr"><br><blockquote type="cite">%s<br><br></blockquote></div>'
            '<blockquote type="cite"><div dir="ltr">\ufeff%s</div></blockquote></body></html>'
            % (lines_html(e["new"], "apple"), esc(tag), esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n\n%s\n\n> %s\n> \n%s\n" % (e["new"], tag, e["attr"], q("\ufeff" + e["orig"], "> ", "> "))
    return html, plain


def thunderbird(e):
    sig = e.get("sig")
    sig_html = ('    <pre class="moz-signature" cols="72">-- \n%s</pre>\n' % esc(sig)) if sig else ""
    sig_plain = ("-- \n%s\n" % sig) if sig else ""
    cite = ('    <div class="moz-cite-prefix">%s<br>\n    </div>\n    <blockquote type="cite" cite="mid:%s">%s</blockquote>\n'
            % (link_addr(e["attr"]), "0e1d2c3b4a@mail.example.com", ours_html(e["orig"])))
    if e.get("reply_below"):
        body = cite + "    <br>\n" + lines_html(e["new"], "p-tb") + "\n" + sig_html
        plain = "%s\n%s\n\n%s\n\n%s" % (e["attr"], q(e["orig"]), e["new"], sig_plain)
    else:
        body = lines_html(e["new"], "p-tb") + "\n" + sig_html + cite
        plain = "%s\n\n%s\n%s\n%s\n" % (e["new"], sig_plain, e["attr"], q(e["orig"]))
    html = ('<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n  </head>\n  <body>\n%s  </body>\n</html>\n' % body)
    return html, plain


def yahoo(e):
    pre = e.get("ydp", "")
    html = ('<html><head></head><body><div class="ydp9e3c2a1byahoo-style-wrap" style="font-family:Helvetica Neue, Helvetica, Arial, sans-serif;font-size:13px;"><div></div>\n'
            '        %s<div><br></div>\n        \n        </div><div id="%syahoo_quoted_3364512270" class="%syahoo_quoted">\n'
            '            <div style="font-family:\'Helvetica Neue\', Helvetica, Arial, sans-serif;font-size:13px;color:#26282a;">\n                \n'
            '                <div>\n                    %s\n                </div>\n                <div><br></div>\n                <div><br></div>\n'
            '                <div><div id="yiv5123456789"><div>%s</div></div></div>\n            </div>\n        </div></body></html>'
            % (lines_html(e["new"], "yahoo"), pre, pre, esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n\n    %s  \n \n %s\n" % (e["new"], e["attr"], "\n".join(" " + l for l in e["orig"].split("\n")))
    return html, plain


def yahoo_android(e):
    a1, a2 = e["attr2"]
    html = ('%s<br><br><div id="ymail_android_signature"><a id="ymail_android_signature_link" href="https://mail.onelink.example/107872968?pid=nativeplacement&amp;c=Global_Acquisition_YMktg_315_Internal_EmailSignature">Sent from Yahoo Mail on Android</a></div> <div> <br> '
            '<blockquote style="margin: 0 0 20px 0;"> <div style="font-family:Roboto, sans-serif; color:#6D00F6;"> <div>%s</div><div>%s</div> </div> '
            '<div style="padding: 10px 0 0 20px; margin: 10px 0 0 0; border-left: 1px solid #6D00F6;"> %s </div> </blockquote></div>'
            % ("<br>".join(esc(l) for l in e["new"].split("\n")), esc(a1), esc(a2), ours_html(e["orig"])))
    plain = "%s\n\nSent from Yahoo Mail on Android \n \n  %s %s   %s  \n" % (e["new"], a1, a2, " ".join(e["orig"].split("\n")))
    return html, plain


def yandex(e):
    sig = e.get("sig")
    sig_html = ("<div> </div><div>-- </div>%s" % "".join("<div>%s</div>" % esc(l) for l in sig.split("\n"))) if sig else ""
    html = ("<div>%s</div>%s<div> </div><div> </div><div>%s</div><blockquote>%s</blockquote>"
            % ("</div><div>".join(esc(l) if l else "\u00a0" for l in e["new"].split("\n")), sig_html, esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n%s\n\n%s\n%s\n" % (e["new"], ("\n-- \n" + sig) if sig else "", e["attr"], q(e["orig"]))
    return html, plain


def mailru(e):
    sig = e.get("sig")
    sig_html = ('<div data-signature-widget="container"><div data-signature-widget="content"><div>--<br>%s</div></div></div>'
                % "<br>".join(esc(l) for l in sig.split("\n"))) if sig else ""
    html = ('<HTML><BODY>%s<div>&nbsp;</div>%s<div>&nbsp;</div><div>&nbsp;</div>'
            '<blockquote style="border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;">%s<br>&nbsp;<div id=""><div class="js-helper js-readmsg-msg"><div><div id="style_17096311210000000001_BODY">%s</div></div></div></div></blockquote></BODY></HTML>'
            % ("".join("<div>%s</div>" % (esc(l) if l else "&nbsp;") for l in e["new"].split("\n")), sig_html,
               link_addr(e["attr"]).replace('href="mailto:', 'href="/compose?To='), ours_html(e["orig"])))
    plain = "%s\n%s \n \n \n>%s\n>\n%s\n" % (e["new"], ("--\n" + sig + "\n") if sig else "", e["attr"], q(e["orig"], ">", ">"))
    return html, plain


def zoho(e):
    sig = e.get("sig")
    sig_html = ('<div id="Zm-_Id_-Sgn" data-zbluepencil-ignore="true" data-sigid="5551234000000012345"><div>%s<br></div></div>'
                % "<br>".join(esc(l) for l in sig.split("\n"))) if sig else ""
    html = ('<!DOCTYPE html><html><head><meta content="text/html;charset=UTF-8" http-equiv="Content-Type"></head><body ><div style="font-family: Verdana, Arial, Helvetica, sans-serif; font-size: 10pt;">'
            '%s<div><br></div>%s<div class="zmail_extra_hr" style="border-top: 1px solid rgb(204, 204, 204); height: 0px; margin-top: 10px; margin-bottom: 10px; line-height: 0px;"><br></div>'
            '<div class="zmail_extra" data-zbluepencil-ignore="true"><div><br></div><div id="Zm-_Id_-Sgn1">%s<br></div><div><br></div>'
            '<blockquote style="margin: 0px;"><div>%s</div></blockquote></div><div><br></div></div><br></body></html>'
            % (lines_html(e["new"], "zoho"), sig_html, e["attr_html"], ours_html(e["orig"])))
    plain = "%s\n\n%s\n\n\n\n%s\n\n\n\n%s\n" % (e["new"], sig or "", e["attr"], e["orig"])
    return html, plain


def proton(e):
    html = ('<div style="font-family: Arial, sans-serif; font-size: 14px;">%s</div><div style="font-family: Arial, sans-serif; font-size: 14px;"><br></div>\n'
            '<div class="protonmail_signature_block" style="font-family: Arial, sans-serif; font-size: 14px;">\n    <div class="protonmail_signature_block-user protonmail_signature_block-empty">\n        \n            </div>\n    \n'
            '            <div class="protonmail_signature_block-proton">\n        %s\n    </div>\n</div>\n'
            '<div style="font-family: Arial, sans-serif; font-size: 14px;"><br></div><div class="protonmail_quote">\n        %s<br>\n'
            '        <blockquote class="protonmail_quote" type="cite">\n            %s\n        </blockquote><br>\n    </div>'
            % ("<br>".join(esc(l) for l in e["new"].split("\n")),
               e.get("tag_html", 'Sent with <a target="_blank" href="https://proton.example/" rel="noopener noreferrer">Proton Mail</a> secure email.'),
               esc(e["attr"]), ours_html(e["orig"])))
    tag = re.sub(r"<[^>]+>", "", e.get("tag_html", "Sent with Proton Mail secure email."))
    plain = "%s\n\n%s\n\n%s\n\n%s\n" % (e["new"], tag, e["attr"], q(e["orig"]))
    return html, plain


def gmx(e):
    rows = "<br/>\n".join("<b>%s:</b>&nbsp;%s" % (esc(k), esc(v)) for k, v in e["hdr"])
    html = ('<html><head></head><body><div style="font-family: Verdana;font-size: 12.0px;">%s\n<div>&nbsp;\n<div>&nbsp;\n'
            '<div name="quote" style="margin:10px 5px 5px 10px; padding: 10px 0 10px 10px; border-left:2px solid #C3D9E5; word-wrap: break-word; -webkit-nbsp-mode: space; -webkit-line-break: after-white-space;">\n'
            '<div style="margin:0 0 10px 0;">%s</div>\n\n<div name="quoted-content">%s</div>\n</div>\n</div>\n</div></div></body></html>\n'
            % (lines_html(e["new"], "gmx"), rows, ours_html(e["orig"])))
    plain = "%s\n \n \n\n%s\n%s\n" % (e["new"], hdr_plain(e["hdr"]), e["orig"])
    return html, plain


def fastmail(e):
    sig = e.get("sig")
    sig_html = ('<div id="sig69123456"><div class="signature">-- <br></div><div class="signature">%s<br></div></div><div><br></div>'
                % "<br></div><div class=\"signature\">".join(esc(l) for l in sig.split("\n"))) if sig else ""
    html = ('<!DOCTYPE html><html><head><title></title><style type="text/css">p.MsoNormal,p.MsoNoSpacing{margin:0}</style></head><body>'
            '%s<div><br></div>%s<div>%s<br></div><blockquote type="cite" id="qt" style="">%s</blockquote><div><br></div></body></html>'
            % ("".join("<div>%s<br></div>" % esc(l) if l else "<div><br></div>" for l in e["new"].split("\n")), sig_html, esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n\n%s%s\n%s\n" % (e["new"], ("-- \n" + sig + "\n\n") if sig else "", e["attr"], q(e["orig"]))
    return html, plain


def samsung(e):
    tag = e.get("tag", "Sent from my Galaxy")
    sep = e.get("sep", "-------- Original message --------")
    rows = "".join("<div>%s: %s </div>" % (esc(k), esc(v)) for k, v in e["hdr"])
    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body>%s<div dir="auto"><br></div>'
            '<div id="composer_signature" dir="auto"><div style="font-size:85%%;color:#575757" dir="auto">%s</div></div><div dir="auto"><br></div><div><br></div>'
            '<div align="left" dir="auto" style="font-size:100%%;color:#000000"><div>%s</div>%s<div><br></div></div>%s</body></html>'
            % (lines_html(e["new"], "auto"), esc(tag), esc(sep), rows, ours_html(e["orig"])))
    plain = "%s\n\n\n\n%s\n\n\n%s\n%s\n\n%s\n" % (e["new"], tag, sep, "\n".join("%s: %s " % kv for kv in e["hdr"]), e["orig"])
    return html, plain


def notes(e):
    rows = "".join('<tr valign=top><td width="%s"><font size=1 color=#5f5f5f face="sans-serif">%s:</font><td><font size=1 face="sans-serif">%s</font>'
                   % ("17%" if i == 0 else "", esc(k), esc(v)) for i, (k, v) in enumerate(e["hdr"]))
    html = ('%s<br><br><br><br><table width=100%%>%s</table><br><hr noshade><br><br><br>%s'
            % (lines_html(e["new"], "font"), rows, "".join('<tt><font size=2>%s</font></tt><br>' % esc(l) if l else "<br>" for l in e["orig"].split("\n"))))
    plain = "%s\n\n\n\n%s\n\n\n\n%s\n" % (e["new"], "\n".join("%s:\t%s" % kv for kv in e["hdr"]), e["orig"])
    return html, plain


def roundcube(e):
    sig = e.get("sig")
    sig_html = ('<div id="signature">-- <br />%s</div>' % "<br />".join(esc(l) for l in sig.split("\n"))) if sig else ""
    html = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8" /></head><body style=\'font-size: 10pt; font-family: Verdana,Geneva,sans-serif\'>\n'
            '%s\n%s\n<p id="reply-intro">%s</p>\n<blockquote type="cite" style="padding: 0 0.4em; border-left: #1010ff 2px solid; margin: 0">\n'
            '<!-- html ignored --><!-- head ignored --><!-- meta ignored -->\n<div class="pre" style="margin: 0; padding: 0; font-family: monospace">%s</div>\n</blockquote>\n</body></html>\n'
            % ("\n".join("<p>%s</p>" % "<br />".join(esc(l) for l in p.split("\n")) for p in e["new"].split("\n\n")), sig_html, esc(e["attr"]),
               "<br />".join(esc(l) for l in e["orig"].split("\n"))))
    plain = "%s\n\n%s\n%s\n%s\n" % (e["new"], ("-- \n" + sig + "\n") if sig else "", e["attr"], q(e["orig"]))
    return html, plain


def spark(e):
    sig = e.get("sig")
    html = ('<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n<title></title>\n</head>\n<body>\n<div name="messageBodySection">\n%s\n</div>\n'
            '<div name="messageSignatureSection"><br />\n<div class="matchFont">%s</div>\n</div>\n<div name="messageReplySection">%s<br />\n'
            '<blockquote type="cite" style="border-left-color: grey; border-left-width: thin; border-left-style: solid; margin: 5px 5px;padding-left: 10px;">%s</blockquote>\n</div>\n</body>\n</html>\n'
            % (lines_html(e["new"], "auto"), "<br />".join(esc(l) for l in (sig or "").split("\n")), esc(e["attr"]), ours_html(e["orig"])))
    plain = "%s\n\n%s\n%s\n%s\n" % (e["new"], sig or "", e["attr"], q(e["orig"]))
    return html, plain


RENDER = {
    "gmail": gmail, "outlook-desktop": outlook_desktop, "outlook-mac": outlook_mac, "outlook-web": outlook_web,
    "outlook-mobile": outlook_mobile, "apple": apple, "ios": ios, "thunderbird": thunderbird, "yahoo": yahoo,
    "yahoo-android": yahoo_android, "yandex": yandex, "mailru": mailru, "zoho": zoho, "proton": proton, "gmx": gmx,
    "fastmail": fastmail, "samsung": samsung, "notes": notes, "roundcube": roundcube, "spark": spark,
}
