//! Turning text bytes of a declared (or undeclared, or wrongly declared)
//! charset into UTF-8.
//!
//! Mail in the wild is often mislabelled: UTF-8 bodies declared `us-ascii` or
//! `iso-8859-1`, Latin-1 bodies without any declaration, raw 8-bit header
//! values, ISO-2022-JP subjects without RFC 2047 encoding. The rules here, in
//! order:
//!
//! 1. A byte-order mark wins over any declaration.
//! 2. Valid UTF-8 that contains non-ASCII characters is UTF-8 when the
//!    declaration is missing, unknown, UTF-8, ASCII or a single-byte charset
//!    (Latin, Cyrillic, Greek, ...: legacy single-byte text practically never
//!    forms valid UTF-8), or when a declared multi-byte charset (Shift_JIS,
//!    GBK, Big5, EUC-KR, ISO-2022-JP, ...) cannot decode it without errors.
//! 3. A known declaration is used as declared (labels as in the WHATWG
//!    Encoding Standard, so `iso-8859-1`/`us-ascii` mean windows-1252,
//!    `gb2312` means GBK and `ks_c_5601-1987` means EUC-KR; labels unknown to
//!    it but known to mail-parser, such as `utf-7`, go through mail-parser).
//! 4. Otherwise (no or unknown declaration, or UTF-8 declared but not valid):
//!    ISO-2022-JP escape sequences in 7-bit text mean ISO-2022-JP; text that is
//!    mostly UTF-8 (at least as many valid non-ASCII characters as invalid
//!    sequences) is UTF-8 with replacement characters; then the caller's hint
//!    (the charset declared elsewhere in the message) when it decodes without
//!    errors; then a guess by `chardetng` (which falls back to windows-1252).

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, ISO_2022_JP, UTF_8};
use mail_parser::decoders::charsets::DecoderFnc;
use mail_parser::decoders::charsets::map::charset_decoder;

/// Bytes fed to the charset detector at most; the start of a text is enough.
const MAX_DETECT_BYTES: usize = 64 * 1024;

/// Hints for text without a usable charset declaration.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Hint<'a> {
    /// A charset declared elsewhere in the message (e.g. the body's, for raw
    /// 8-bit header values).
    pub encoding: Option<&'static Encoding>,
    /// Top-level domain of the sender, lowercase ASCII without dots (`ru`,
    /// `jp`): biases the detector the way a browser does.
    pub tld: Option<&'a [u8]>,
}

/// A charset label resolved to a decoder.
#[derive(Clone, Copy)]
pub(crate) enum Charset {
    /// Known to the WHATWG Encoding Standard (encoding_rs).
    Standard(&'static Encoding),
    /// Known only to mail-parser (UTF-7, some IBM and Mac code pages).
    Legacy(DecoderFnc),
}

impl Charset {
    /// Resolves a MIME charset label; `None` for unknown labels and for
    /// labels that encoding_rs maps to its "replacement" decoder (ISO-2022-KR,
    /// HZ, ...), which would turn the whole text into U+FFFD.
    pub(crate) fn for_label(label: &str) -> Option<Charset> {
        let label = label.trim().trim_matches(['"', '\'']).trim();
        if label.is_empty() || label.len() > 64 {
            return None;
        }
        if let Some(encoding) = Encoding::for_label_no_replacement(label.as_bytes()) {
            return Some(Charset::Standard(encoding));
        }
        // A few common spellings the Encoding Standard does not list.
        let lower = label.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "cp1250" | "cp-1250" => Some("windows-1250"),
            "cp1251" | "cp-1251" => Some("windows-1251"),
            "cp1253" => Some("windows-1253"),
            "cp1254" => Some("windows-1254"),
            "cp1255" => Some("windows-1255"),
            "cp1256" => Some("windows-1256"),
            "cp1257" => Some("windows-1257"),
            "cp1258" => Some("windows-1258"),
            "cp932" | "ms932" | "windows-31j" | "shift-jis" | "sjis" => Some("shift_jis"),
            "cp949" | "ms949" | "uhc" | "ks_c_5601" => Some("euc-kr"),
            "cp950" | "ms950" | "big5hkscs" => Some("big5"),
            "gb_2312" | "gb_2312-80" | "euc-cn" | "cp936" | "ms936" => Some("gbk"),
            "iso-2022-jp-1" | "iso-2022-jp-2" | "iso-2022-jp-3" => Some("iso-2022-jp"),
            "cp874" => Some("windows-874"),
            _ => None,
        };
        if let Some(encoding) = alias.and_then(|a| Encoding::for_label(a.as_bytes())) {
            return Some(Charset::Standard(encoding));
        }
        charset_decoder(label.as_bytes()).map(Charset::Legacy)
    }

    fn is_utf8(self) -> bool {
        matches!(self, Charset::Standard(e) if e == UTF_8)
    }

