//! `format=flowed` text (RFC 3676): soft line breaks joined.
//!
//! Thunderbird, Apple Mail, Fastmail, K-9 and others send their text/plain
//! bodies as `Content-Type: text/plain; format=flowed`: lines are wrapped at
//! about 72 columns, and a line that ends with a space is continued by the
//! next one (a *soft* line break). Read as ordinary text, every paragraph
//! keeps the sender's wrapping; decoded, a paragraph is one line again, the
//! way its writer typed it. [`decode`] does that for every reader of the
//! text (the stored text, the quote trimming, the HTML made from it).

/// The text of a `format=flowed` body as its writer typed it (RFC 3676,
/// section 4):
///
/// - the quote depth of a line is its number of leading `>`; then one
///   leading space, if any, is space-stuffing and goes;
/// - a line that ends with a space (other than the signature separator
///   `-- `) is flowed: it is joined with the next line of the same quote
///   depth; with `DelSp=yes` that one trailing space is deleted first (it
///   was added by the sender, not typed);
/// - a flowed line followed by a line of another quote depth, or by an
///   empty line, ends its paragraph there (RFC 3676 would make the empty
///   line part of the paragraph and so drop it; keeping it keeps the
///   paragraph break the reader saw);
/// - quoted paragraphs come back as `> text` (`>> text` at depth 2, ...).
///
/// Line endings become `\n`; a final line break is kept.
pub(crate) fn decode(text: &str, delsp: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    // The paragraph being joined: its quote depth and its text so far.
    let mut open: Option<(usize, String)> = None;
    let emit = |out: &mut Vec<String>, depth: usize, text: &str| {
        let mut line = ">".repeat(depth);
        if depth > 0 && !text.is_empty() {
            line.push(' ');
        }
        line.push_str(text);
        out.push(line);
    };
    for line in text.lines() {
        let depth = line.bytes().take_while(|&b| b == b'>').count();
        let rest = &line[depth..];
        let content = rest.strip_prefix(' ').unwrap_or(rest);
        let flowed = content.ends_with(' ') && content != "-- ";
        if let Some((open_depth, joined)) = &open
            && (*open_depth != depth || content.is_empty())
        {
            // A paragraph left open by its last (flowed) line.
            emit(&mut out, *open_depth, joined.trim_end_matches(' '));
            open = None;
        }
        let piece = if flowed && delsp {
            &content[..content.len() - 1]
        } else {
            content
        };
        match &mut open {
            Some((_, joined)) => joined.push_str(piece),
            None => open = Some((depth, piece.to_string())),
        }
        if !flowed && let Some((depth, joined)) = open.take() {
            emit(&mut out, depth, &joined);
        }
    }
    if let Some((depth, joined)) = open.take() {
        emit(&mut out, depth, joined.trim_end_matches(' '));
    }
    let mut decoded = out.join("\n");
    if text.ends_with('\n') {
        decoded.push('\n');
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn soft_line_breaks_are_joined() {
        let text = "The registrar had a typo, it's fixed now and \r\nthe dashboard shows it.\r\n\r\nOliver\r\n";
        assert_eq!(
            decode(text, false),
            "The registrar had a typo, it's fixed now and the dashboard shows it.\n\nOliver\n"
        );
    }

    #[test]
    fn delsp_removes_the_added_space() {
        // Languages without spaces between words (RFC 3676, 4.2).
        let text = "これは長い文で、途中で \n折り返されています。\n";
        assert_eq!(
            decode(text, true),
            "これは長い文で、途中で折り返されています。\n"
        );
        assert_eq!(
            decode(text, false),
            "これは長い文で、途中で 折り返されています。\n"
        );
        assert_eq!(
            decode("Using the raw \nbody now.", true),
            "Using the rawbody now."
        );
    }

    #[test]
    fn hard_line_breaks_stay() {
        let text = "Cheers,\nSam\n-- \nSam Taylor\n";
        assert_eq!(decode(text, false), text);
    }

    #[test]
    fn space_stuffing_is_removed() {
        // Lines starting with a space, `From ` or `>` are stuffed by the sender.
        assert_eq!(
            decode(" From the start\n  indented\n >not a quote\n", false),
            "From the start\n indented\n>not a quote\n"
        );
    }

    #[test]
    fn quote_depth_is_kept() {
        let text = "On Tue, Sam wrote:\n> Could you check that your framework \n> gives you the raw bytes?\n>\n>> older \n>> text\nYes.\n";
        assert_eq!(
            decode(text, false),
            "On Tue, Sam wrote:\n> Could you check that your framework gives you the raw bytes?\n>\n>> older text\nYes.\n"
        );
    }

    #[test]
    fn a_flowed_line_before_another_depth_or_a_blank_line_ends_there() {
        let text = "> quoted and flowed \nmine\n\nflowed \n\nnext\n";
        assert_eq!(
            decode(text, false),
            "> quoted and flowed\nmine\n\nflowed\n\nnext\n"
        );
    }

    #[test]
    fn the_signature_separator_is_not_flowed() {
        assert_eq!(
            decode("Sam\n-- \nSam Taylor", false),
            "Sam\n-- \nSam Taylor"
        );
        assert_eq!(decode("> -- \n> Tom", false), "> -- \n> Tom");
    }

    #[test]
    fn odd_input() {
        for text in ["", " ", "\n", ">", "> ", ">>  \n \n", "\u{a0} \n\r\n", "é "] {
            let _ = decode(text, true);
            let _ = decode(text, false);
        }
        assert_eq!(decode("", false), "");
        assert_eq!(decode("a \nb \nc", false), "a b c");
    }
}
