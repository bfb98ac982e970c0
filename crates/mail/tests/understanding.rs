//! "Understanding" inbound mail: charsets, encoded words, file names, attached
//! messages, winmail.dat, hostile HTML, inline images and hostile structure.
//!
//! Fixtures live in `tests/fixtures/understanding/`; they were written for
//! these tests (texts hand-written, then encoded in the charset each one is
//! about; `winmail.eml` carries a TNEF stream built attribute by attribute).

mod common;

use std::time::{Duration, Instant};

use postdesk_mail::{
    MAX_ATTACHMENTS, Mailbox, ParseError, ParsedEmail, cid_references, match_content_id, parse,
    rewrite_cid_sources, safe_filename, sanitize_html,
};

fn raw(name: &str) -> Vec<u8> {
    common::fixture(&format!("understanding/{name}"))
}

fn parsed(name: &str) -> ParsedEmail {
    parse(&raw(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(email: &ParsedEmail) -> Vec<&str> {
    email
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect()
}

// ---------------------------------------------------------------- charsets

/// One email per charset: RFC 2047 subject and From name in that charset, and
/// a text/plain body in it (7bit, 8bit, quoted-printable or base64).
#[test]
fn bodies_and_headers_in_legacy_charsets() {
    let cases = [
        (
            "charset_iso-2022-jp.eml",
            "ご注文の件について",
            "田中 太郎",
            "田中様\n\nお問い合わせありがとうございます。\n注文番号は１２３４です。\n",
        ),
        (
            "charset_gb2312.eml",
            "关于发票的问题",
            "王小明",
            "您好，我的发票有问题。\n请尽快回复，谢谢！\n",
        ),
        (
            // Characters outside GBK (four-byte GB18030 sequences).
            "charset_gb18030.eml",
            "订单 𠀀 状态",
            "李华",
            "你好 😀，订单号 𠀀 已经发货了吗？\n",
        ),
        (
            "charset_windows-1250.eml",
            "Dotaz k objednávce",
            "Jiří Dvořák",
            "Dobrý den,\npříliš žluťoučký kůň úpěl ďábelské ódy.\n„Děkuji“ – Jiří\n",
        ),
        (
            "charset_windows-1251.eml",
            "Не могу войти",
            "Иван Петров",
            "Здравствуйте!\nНе могу войти в личный кабинет — пишет «ошибка».\n",
        ),
        (
            // 0x80-0x9F: euro sign, curly quotes, dash, ellipsis, oe ligature.
            "charset_windows-1252.eml",
            "Facture – “urgent”",
            "François Müller",
            "“Bonjour” – la facture coûte 12 € ; Grüße aus Köln… œuvre\n",
        ),
        (
            "charset_koi8-r.eml",
            "Возврат товара",
            "Ольга",
            "Добрый день! Прошу оформить возврат товара.\n",
        ),
        (
            // "ソ" is 0x83 0x5C: its second byte is a backslash.
            "charset_shift_jis.eml",
            "ソフトウェアの表示について",
            "佐藤 花子",
            "いつもお世話になっております。\nソフトウェアの表示が崩れます。\n",
        ),
        (
            // Outlook's label for EUC-KR.
            "charset_euc-kr.eml",
            "환불 요청드립니다",
            "김민수",
            "안녕하세요.\n지난주에 주문한 상품의 환불을 요청드립니다.\n",
        ),
        (
            "charset_big5.eml",
            "請問出貨時間",
            "陳大文",
            "您好，請問訂單何時出貨？\n謝謝！\n",
        ),
    ];
    for (file, subject, from_name, text) in cases {
        let email = parsed(file);
        assert_eq!(email.subject, subject, "{file}");
        assert_eq!(
            email.from,
            Some(Mailbox::named(from_name, "customer@example.org")),
            "{file}"
        );
        assert_eq!(email.text, text, "{file}");
        assert!(!email.text.contains('\u{FFFD}'), "{file}");
    }
}

#[test]
fn iso_8859_parts_in_one_message() {
    let email = parsed("charset_iso8859_parts.eml");
    // Two encoded words in different charsets; the space between them is not
    // text (RFC 2047), the one inside the second word is.
    assert_eq!(email.subject, "Grüße и привет");
    assert_eq!(
        email.text,
        "Zażółć gęślą jaźń.\nПривет из Москвы.\nΚαλημέρα από την Αθήνα.\nŒuvre complète : 5 €.\nİstanbul'dan selamlar: ğüşöç."
    );
    assert!(email.attachments.is_empty());
}

#[test]
fn utf8_declared_as_us_ascii_or_latin1_is_utf8() {
    let email = parsed("utf8_declared_us-ascii.eml");
    assert_eq!(email.text, "Grüße aus Köln – 10 € 😀\n");

    // Both alternatives lie: text/plain says iso-8859-1, text/html says
    // windows-1252; both are UTF-8.
    let email = parsed("utf8_declared_iso-8859-1.eml");
    assert_eq!(email.text, "Café crème, s’il vous plaît.");
    assert_eq!(
        email.html.as_deref(),
        Some("<p>Café crème, s’il vous plaît.</p>")
    );
}

#[test]
fn declared_utf8_that_is_not_utf8_is_detected() {
    let email = parsed("utf8_declared_but_windows-1252.eml");
    assert_eq!(email.text, "Problème réglé, merci beaucoup. À bientôt !\n");
}

#[test]
fn undeclared_charsets() {
    // No Content-Type at all; raw UTF-8 in Subject and From (RFC 6532).
    let email = parsed("undeclared_utf8.eml");
    assert_eq!(email.subject, "Spørgsmål om ordre ✓");
    assert_eq!(
        email.from,
        Some(Mailbox::named("Zoë Ærøskøbing", "zoe@example.dk"))
    );
    assert_eq!(email.text, "Hej, hvor er min ordre? – Zoë\n");

    // No charset, windows-1252 bytes, raw 8-bit Latin-1 header values.
    let email = parsed("undeclared_windows-1252.eml");
    assert_eq!(email.subject, "Rückfrage zur Lieferung – dringend");
    assert_eq!(
        email.from,
        Some(Mailbox::named("Jürgen Groß", "juergen@example.de"))
    );
    assert_eq!(
        email.text,
        "Sehr geehrte Damen und Herren,\nwo bleibt meine Bestellung? „Schnell“ wäre schön – danke.\nJürgen Groß\n"
    );

    // No charset, windows-1251 bytes: detected, not read as windows-1252.
    let email = parsed("undeclared_windows-1251.eml");
    assert_eq!(email.subject, "Оплата");
    assert_eq!(
        email.text,
        "Здравствуйте!\nЯ оплатил заказ неделю назад, но до сих пор не получил подтверждение. Пожалуйста, проверьте статус платежа и сообщите, когда будет отправка.\nС уважением, Сергей\n"
    );

    // A label nobody knows: treated as undeclared.
    assert_eq!(email_text("unknown_charset_label.eml"), "naïve café\n");
}

fn email_text(name: &str) -> String {
    parsed(name).text
}

#[test]
fn raw_iso_2022_jp_subject_without_encoded_words() {
    let email = parsed("raw_iso-2022-jp_subject.eml");
    assert_eq!(email.subject, "請求書の再発行");
    assert_eq!(email.text, "請求書を再発行してください。\n");
}

#[test]
fn html_meta_charset_when_mime_declares_none() {
    let email = parsed("html_meta_charset.eml");
    let html = email.html.as_deref().unwrap();
    assert_eq!(html, "<p>Добрый день!</p><p>Счёт во вложении.</p>");
    assert_eq!(email.text, "Добрый день!\n\nСчёт во вложении.\n");
}

/// Text attachments are not transcoded, whatever their charset.
#[test]
fn text_attachments_keep_their_bytes() {
    let raw = b"From: a@example.org\r\nSubject: csv\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee csv\r\n\
--b\r\nContent-Type: text/csv; charset=windows-1251\r\nContent-Disposition: attachment; filename=list.csv\r\n\r\n\
\xcf\xf0\xe8\xe2\xe5\xf2;1\r\n--b--\r\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.attachments[0].bytes, b"\xcf\xf0\xe8\xe2\xe5\xf2;1");
}

// ---------------------------------------------------------- RFC 2047 words

#[test]
fn encoded_words_in_address_headers_and_subject() {
    let email = parsed("encoded_words.eml");
    // A three-byte character split across two B-encoded words (folded).
    assert_eq!(email.subject, "日本語のお問い合わせ");
    // Encoded word inside a quoted display name.
    assert_eq!(
        email.from,
        Some(Mailbox::named("Jörg Müller", "joerg@example.de"))
    );
    assert_eq!(
        email.to,
        [
            // ISO-8859-1, Q encoding.
            Mailbox::named("René", "rene@example.fr"),
            // Declared ISO-8859-1, actually UTF-8.
            Mailbox::named("Café Owner", "owner@example.fr"),
            // KOI8-R word directly followed (no space) by a UTF-8 word.
            Mailbox::named("Иван & Co", "ivan@example.ru"),
        ]
    );
    // Group syntax with an encoded name.
    assert_eq!(
        email.cc,
        [
            Mailbox::named("Ана Мария", "a@example.org"),
            Mailbox::new("plain@example.org"),
        ]
    );
    // Unterminated encoded word: left as written, address intact.
    assert_eq!(
        email.reply_to,
        [Mailbox::named(
            "=?utf-8?Q?broken_no_end",
            "broken@example.org"
        )]
    );
}

#[test]
fn encoded_words_with_mixed_charsets() {
    let email = parsed("encoded_words_mixed_charsets.eml");
    // ISO-8859-1 + KOI8-R (whose text starts with a space) + text + Shift_JIS
    // word and UTF-8 word joined (whitespace between words dropped).
    assert_eq!(email.subject, "Grüße Привет and 日本€");
}

#[test]
fn malformed_encoded_words_stay_readable() {
    let email = parsed("encoded_words_malformed.eml");
    assert_eq!(
        email.subject,
        "Re: =?utf-8?Q?unterminated and =?bogus?X?abc?= or =?utf-8?B?!!!?= stay; ok"
    );
}

// --------------------------------------------------------------- file names

#[test]
fn attachment_file_names() {
    let email = parsed("filenames.eml");
    assert_eq!(email.text, "See attachments.");
    let long = email.attachments[13].filename.clone();
    assert_eq!(
        names(&email),
        [
            // RFC 2231 continuations, charset and language, mixed encoded and
            // plain segments.
            "Übersicht 2024.pdf",
            // RFC 2231 ISO-8859-1 with language.
            "résumé.pdf",
            // RFC 2047 inside a quoted name= (Outlook, Thunderbird).
            "Größe.xlsx",
            // ... declared ISO-8859-1 but UTF-8.
            "naïve.txt",
            // Raw 8-bit name=, decoded with the message's charset.
            "Laté.bin",
            // RFC 2231 continuations without charset.
            "split name.txt",
            // Encoded slashes: percent (RFC 2231), backslashes (RFC 2047),
            // literal %2f and %5C.
            "passwd",
            "win.ini",
            "secret.txt",
            // Right-to-left override removed.
            "invoicefdp.exe",
            // Windows device name.
            "_NUL.txt",
            // No hidden dot file.
            "htaccess",
            // Empty name: from the content type.
            "attachment.pdf",
            long.as_str(),
            // Division slash (looks like /).
            "a_b.png",
        ]
    );
    // 300+ bytes of RFC 2231 continuations: cut to 200 bytes, extension kept.
    assert!(long.len() <= 200, "{}", long.len());
    assert!(long.starts_with("Été-AAAA"), "{long}");
    assert!(long.ends_with("AAAA.pdf"), "{long}");
    for a in &email.attachments {
        assert_eq!(a.bytes, b"data");
        assert!(!a.filename.is_empty());
        assert!(!a.filename.contains(['/', '\\']), "{}", a.filename);
    }
}

#[test]
fn safe_filename_rules() {
    let cases = [
        ("..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("a%5cb%5Cc.txt", "c.txt"),
        ("100%25 sure.txt", "100%25 sure.txt"),
        ("ok\u{FF0F}..\u{FF0F}x.txt", "ok_.._x.txt"),
        ("a\u{29F8}b\u{FE68}c", "a_b_c"),
        ("zero\u{200B}width\u{2060}\u{FEFF}.txt", "zerowidth.txt"),
        ("soft\u{AD}hyphen.txt", "softhyphen.txt"),
        ("photo\u{2066}gpj.exe\u{2069}", "photogpj.exe"),
        ("\u{7F}\u{85}del.txt", "del.txt"),
        ("LPT9.log", "_LPT9.log"),
        ("com¹.txt", "_com¹.txt"),
        ("CON .txt", "_CON .txt"),
        ("conin$", "_conin$"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("company.txt", "company.txt"),
        ("LPT10.txt", "LPT10.txt"),
        ("report.pdf.", "report.pdf"),
        ("...", "attachment"),
        (" \t ", "attachment"),
        ("\u{202E}", "attachment"),
        ("%2F", "attachment"),
    ];
    for (input, expected) in cases {
        assert_eq!(safe_filename(input), expected, "input {input:?}");
    }
    let long = format!("{}.tar.gz", "x".repeat(500));
    let safe = safe_filename(&long);
    assert!(safe.len() <= 200 && safe.ends_with("x.gz"), "{safe}");
}

// ----------------------------------------------------------- nested message

#[test]
fn forwarded_message_stays_one_attachment() {
    let raw = raw("forwarded.eml");
    let inner = raw_inner();
    let email = parse(&raw).unwrap();
    assert_eq!(email.subject, "Fwd: Rechnung");
    // The outer body, not the inner one.
    assert_eq!(email.text, "Please see the forwarded message.");
    assert_eq!(names(&email), ["Rechnung März.eml", "outer.txt"]);
    let fwd = &email.attachments[0];
    assert_eq!(fwd.content_type, "message/rfc822");
    assert!(!fwd.inline);
    // Byte for byte the inner message (the CRLF before the boundary belongs
    // to the boundary), including its own nested message/rfc822 header.
    assert_eq!(fwd.bytes, inner[..inner.len() - 2]);
    assert_eq!(fwd.size, inner.len() - 2);
    assert!(String::from_utf8_lossy(&fwd.bytes).contains("Content-Type: message/rfc822"));
    // The inner message's PDF and message are not flattened into the outer.
    assert!(!names(&email).contains(&"inner-invoice.pdf"));
    assert_eq!(email.attachments[1].bytes, b"outer file");

    // The attachment parses on its own, with its own parts.
    let inner_email = parse(&fwd.bytes).unwrap();
    assert_eq!(inner_email.subject, "Rechnung März");
    assert_eq!(inner_email.text, "Inner body text.");
    assert_eq!(names(&inner_email), ["inner-invoice.pdf", "Deeper.eml"]);
    assert_eq!(
        inner_email.attachments[0].bytes,
        b"%PDF-1.4 inner invoice\n"
    );
}

fn raw_inner() -> Vec<u8> {
    raw("forwarded_inner.eml")
}

#[test]
fn base64_encoded_forwarded_message() {
    let email = parsed("forwarded_base64.eml");
    assert_eq!(email.text, "Forwarded as attachment.\n");
    assert_eq!(names(&email), ["original.eml"]);
    let fwd = &email.attachments[0];
    assert_eq!(fwd.content_type, "message/rfc822");
    assert_eq!(fwd.bytes, raw_inner());
}

#[test]
fn digest_parts_are_attached_messages() {
    let email = parsed("digest.eml");
    assert_eq!(email.text, "Today's topics: two messages.");
    assert_eq!(names(&email), ["First topic.eml", "Second topic.eml"]);
    for a in &email.attachments {
        assert_eq!(a.content_type, "message/rfc822");
    }
    assert_eq!(
        email.attachments[1].bytes,
        b"From: two@example.org\r\nSubject: Second topic\r\n\r\nSecond message body."
    );
}

#[test]
fn attached_message_without_subject_or_name() {
    let raw = b"From: a@example.org\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n\
--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: Message/RFC822\n\nFrom: b@example.org\n\nno subject\n--b--\n";
    let email = parse(raw).unwrap();
    assert_eq!(names(&email), ["attachment.eml"]);
    assert_eq!(email.attachments[0].content_type, "message/rfc822");
    assert_eq!(
        email.attachments[0].bytes,
        b"From: b@example.org\n\nno subject"
    );
}

// ----------------------------------------------------------------- winmail

#[test]
fn winmail_dat_is_unpacked() {
    let email = parsed("winmail.eml");
    assert_eq!(email.text, "Please find the report attached.");
    assert_eq!(names(&email), ["Quarterly report – 2024.pdf", "notes.txt"]);
    let pdf = &email.attachments[0];
    // Long name from PR_ATTACH_LONG_FILENAME (the title is QUARTE~1.PDF),
    // type from PR_ATTACH_MIME_TAG.
    assert_eq!(pdf.content_type, "application/pdf");
    let mut expected = b"%PDF-1.4\n% quarterly report\n".to_vec();
    expected.extend(0..=255u8);
    assert_eq!(pdf.bytes, expected);
    assert_eq!(pdf.size, expected.len());
    // No long name, no MIME tag: title and extension.
    let notes = &email.attachments[1];
    assert_eq!(notes.content_type, "text/plain");
    assert_eq!(notes.bytes, b"Notizen f\xfcr das Meeting\r\n");
    assert!(!notes.inline);
}

#[test]
fn unreadable_winmail_dat_is_kept() {
    // The stream carries an attribute the tnef crate does not know.
    let email = parsed("winmail_unreadable.eml");
    assert_eq!(names(&email), ["winmail.dat"]);
    let dat = &email.attachments[0];
    assert_eq!(dat.content_type, "application/ms-tnef");
    assert!(dat.bytes.starts_with(b"\x78\x9f\x3e\x22"));
}

// -------------------------------------------------------------------- HTML

#[test]
fn hostile_html_is_sanitised_keeping_structure() {
    let email = parsed("hostile_html.eml");
    let html = email.html.as_deref().unwrap();
    for bad in [
        "<script",
        "document.cookie",
        "steal",
        "alert",
        "msgbox",
        "javascript",
        "vbscript",
        "data:",
        "<style",
        "position",
        "fixed",
        "z-index",
        "<link",
        "<meta",
        "refresh",
        "<base",
        "<iframe",
        "iframe fallback",
        "<object",
        "<embed",
        "<form",
        "<input",
        "<button",
        "formaction",
        "<svg",
        "svg text",
        "<math",
        "<video",
        "poster",
        "<picture",
        "<source",
        "srcset",
        "onload",
        "onerror",
        "onclick",
        "onmouseover",
        "style=",
        "evil.example",
        "Hidden title",
        "/relative/path",
        "attacker-id",
        "evil-class",
        "_self",
    ] {
        assert!(!html.contains(bad), "{bad:?} survived in {html}");
    }
    for good in [
        "<h1>Weekly offers</h1>",
        "<h2>Subtitle</h2>",
        "<strong>great</strong> <em>news</em>",
        "<ul><li>First item</li><li>Second item</li></ul>",
        r#"<ol start="3"><li>Third</li></ol>"#,
        r#"<table border="1" cellpadding="4"><thead><tr><th>Product</th><th>Price</th></tr></thead>"#,
        r#"<td align="right">9 €</td>"#,
        r#"<blockquote type="cite">Quoted earlier message</blockquote>"#,
        r#"<div class="gmail_quote">Gmail quote marker</div>"#,
        r#"<div id="divRplyFwdMsg">Outlook reply header</div>"#,
        r#"<a href="https://shop.example/offers" target="_blank" rel="noopener noreferrer">Offers</a>"#,
        r#"<a href="mailto:sales@shop.example" target="_blank" rel="noopener noreferrer">mail us</a>"#,
        r#"<img src="https://tracker.example/open.gif" width="1" height="1">"#,
        r#"<img src="cid:logo@shop.example" alt="Logo">"#,
        "<div>Fake login overlay</div>",
        "<p>Paragraph with handlers</p>",
    ] {
        assert!(html.contains(good), "{good:?} missing from {html}");
    }
    assert!(email.remote_images);
    // Every link is neutralised the same way.
    assert_eq!(
        html.matches("<a ").count(),
        html.matches(r#"target="_blank" rel="noopener noreferrer""#)
            .count()
    );
}

#[test]
fn remote_images_flag() {
    for (html, remote) in [
        (r#"<img src="cid:a@b">"#, false),
        (r#"<img src="http://x.example/a.png">"#, true),
        (r#"<img src=" HTTPS://x.example/a.png">"#, true),
        (r#"<img src="//x.example/a.png">"#, false),
        (r#"<img srcset="https://x.example/a.png 2x">"#, false),
        (
            r#"<p style="background:url(https://x.example/a.png)">x</p>"#,
            false,
        ),
        (
            r#"<table background="https://x.example/a.png"><tr><td>x</td></tr></table>"#,
            false,
        ),
        (r#"<a href="https://x.example/">link</a>"#, false),
    ] {
        let (clean, flagged) = sanitize_html(html);
        assert_eq!(flagged, remote, "{html} -> {clean}");
        if !remote {
            assert!(!clean.contains("x.example/a.png"), "{html} -> {clean}");
        }
    }
}

// ------------------------------------------------------------ inline images

#[test]
fn cid_references_map_to_attachments() {
    let email = parsed("inline_images.eml");
    let html = email.html.as_deref().unwrap();
    assert_eq!(
        names(&email),
        [
            "first.png",
            "first-exact.png",
            "attachment.jpg",
            "signature.gif"
        ]
    );
    assert_eq!(
        cid_references(html),
        [
            "Shot1@Customer.Example",
            "shot 2@customer.example",
            "missing@customer.example"
        ]
    );
    // Exact match wins over a case-insensitive one; percent-escapes decoded.
    assert_eq!(email.cid_attachment("cid:Shot1@Customer.Example"), Some(1));
    assert_eq!(email.cid_attachment("cid:SHOT1@customer.example"), Some(0));
    assert_eq!(
        email.cid_attachment("cid:shot%202@customer.example"),
        Some(2)
    );
    assert_eq!(
        email.cid_attachment("<signature@customer.example>"),
        Some(3)
    );
    assert_eq!(email.cid_attachment("cid:missing@customer.example"), None);
    // Referenced by <img> means inline; a link or nothing does not.
    let inline: Vec<bool> = email.attachments.iter().map(|a| a.inline).collect();
    assert_eq!(inline, [false, true, true, false]);

    let shown = rewrite_cid_sources(html, |cid| {
        email
            .cid_attachment(cid)
            .map(|i| format!("/api/v1/attachments/{}", 100 + i))
    });
    assert!(
        shown.contains(r#"<img src="/api/v1/attachments/101" alt="first">"#),
        "{shown}"
    );
    assert!(
        shown.contains(r#"<img src="/api/v1/attachments/102" alt="second">"#),
        "{shown}"
    );
    // Unknown ids and non-image references are left alone.
    assert!(
        shown.contains(r#"src="cid:missing@customer.example""#),
        "{shown}"
    );
    assert!(
        shown.contains(r#"href="cid:signature@customer.example""#),
        "{shown}"
    );
}

#[test]
fn match_content_id_for_stored_attachments() {
    let stored = [Some("<Logo@X>"), None, Some("logo@x")];
    assert_eq!(match_content_id("cid:logo@x", stored), Some(2));
    assert_eq!(match_content_id("logo@X", stored), Some(0));
    assert_eq!(match_content_id("cid:nothing", stored), None);
}

// -------------------------------------------------------------- robustness

/// Runs `parse` on a thread with a small stack and returns its result and
/// duration: the parser must not depend on the caller's stack size.
fn parse_on_small_stack(raw: Vec<u8>) -> (Result<ParsedEmail, ParseError>, Duration) {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let started = Instant::now();
            let result = parse(&raw);
            (result, started.elapsed())
        })
        .unwrap()
        .join()
        .unwrap()
}

const SLOW: Duration = Duration::from_secs(20);

#[test]
fn deeply_nested_attached_messages() {
    // 20,000 message/rfc822 levels overflowed the stack (a process abort)
    // before attached messages were kept opaque.
    let mut deep = String::from("From: a@example.org\r\nSubject: deep\r\n");
    for _ in 0..20_000 {
        deep.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    deep.push_str("Subject: innermost\r\n\r\nhi\r\n");
    let (email, took) = parse_on_small_stack(deep.clone().into_bytes());
    let email = email.unwrap();
    assert_eq!(email.subject, "deep");
    assert_eq!(email.attachments.len(), 1);
    assert_eq!(email.attachments[0].content_type, "message/rfc822");
    assert!(took < SLOW, "{took:?}");

    // The same hidden inside a base64-encoded attached message.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&deep);
    let wrapped = format!(
        "From: a@example.org\r\nSubject: wrapped\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
    );
    let (email, took) = parse_on_small_stack(wrapped.into_bytes());
    let email = email.unwrap();
    assert_eq!(email.attachments.len(), 1);
    assert_eq!(email.attachments[0].bytes, deep.as_bytes());
    assert!(took < SLOW, "{took:?}");

    // Nested digests and multiparts holding messages.
    let mut digests = String::from("From: a@example.org\r\nSubject: digests\r\n");
    let mut mixed = String::from("From: a@example.org\r\nSubject: mixed\r\n");
    for i in 0..5_000 {
        digests.push_str(&format!(
            "Content-Type: multipart/digest; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n\r\n"
        ));
        mixed.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"m{i}\"\r\n\r\n--m{i}\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    for raw in [digests, mixed] {
        let (email, took) = parse_on_small_stack(raw.into_bytes());
        assert!(email.is_ok());
        assert!(took < SLOW, "{took:?}");
    }
}

#[test]
fn html_nested_up_to_the_limit_on_a_small_stack() {
    for (open, close) in [
        ("<div>", "</div>"),
        ("<blockquote>", "</blockquote>"),
        ("<table><tr><td>", "</td></tr></table>"),
    ] {
        let raw = format!(
            "From: a@example.org\r\nSubject: nested\r\nContent-Type: text/html\r\n\r\n{}<b>deep</b>{}",
            open.repeat(990),
            close.repeat(990)
        );
        let (email, took) = parse_on_small_stack(raw.into_bytes());
        let email = email.unwrap();
        assert!(email.html.unwrap().contains("<b>deep</b>"));
        assert!(
            email.text.contains("deep"),
            "{open}: {:?}",
            &email.text[..email.text.len().min(300)]
        );
        assert!(took < SLOW, "{took:?}");
    }
}

#[test]
fn thousands_of_parts_are_bounded() {
    let mut raw = String::from(
        "From: a@example.org\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
    );
    for i in 0..5_000 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: image/png\r\nContent-ID: <c{i}@x>\r\n\r\npng{i}\r\n"
        ));
    }
    raw.push_str("--b\r\nContent-Type: text/html\r\n\r\n");
    for i in 0..5_000 {
        raw.push_str(&format!("<img src=\"cid:c{i}@x\">"));
    }
    raw.push_str("\r\n--b--\r\n");
    let (email, took) = parse_on_small_stack(raw.into_bytes());
    let email = email.unwrap();
    assert_eq!(email.attachments.len(), MAX_ATTACHMENTS);
    assert!(email.truncated);
    assert!(email.attachments.iter().all(|a| a.inline));
    assert_eq!(email.attachments[999].bytes, b"png999");
    assert!(took < SLOW, "{took:?}");
}

#[test]
fn huge_headers_and_many_encoded_words() {
    let cases = [
        format!(
            "From: a@example.org\r\nSubject: {}\r\nTo: {}\r\n\r\nx",
            "a".repeat(2_000_000),
            "a@example.org, ".repeat(50_000)
        ),
        format!(
            "From: {}<a@example.org>\r\nSubject: {}\r\n\r\nx",
            "=?iso-8859-1?q?=C3=A9?= ".repeat(50_000),
            "=?utf-8?q?a?= ".repeat(100_000)
        ),
        format!(
            "From: a@example.org\r\nSubject: {}\r\n\r\nx",
            "=?".repeat(500_000)
        ),
        format!(
            "From: a@example.org\r\n{}\r\nx",
            (0..50_000)
                .map(|i| format!("X-Header-{i}: value\r\n"))
                .collect::<String>()
        ),
    ];
    for raw in cases {
        let (email, took) = parse_on_small_stack(raw.into_bytes());
        let email = email.unwrap();
        assert_eq!(
            email.from.map(|m| m.email).as_deref(),
            Some("a@example.org")
        );
        assert!(took < SLOW, "{took:?}");
    }
}

#[test]
fn huge_bodies_are_cut() {
    // Undeclared windows-1252, 6 MiB.
    let mut raw =
        b"From: a@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    for _ in 0..400_000 {
        raw.extend_from_slice(b"Gr\xfc\xdfe aus K\xf6ln.\r\n");
    }
    let (email, took) = parse_on_small_stack(raw);
    let email = email.unwrap();
    assert!(email.truncated);
    assert!(email.text.len() <= postdesk_mail::MAX_TEXT_BYTES);
    assert!(
        email.text.starts_with("Grüße aus Köln.\nGrüße"),
        "{}",
        &email.text[..40]
    );
    assert!(took < SLOW, "{took:?}");

    let html = format!(
        "From: a@example.org\r\nSubject: big\r\nContent-Type: text/html\r\n\r\n{}",
        "<p>x".repeat(300_000)
    );
    let (email, took) = parse_on_small_stack(html.into_bytes());
    let email = email.unwrap();
    assert!(email.html.is_some());
    assert!(took < SLOW, "{took:?}");
}

/// Prefixes and mangled variants of every fixture here parse without
/// panicking (and a prefix that starts with a header field always parses).
#[test]
fn truncated_and_mangled_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/understanding");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25);
    for path in files {
        let raw = std::fs::read(&path).unwrap();
        for end in (0..=raw.len()).step_by(13) {
            if let Err(ParseError::NotAnEmail(reason)) = parse(&raw[..end]) {
                assert!(end < 20, "{}[..{end}] rejected: {reason}", path.display());
            }
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        for mangled in [
            text.replace("--", "-"),
            text.replace("boundary=", "boundary"),
            text.replace("base64", "quoted-printable"),
            text.replace("?=", "?"),
            text.replace("=?", "?="),
            text.replace("rfc822", "digest"),
            text.replace("multipart/mixed", "multipart/digest"),
            text.replace("\r\n", "\n\n"),
        ] {
            let _ = parse(mangled.as_bytes());
        }
        // Raw bytes with every high byte flipped (not UTF-8 any more).
        let flipped: Vec<u8> = raw
            .iter()
            .map(|&b| if b >= 0x80 { b ^ 0x40 } else { b })
            .collect();
        let _ = parse(&flipped);
    }
}