    /// Whether valid non-ASCII UTF-8 should override this declaration even
    /// when the declared charset decodes the bytes without errors.
    fn yields_to_valid_utf8(self) -> bool {
        match self {
            Charset::Standard(e) => e.is_single_byte() || e == UTF_8,
            // UTF-7 and the IBM/Mac code pages of mail-parser: 7-bit or
            // single-byte.
            Charset::Legacy(_) => true,
        }
    }
}

/// Decodes text bytes declared with `declared` (a MIME charset label, if any).
pub(crate) fn decode(bytes: &[u8], declared: Option<&str>, hint: Hint<'_>) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    if let Some((encoding, _)) = Encoding::for_bom(bytes) {
        return encoding.decode_with_bom_removal(bytes).0.into_owned();
    }
    match declared.and_then(Charset::for_label) {
        Some(charset) if !charset.is_utf8() => decode_declared(bytes, charset),
        // Declared UTF-8, or nothing usable declared.
        _ => decode_undeclared(bytes, hint),
    }
}

/// [`decode`] for owned bytes: text that needs no conversion (declared
/// UTF-8 or undeclared, valid UTF-8 without BOM or escape sequences) is
/// returned without a copy.
pub(crate) fn decode_owned(bytes: Vec<u8>, declared: Option<&str>, hint: Hint<'_>) -> String {
    let declared_other = declared
        .and_then(Charset::for_label)
        .is_some_and(|charset| !charset.is_utf8());
    if declared_other || Encoding::for_bom(&bytes).is_some() || bytes.contains(&0x1B) {
        return decode(&bytes, declared, hint);
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => decode(err.as_bytes(), declared, hint),
    }
}

/// Decodes with a declared charset, except that valid non-ASCII UTF-8 wins
/// over a declaration that is probably wrong (rule 2 above).
pub(crate) fn decode_declared(bytes: &[u8], charset: Charset) -> String {
    let is_ascii = bytes.is_ascii();
    let valid_utf8 = !is_ascii && std::str::from_utf8(bytes).is_ok();
    if valid_utf8 && charset.yields_to_valid_utf8() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match charset {
        Charset::Standard(encoding) => {
            if is_ascii && encoding.is_ascii_compatible() && !bytes.contains(&0x1B) {
                // ASCII is ASCII in every ASCII-compatible charset.
                return String::from_utf8_lossy(bytes).into_owned();
            }
            let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
            if had_errors && valid_utf8 {
                return String::from_utf8_lossy(bytes).into_owned();
            }
            text.into_owned()
        }
        Charset::Legacy(decoder) => decoder(bytes),
    }
}

/// Decodes bytes without a (usable) charset declaration (rule 4 above).
pub(crate) fn decode_undeclared(bytes: &[u8], hint: Hint<'_>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\u{1B}') => return text.to_string(),
        Ok(_) => {
            let (text, had_errors) = ISO_2022_JP.decode_without_bom_handling(bytes);
            if !had_errors {
                return text.into_owned();
            }
            return String::from_utf8_lossy(bytes).into_owned();
        }
        Err(_) => {}
    }
    if mostly_utf8(bytes) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    if let Some(encoding) = hint
        .encoding
        .filter(|e| e.is_ascii_compatible() && *e != UTF_8)
    {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if !had_errors {
            return text.into_owned();
        }
    }
    let encoding = detect(bytes, hint.tld);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

/// Guesses the legacy (non-UTF-8) encoding of `bytes`.
pub(crate) fn detect(bytes: &[u8], tld: Option<&[u8]>) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(MAX_DETECT_BYTES)];
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Allow);
    detector.feed(sample, true);
    // chardetng asserts that the TLD is lowercase ASCII without periods.
    let tld = tld.filter(|t| !t.is_empty() && t.iter().all(|b| b.is_ascii_lowercase()));
    detector.guess(tld, Utf8Detection::Deny)
}

/// At least one valid non-ASCII UTF-8 character, and no more invalid
/// sequences than valid non-ASCII characters (in the first 64 KiB).
fn mostly_utf8(bytes: &[u8]) -> bool {
    let mut valid = 0usize;
    let mut invalid = 0usize;
    let mut rest = &bytes[..bytes.len().min(MAX_DETECT_BYTES)];
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                valid += text.chars().filter(|c| !c.is_ascii()).count();
                break;
            }
            Err(err) => {
                let (good, bad) = rest.split_at(err.valid_up_to());
                // `good` is valid UTF-8 by construction.
                valid += String::from_utf8_lossy(good)
                    .chars()
                    .filter(|c| !c.is_ascii())
                    .count();
                invalid += 1;
                let skip = err.error_len().unwrap_or(bad.len()).max(1);
                rest = &bad[skip.min(bad.len())..];
                if rest.is_empty() {
                    break;
                }
            }
        }
    }
    valid > 0 && invalid <= valid
}

