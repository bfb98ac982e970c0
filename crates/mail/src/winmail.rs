//! Files inside Outlook's `winmail.dat` (`application/ms-tnef`).
//!
//! Outlook and Exchange sometimes send attachments wrapped in a TNEF stream
//! that only Outlook opens. The `tnef` crate (pure Rust, no `unsafe`, small)
//! reads the stream; this module turns its attachments into ordinary ones.
//!
//! The crate is unmaintained since 2019 and strict: it rejects a whole
//! stream that contains an attribute it does not know (its table misses a
//! few rare message attributes such as `attBody` and `attParentID`) and it
//! skips attachments without creation/modification dates. Whenever it fails,
//! or finds no attachment (e.g. a TNEF that only carries an RTF body), the
//! caller keeps `winmail.dat` itself as the attachment, so nothing is lost.
//!
//! The file name comes from the attachment's MAPI properties
//! (`PR_ATTACH_LONG_FILENAME`, else `PR_ATTACH_FILENAME`), else the
//! transport name, else the (8.3) title; the content type from
//! `PR_ATTACH_MIME_TAG`, else the file extension.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::charset::{self, Hint};

/// Most files taken from one TNEF stream.
const MAX_TNEF_FILES: usize = 200;
/// Most MAPI properties read per attachment while looking for its name.
const MAX_PROPERTIES: u32 = 512;

