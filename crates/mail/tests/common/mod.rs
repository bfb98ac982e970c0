//! Shared helpers for the integration tests.

use std::path::PathBuf;

/// Bytes of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes a `.b64` fixture (base64 wrapped at 76 columns).
#[allow(dead_code)]
pub fn fixture_b64(name: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text: String = String::from_utf8(fixture(name))
        .unwrap()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// The header section of a built message, unfolded, one header per entry.
#[allow(dead_code)]
pub fn header_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            lines.last_mut().unwrap().push_str(line);
        } else {
            lines.push(line.to_string());
        }
    }
    lines
}
