//! The variables of signatures and canned responses: `{{contact.name}}`, `{{contact.email}}`,
//! `{{agent.name}}`, `{{inbox.name}}` (spaces inside the braces allowed). A variable without a
//! value is left as written, so a typo shows rather than vanishing.

/// The variables a reply's texts may use.
pub const VARIABLES: [&str; 4] = ["contact.name", "contact.email", "agent.name", "inbox.name"];

/// `text` with each `{{ name }}` whose name is in `values` replaced by its value; everything
/// else (unknown names, unclosed braces) stays as written. Values are inserted as they are and
/// never scanned again.
#[must_use]
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_known_variables_and_keeps_the_rest() {
        let values = [("contact.name", "Ann"), ("agent.name", "Bo {{inbox.name}}")];
        assert_eq!(
            fill("Hi {{contact.name}}, {{ agent.name }} here", &values),
            "Hi Ann, Bo {{inbox.name}} here"
        );
        assert_eq!(
            fill("{{unknown}} and {{contact.name", &values),
            "{{unknown}} and {{contact.name"
        );
        assert_eq!(fill("no variables", &values), "no variables");
        assert_eq!(fill("{{contact.name}}{{contact.name}}", &values), "AnnAnn");
        assert_eq!(fill("ünï {{contact.name}} ✓", &values), "ünï Ann ✓");
    }
}
