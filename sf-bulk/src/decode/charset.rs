//! A page's text encoding, read from its `Content-Type`, and decoding of the single-byte ones.

use crate::error::DecodeError;

/// A page's text encoding, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Charset {
    /// UTF-8 (also US-ASCII, its subset).
    Utf8,
    /// ISO-8859-1: each byte is the code point of the same value.
    Latin1,
    /// windows-1252: ISO-8859-1 with printable characters in 0x80..0x9F.
    Windows1252,
}

impl Charset {
    pub(super) fn from_content_type(content_type: Option<&str>) -> Result<Charset, DecodeError> {
        let Some(content_type) = content_type else {
            return Ok(Charset::Utf8);
        };
        let charset = content_type.split(';').skip(1).find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_string())
        });
        let Some(charset) = charset else {
            return Ok(Charset::Utf8);
        };
        match charset.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Ok(Charset::Utf8),
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "cp819" => {
                Ok(Charset::Latin1)
            }
            "windows-1252" | "cp1252" => Ok(Charset::Windows1252),
            _ => Err(DecodeError::Charset { charset }),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Windows1252 => "windows-1252",
        }
    }
}

/// windows-1252's characters for 0x80..=0x9F (undefined positions keep their C1 code point).
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}', '\u{017D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{9D}', '\u{017E}', '\u{0178}',
];

pub(super) fn decode_single_byte(bytes: &[u8], charset: Charset) -> String {
    bytes
        .iter()
        .map(|&b| match (charset, b) {
            (Charset::Windows1252, 0x80..=0x9F) => WINDOWS_1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}
