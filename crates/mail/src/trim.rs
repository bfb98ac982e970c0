//! Separating the new part of a reply from the quoted history below it.

/// Verbs of attribution lines (`On ... wrote:` and its translations); such a
/// line ends with `:`.
const ATTRIBUTION_VERBS: [&str; 5] = ["wrote", "schrieb", "écrit", "escribió", "skrev"];

/// Attribution line beginnings, used to find the first half of an attribution
/// that a mail client wrapped over two lines.
const ATTRIBUTION_STARTS: [&str; 5] = ["On ", "Am ", "Le ", "El ", "Den "];

/// The text of a reply without the quoted message at its bottom.
///
/// A first cut, deliberately conservative:
/// - everything from an Outlook-style `-----Original Message-----` line on is
///   removed;
/// - the trailing block of `>`-quoted lines (blank lines inside it included) is
///   removed, together with the attribution line right above it: a line
///   ending in `:` that contains `wrote` (`On <date>, <name> wrote:`, also
///   when wrapped over two lines) or its German, French, Spanish or
///   Scandinavian verb;
/// - quotes interleaved with the new text (inline answers) are kept;
/// - trailing whitespace is trimmed and lines are joined with `\n`.
///
/// If that would leave nothing (a message that is only a quote), the whole
/// text, trimmed, is returned instead: never hide a message entirely.
pub fn reply_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines
        .iter()
        .position(|line| {
            line.trim()
                .eq_ignore_ascii_case("-----Original Message-----")
        })
        .unwrap_or(lines.len());

    end = skip_blank_back(&lines, end);
    let mut start_of_quote = end;
    while start_of_quote > 0 {
        let line = lines[start_of_quote - 1].trim_start();
        if line.starts_with('>') || line.is_empty() {
            start_of_quote -= 1;
        } else {
            break;
        }
    }
    let had_quote = lines[start_of_quote..end]
        .iter()
        .any(|line| line.trim_start().starts_with('>'));
    if had_quote {
        end = skip_blank_back(&lines, start_of_quote);
        if end > 0 && is_attribution_end(lines[end - 1]) {
            let line = lines[end - 1].trim();
            end -= 1;
            let starts = ATTRIBUTION_STARTS.iter().any(|s| line.starts_with(s));
            if !starts
                && end > 0
                && ATTRIBUTION_STARTS
                    .iter()
                    .any(|s| lines[end - 1].trim_start().starts_with(s))
            {
                end -= 1;
            }
        }
    }

    let kept = lines[..end].join("\n");
    let kept = kept.trim_end();
    if kept.trim().is_empty() {
        text.trim_end().to_string()
    } else {
        kept.to_string()
    }
}

fn skip_blank_back(lines: &[&str], mut end: usize) -> usize {
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    end
}

fn is_attribution_end(line: &str) -> bool {
    let line = line.trim();
    line.ends_with(':') && ATTRIBUTION_VERBS.iter().any(|verb| line.contains(verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_trailing_quote_and_attribution() {
        let text = "Thanks, that fixed it!\n\nJane\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.com> wrote:\n> Hi Jane,\n>\n> try turning it off and on again.\n\n> Bye\n";
        assert_eq!(reply_text(text), "Thanks, that fixed it!\n\nJane");
    }

    #[test]
    fn removes_wrapped_attribution() {
        let text = "Yes please.\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM Support Team <\r\nsupport@example.com> wrote:\r\n\r\n> Shall we?\r\n";
        assert_eq!(reply_text(text), "Yes please.");
    }

    #[test]
    fn removes_german_attribution() {
        let text = "Danke!\n\nAm 01.01.2024 um 10:00 schrieb Support <s@example.com>:\n> Hallo\n";
        assert_eq!(reply_text(text), "Danke!");
        let text = "Merci\n\nLe lun. 1 janv. 2024, Support <s@example.com> a écrit :\n> Bonjour\n";
        assert_eq!(reply_text(text), "Merci");
    }

    #[test]
    fn keeps_inline_answers() {
        let text = "> Which version?\n2.1\n> Which OS?\nLinux\n";
        assert_eq!(
            reply_text(text),
            "> Which version?\n2.1\n> Which OS?\nLinux"
        );
    }

    #[test]
    fn cuts_outlook_original_message() {
        let text =
            "See attached.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nHello";
        assert_eq!(reply_text(text), "See attached.");
    }

    #[test]
    fn only_quote_is_kept_whole() {
        let text = "> just a quote\n> nothing else\n";
        assert_eq!(reply_text(text), "> just a quote\n> nothing else");
        assert_eq!(reply_text(""), "");
        assert_eq!(reply_text("plain\n\n"), "plain");
    }

    #[test]
    fn wrote_without_quote_is_kept() {
        let text = "My colleague wrote:\nthe fix works.";
        assert_eq!(reply_text(text), text);
    }
}