/// A file found in a TNEF stream.
#[derive(Debug)]
pub(crate) struct TnefFile {
    /// Name as stored (not yet made safe).
    pub name: Option<String>,
    /// Lowercase MIME type from the properties, if any.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Whether a part is a TNEF stream.
pub(crate) fn is_tnef(content_type: &str, filename: Option<&str>) -> bool {
    content_type == "application/ms-tnef"
        || content_type == "application/vnd.ms-tnef"
        || filename.is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
}

/// The files of a TNEF stream; `None` when it cannot be read or holds none.
pub(crate) fn extract(data: &[u8]) -> Option<Vec<TnefFile>> {
    catch_unwind(AssertUnwindSafe(|| extract_unguarded(data))).unwrap_or(None)
}

fn extract_unguarded(data: &[u8]) -> Option<Vec<TnefFile>> {
    let attachments = tnef::read_attachments(data).ok()?;
    let files: Vec<TnefFile> = attachments
        .into_iter()
        .take(MAX_TNEF_FILES)
        .map(|att| {
            let props = properties(att.props);
            let name = props
                .long_filename
                .or(props.filename)
                .or(att.transport_filename)
                .or(Some(att.title))
                .map(|n| n.trim_end_matches('\0').to_string())
                .filter(|n| !n.trim().is_empty());
            TnefFile {
                name,
                content_type: props.mime_tag.map(|t| t.trim().to_ascii_lowercase()),
                bytes: att.data.to_vec(),
            }
        })
        .collect();
    (!files.is_empty()).then_some(files)
}

/// The few attachment properties we use.
#[derive(Default)]
struct Properties {
    long_filename: Option<String>,
    filename: Option<String>,
    mime_tag: Option<String>,
}

const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;

const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_BINARY: u16 = 0x0102;
const PT_OBJECT: u16 = 0x000D;
const MV_FLAG: u16 = 0x1000;

/// Reads a MAPI property list (MS-OXTNEF 2.1.3.4) far enough to find the
/// string properties above; stops at the first thing it does not understand.
fn properties(data: &[u8]) -> Properties {
    let mut props = Properties::default();
    let mut r = Reader { data, pos: 0 };
    let Some(count) = r.u32() else {
        return props;
    };
    for _ in 0..count.min(MAX_PROPERTIES) {
        let (Some(ptype), Some(id)) = (r.u16(), r.u16()) else {
            break;
        };
        if id >= 0x8000 {
            // Named property: GUID, kind, then a number or a name.
            if r.skip(16).is_none() {
                break;
            }
            match r.u32() {
                Some(0) => {
                    if r.skip(4).is_none() {
                        break;
                    }
                }
                Some(1) => {
                    let Some(len) = r.u32() else { break };
                    if r.skip_padded(len as usize).is_none() {
                        break;
                    }
                }
                _ => break,
            }
        }
        let base = ptype & !MV_FLAG;
        let variable = matches!(base, PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT);
        let values = if ptype & MV_FLAG != 0 || variable {
            match r.u32() {
                Some(n) if n <= 4096 => n,
                _ => break,
            }
        } else {
            1
        };
        let mut ok = true;
        for _ in 0..values {
            if variable {
                let Some(len) = r.u32() else {
                    ok = false;
                    break;
                };
                let Some(value) = r.skip_padded(len as usize) else {
                    ok = false;
                    break;
                };
                let text = match base {
                    PT_UNICODE => Some(utf16le(value)),
                    PT_STRING8 => Some(charset::decode_undeclared(
                        value.split(|&b| b == 0).next().unwrap_or_default(),
                        Hint::default(),
                    )),
                    _ => None,
                };
                if let Some(text) = text {
                    let slot = match id {
                        PR_ATTACH_LONG_FILENAME => &mut props.long_filename,
                        PR_ATTACH_FILENAME => &mut props.filename,
                        PR_ATTACH_MIME_TAG => &mut props.mime_tag,
                        _ => continue,
                    };
                    if slot.is_none() && !text.is_empty() {
                        *slot = Some(text);
                    }
                }
            } else {
                let size = match base {
                    0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => 4,
                    0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => 8,
                    0x0048 => 16,
                    _ => {
                        ok = false;
                        break;
                    }
                };
                if r.skip(size).is_none() {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            break;
        }
    }
    props
}

fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn skip(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let bytes = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    /// `len` bytes, then padding to a multiple of 4.
    fn skip_padded(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.skip(len)?;
        let pad = (4 - len % 4) % 4;
        self.pos = self.pos.saturating_add(pad).min(self.data.len());
        Some(bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.skip(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.skip(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A content type for a file name's extension (`application/octet-stream`
/// when unknown).
pub(crate) fn content_type_for_name(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "json" => "application/json",
        "xml" => "application/xml",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "ics" => "text/calendar",
        "eml" => "message/rfc822",
        "rtf" => "application/rtf",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_tnef() {
        assert!(extract(b"").is_none());
        assert!(extract(b"\x78\x9f\x3e\x22").is_none());
        assert!(extract(&[0xFF; 64]).is_none());
    }

    #[test]
    fn property_list() {
        // Two properties: a PT_LONG (skipped) and PR_ATTACH_LONG_FILENAME in
        // UTF-16, then a named PT_STRING8 mime tag lookalike that is ignored.
        let mut data = Vec::new();
        data.extend_from_slice(&3u32.to_le_bytes());
        data.extend_from_slice(&0x0003u16.to_le_bytes());
        data.extend_from_slice(&0x0E21u16.to_le_bytes());
        data.extend_from_slice(&7u32.to_le_bytes());
        data.extend_from_slice(&PT_UNICODE.to_le_bytes());
        data.extend_from_slice(&PR_ATTACH_LONG_FILENAME.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        let name: Vec<u8> = "Rapport été.pdf\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        data.extend_from_slice(&(name.len() as u32).to_le_bytes());
        data.extend_from_slice(&name);
        data.extend(std::iter::repeat_n(0, (4 - name.len() % 4) % 4));
        data.extend_from_slice(&PT_STRING8.to_le_bytes());
        data.extend_from_slice(&PR_ATTACH_MIME_TAG.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&16u32.to_le_bytes());
        data.extend_from_slice(b"application/pdf\0");
        let props = properties(&data);
        assert_eq!(props.long_filename.as_deref(), Some("Rapport été.pdf"));
        assert_eq!(props.mime_tag.as_deref(), Some("application/pdf"));
        // Truncated lists never panic.
        for end in 0..data.len() {
            let _ = properties(&data[..end]);
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(content_type_for_name("a.PDF"), "application/pdf");
        assert_eq!(content_type_for_name("noext"), "application/octet-stream");
    }
}