/// The charset named by an HTML document's `<meta charset>` or
/// `<meta http-equiv="Content-Type" content="...; charset=...">`, looked for
/// in its first 4 KiB.
pub(crate) fn html_meta_charset(html: &[u8]) -> Option<String> {
    let head = &html[..html.len().min(4096)];
    let lower: Cow<'_, str> = String::from_utf8_lossy(head).to_ascii_lowercase().into();
    let mut search = lower.as_ref();
    while let Some(pos) = search.find("<meta") {
        let tag_end = search[pos..].find('>').map_or(search.len(), |e| pos + e);
        let tag = &search[pos..tag_end];
        if let Some(at) = tag.find("charset=") {
            let value = tag[at + "charset=".len()..].trim_start_matches(['"', '\'', ' ']);
            let end = value
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.:".contains(c)))
                .unwrap_or(value.len());
            let value = &value[..end];
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
        search = &search[tag_end..];
    }
    None
}

/// The encoding_rs encoding of a label, for use as a [`Hint`].
pub(crate) fn hint_encoding(label: &str) -> Option<&'static Encoding> {
    match Charset::for_label(label)? {
        Charset::Standard(encoding) if encoding.is_ascii_compatible() => Some(encoding),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(text: &str, label: &str) -> Vec<u8> {
        let encoding = Encoding::for_label(label.as_bytes()).unwrap();
        let (bytes, _, errors) = encoding.encode(text);
        assert!(!errors, "{text} in {label}");
        bytes.into_owned()
    }

    #[test]
    fn declared_charsets() {
        for (label, text) in [
            ("iso-8859-2", "Zażółć gęślą jaźń"),
            ("windows-1250", "Příliš žluťoučký kůň"),
            ("windows-1251", "Привет, мир"),
            ("koi8-r", "Привет, мир"),
            ("shift_jis", "日本語のテキスト"),
            ("euc-kr", "안녕하세요"),
            ("big5", "繁體中文"),
            ("gb18030", "简体中文 😀"),
            ("iso-2022-jp", "日本語"),
        ] {
            assert_eq!(
                decode(&enc(text, label), Some(label), Hint::default()),
                text
            );
        }
    }

    #[test]
    fn utf8_wins_over_wrong_single_byte_declaration() {
        let utf8 = "Grüße – café".as_bytes();
        for label in ["us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "utf-7"] {
            assert_eq!(decode(utf8, Some(label), Hint::default()), "Grüße – café");
        }
        // Declared multi-byte charset that cannot decode the bytes.
        assert_eq!(
            decode("Grüße".as_bytes(), Some("iso-2022-jp"), Hint::default()),
            "Grüße"
        );
    }

    #[test]
    fn undeclared_text() {
        assert_eq!(decode(b"plain", None, Hint::default()), "plain");
        assert_eq!(
            decode(&enc("Grüße – café", "windows-1252"), None, Hint::default()),
            "Grüße – café"
        );
        // Mostly UTF-8 with one broken byte stays UTF-8.
        let mut bytes = "déjà vu ".as_bytes().to_vec();
        bytes.push(0xFF);
        assert_eq!(decode(&bytes, None, Hint::default()), "déjà vu \u{FFFD}");
        // Unknown label: treated as undeclared.
        assert_eq!(
            decode("é".as_bytes(), Some("x-bogus"), Hint::default()),
            "é"
        );
        // The hint decides between single-byte charsets.
        let hint = Hint {
            encoding: Encoding::for_label(b"windows-1251"),
            tld: None,
        };
        assert_eq!(decode(&enc("Привет", "windows-1251"), None, hint), "Привет");
    }

    #[test]
    fn decode_owned_matches_decode() {
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice("né".as_bytes());
        let (jis, _, _) = ISO_2022_JP.encode("日本語");
        let inputs: [&[u8]; 6] = [
            b"",
            b"plain",
            "Grüße".as_bytes(),
            b"Gr\xFC\xDFe",
            &bom,
            &jis,
        ];
        for bytes in inputs {
            for declared in [
                None,
                Some("utf-8"),
                Some("iso-8859-1"),
                Some("x-bogus"),
                Some("utf-7"),
            ] {
                assert_eq!(
                    decode_owned(bytes.to_vec(), declared, Hint::default()),
                    decode(bytes, declared, Hint::default()),
                    "{bytes:?} {declared:?}"
                );
            }
        }
    }

    #[test]
    fn bom_wins() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice("né".as_bytes());
        assert_eq!(decode(&bytes, Some("iso-8859-1"), Hint::default()), "né");
    }

    #[test]
    fn labels() {
        assert!(Charset::for_label("\"UTF-8\"").unwrap().is_utf8());
        assert!(Charset::for_label("cp1251").is_some());
        assert!(Charset::for_label("utf-7").is_some());
        assert!(Charset::for_label("x-unknown").is_none());
        assert!(Charset::for_label("").is_none());
        assert_eq!(hint_encoding("ks_c_5601-1987"), Some(encoding_rs::EUC_KR));
    }

    #[test]
    fn meta_charset() {
        assert_eq!(
            html_meta_charset(b"<html><head><META charset=\"Shift_JIS\">").as_deref(),
            Some("shift_jis")
        );
        assert_eq!(
            html_meta_charset(
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=koi8-r\">"
            )
            .as_deref(),
            Some("koi8-r")
        );
        assert_eq!(html_meta_charset(b"<p>no meta</p>"), None);
    }
}
