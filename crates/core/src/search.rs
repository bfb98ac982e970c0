//! Tags on conversations and what a full-text search asks for, parsed from what people type.
//!
//! - [`Tags::parse`]: a conversation's tags: trimmed, one space between words, at most
//!   [`MAX_TAG_CHARS`] characters each and [`MAX_TAGS`] per conversation, unique whatever
//!   their case (the first spelling stays).
//! - [`SearchTerms::parse`]: the words and `"quoted phrases"` of a search. A word is a run of
//!   letters and digits, as the databases' tokenizers see it; everything else separates words,
//!   so no character of the input ever reaches a full-text query's own syntax. The stores
//!   render the terms as an FTS5 `MATCH` expression or a PostgreSQL `tsquery` of quoted,
//!   alphanumeric words only.

/// Most characters in one tag.
pub const MAX_TAG_CHARS: usize = 40;

/// Most tags on one conversation.
pub const MAX_TAGS: usize = 20;

/// Most terms (words and phrases) of a search taken into account; the rest are ignored.
pub const MAX_TERMS: usize = 16;

/// Most characters of a search.
pub const MAX_QUERY_CHARS: usize = 500;

/// A conversation's tags, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

/// Why a set of tags was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A tag is empty once trimmed.
    #[error("A tag cannot be empty")]
    Empty,
    /// A tag is too long.
    #[error("The tag {0:?} is longer than {MAX_TAG_CHARS} characters")]
    TooLong(String),
    /// Too many tags.
    #[error("A conversation can have at most {MAX_TAGS} tags")]
    TooMany,
    /// A tag holds a control character (a line break, a tab).
    #[error("The tag {0:?} has a control character; use letters, digits, spaces and punctuation")]
    Control(String),
}

impl Tags {
    /// Parses the tags someone typed.
    ///
    /// # Errors
    /// An empty, too long or control-character tag, or more than [`MAX_TAGS`] distinct tags.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, TagError> {
        let mut tags: Vec<String> = Vec::new();
        for tag in raw {
            let tag = tag.as_ref();
            if tag.chars().any(char::is_control) {
                return Err(TagError::Control(tag.to_owned()));
            }
            let tag = tag.split_whitespace().collect::<Vec<_>>().join(" ");
            if tag.is_empty() {
                return Err(TagError::Empty);
            }
            if tag.chars().count() > MAX_TAG_CHARS {
                return Err(TagError::TooLong(tag));
            }
            if !tags.iter().any(|t| tag_key(t) == tag_key(&tag)) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
        Ok(Self(tags))
    }

    /// The tags, in the order given.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// What a tag is compared by: trimmed, one space between words, lowercase.
#[must_use]
pub fn tag_key(tag: &str) -> String {
    tag.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// One thing a search looks for: a word (also found as the start of a longer word) or a
/// phrase (its words one after the other, the last also as the start of a word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word, lowercase, letters and digits only.
    Word(String),
    /// Words typed in double quotes, lowercase, letters and digits only.
    Phrase(Vec<String>),
}

/// The terms of a search; every term must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchTerms(Vec<Term>);

/// The words of `text`: runs of letters and digits, lowercase.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl SearchTerms {
    /// The terms of what someone typed: `"…"` makes a phrase (an unclosed quote runs to the
    /// end); everything but letters and digits separates words. At most [`MAX_TERMS`].
    #[must_use]
    pub fn parse(query: &str) -> Self {
        let mut terms = Vec::new();
        for (i, part) in query.split('"').enumerate() {
            if i % 2 == 1 {
                let phrase: Vec<String> = words(part).collect();
                match phrase.len() {
                    0 => {}
                    1 => terms.extend(phrase.into_iter().map(Term::Word)),
                    _ => terms.push(Term::Phrase(phrase)),
                }
            } else {
                terms.extend(words(part).map(Term::Word));
            }
        }
        terms.dedup();
        terms.truncate(MAX_TERMS);
        Self(terms)
    }

    /// Whether there is nothing to look for (only punctuation was typed).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The terms.
    #[must_use]
    pub fn terms(&self) -> &[Term] {
        &self.0
    }

    /// As an SQLite FTS5 `MATCH` expression: each word quoted, every term's last word a
    /// prefix, terms joined by AND (a space). Only letters and digits are inside the quotes.
    #[must_use]
    pub fn to_fts5(&self) -> String {
        self.0
            .iter()
            .map(|term| match term {
                Term::Word(w) => format!("\"{w}\"*"),
                Term::Phrase(ws) => format!("\"{}\"*", ws.join(" ")),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// As a PostgreSQL `to_tsquery` text: each word quoted, every term's last word a prefix
    /// (`:*`), a phrase's words joined by `<->`, terms by `&`.
    #[must_use]
    pub fn to_tsquery(&self) -> String {
        self.0
            .iter()
            .map(|term| match term {
                Term::Word(w) => format!("'{w}':*"),
                Term::Phrase(ws) => {
                    let last = ws.len() - 1;
                    let parts: Vec<String> = ws
                        .iter()
                        .enumerate()
                        .map(|(i, w)| {
                            if i == last {
                                format!("'{w}':*")
                            } else {
                                format!("'{w}'")
                            }
                        })
                        .collect();
                    format!("({})", parts.join(" <-> "))
                }
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_deduplicated_whatever_their_case_and_bounded() {
        let tags = Tags::parse(&["  Billing ", "billing", "VIP  customer", "BILLING"]).unwrap();
        assert_eq!(tags.as_slice(), ["Billing", "VIP customer"]);
        assert_eq!(tag_key(" VIP   Customer "), "vip customer");
        assert_eq!(Tags::parse(&["  "]), Err(TagError::Empty));
        assert!(matches!(
            Tags::parse(&["x".repeat(41)]),
            Err(TagError::TooLong(_))
        ));
        assert!(
            Tags::parse(&["é".repeat(40)]).is_ok(),
            "characters, not bytes"
        );
        assert!(matches!(Tags::parse(&["a\nb"]), Err(TagError::Control(_))));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(&many), Err(TagError::TooMany));
        let same: Vec<String> = (0..30).map(|_| "same".to_owned()).collect();
        assert_eq!(Tags::parse(&same).unwrap().as_slice(), ["same"]);
        assert_eq!(Tags::parse::<&str>(&[]).unwrap(), Tags::default());
    }

    #[test]
    fn a_search_is_words_and_phrases_of_letters_and_digits_only() {
        let terms = SearchTerms::parse(r#"Invoice #42 "late  Payment" don't"#);
        assert_eq!(
            terms.terms(),
            [
                Term::Word("invoice".into()),
                Term::Word("42".into()),
                Term::Phrase(vec!["late".into(), "payment".into()]),
                Term::Word("don".into()),
                Term::Word("t".into()),
            ]
        );
        assert_eq!(
            terms.to_fts5(),
            r#""invoice"* "42"* "late payment"* "don"* "t"*"#
        );
        assert_eq!(
            terms.to_tsquery(),
            "'invoice':* & '42':* & ('late' <-> 'payment':*) & 'don':* & 't':*"
        );
        assert_eq!(
            SearchTerms::parse("carol@example.com").to_fts5(),
            r#""carol"* "example"* "com"*"#
        );
        assert_eq!(
            SearchTerms::parse("Ärger café").to_tsquery(),
            "'ärger':* & 'café':*"
        );
    }

    #[test]
    fn full_text_syntax_is_never_passed_through() {
        for hostile in [
            r#"""#,
            "*",
            "NEAR(a b)",
            "a OR b",
            "col:word",
            "'; DROP TABLE messages; --",
            "(!&|<->:*)",
            "^start",
            "\"unclosed phrase",
            "-not +plus",
        ] {
            let terms = SearchTerms::parse(hostile);
            for rendered in [terms.to_fts5(), terms.to_tsquery()] {
                let inside: String = rendered
                    .chars()
                    .filter(|c| !"\"'*:&()<->' ".contains(*c))
                    .collect();
                assert!(
                    inside.chars().all(char::is_alphanumeric),
                    "{hostile:?} gave {rendered:?}"
                );
            }
        }
        assert!(SearchTerms::parse("!!! ... ???").is_empty());
        assert!(SearchTerms::parse(r#""""#).is_empty());
        let long = "word ".repeat(100);
        assert_eq!(SearchTerms::parse(&long).terms().len(), 1, "deduplicated");
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(SearchTerms::parse(&many).terms().len(), MAX_TERMS);
    }
}
