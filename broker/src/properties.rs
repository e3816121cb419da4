//! Java's `.properties` format, as `java.util.Properties.load` reads it: the syntax of Kafka's
//! `server.properties` (read by [`crate::config_file`]) and of client property files (read by
//! the command line's `riffle_broker::client_config`).
//!
//! # Format
//!
//! ```text
//! # a comment (also `!`); blank lines are skipped
//! key=value
//! key: value          the separator is `=`, `:` or whitespace,
//! key value           and whitespace around it belongs to neither side
//! key=first \
//!     second          a line ending in an odd number of `\` goes on with the next,
//!                     whose leading whitespace is dropped
//! a\=b=tab\there      `\` escapes: `\t \n \r \f \uXXXX`, and `\x` is `x`
//! ```
//!
//! Values are trimmed, as Kafka's `ConfigDef` trims them; a key given twice keeps its last
//! value, as in Java. Unlike Java, which reads ISO-8859-1, the file must be UTF-8.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest properties file read: a broker's is a few kilobytes, so a larger one is the
/// wrong file (a log, a data file).
pub const PROPERTIES_MAX_BYTES: u64 = 1024 * 1024;

/// One property: its key and value, unescaped, and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// The 1-based line the property starts on.
    pub line: usize,
}

/// The properties of a file, in the order of the line that set each last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<Property>,
}

/// Why a properties file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Larger than [`PROPERTIES_MAX_BYTES`].
    #[error("{} is larger than {PROPERTIES_MAX_BYTES} bytes: is it a properties file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line that is not UTF-8 text.
    #[error("{}: line {line} is not UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The first line with a byte that is not UTF-8.
        line: usize,
    },
    /// A `\u` not followed by four hexadecimal digits of a character, as Java refuses it.
    #[error("{}: line {}: malformed \\uXXXX escape", path.display(), error.line)]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where.
        error: MalformedEscape,
    },
}

/// A `\u` escape that is not four hexadecimal digits naming a character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: malformed \\uXXXX escape")]
pub struct MalformedEscape {
    /// The 1-based line of the property holding it.
    pub line: usize,
}

impl Properties {
    /// Reads the properties file at `path`, at most [`PROPERTIES_MAX_BYTES`] of it.
    ///
    /// # Errors
    /// An unreadable, oversized or non-UTF-8 file, or a malformed `\u` escape.
    pub fn load(path: &Path) -> Result<Properties, PropertiesError> {
        let unreadable = |source| PropertiesError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut bytes = Vec::new();
        file.take(PROPERTIES_MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if u64::try_from(bytes.len()).map_or(true, |length| length > PROPERTIES_MAX_BYTES) {
            return Err(PropertiesError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|error| {
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            PropertiesError::NotUtf8 {
                path: path.to_path_buf(),
                line: 1 + valid.iter().filter(|byte| **byte == b'\n').count(),
            }
        })?;
        Properties::parse(&text).map_err(|error| PropertiesError::Malformed {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Reads properties text (see the module documentation for the format).
    ///
    /// # Errors
    /// A malformed `\u` escape, with its line.
    pub fn parse(text: &str) -> Result<Properties, MalformedEscape> {
        let mut entries: Vec<Property> = Vec::new();
        for (line, logical) in logical_lines(text) {
            let (key, value) = split_key_value(&logical);
            let key = unescape(key).ok_or(MalformedEscape { line })?;
            let value = unescape(value).ok_or(MalformedEscape { line })?;
            entries.push(Property {
                key,
                value: value.trim().to_string(),
                line,
            });
        }
        // Keep each key's last setting, in one pass from the end.
        let mut seen = std::collections::HashSet::new();
        entries.reverse();
        entries.retain(|entry| seen.insert(entry.key.clone()));
        entries.reverse();
        Ok(Properties { entries })
    }

    /// The property `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    /// Every property, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.entries.iter()
    }

    /// The values by key.
    pub fn into_map(self) -> std::collections::BTreeMap<String, String> {
        self.entries
            .into_iter()
            .map(|entry| (entry.key, entry.value))
            .collect()
    }
}

/// Java's whitespace in a properties file: space, tab and form feed.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// The physical lines of `text`, ended by `\n`, `\r\n` or a lone `\r` as in Java.
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
}

/// The lines that hold a property, with the line each starts on: comments and blank lines
/// dropped, a line ending in an odd number of backslashes joined with the next (whose
/// leading whitespace is dropped).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in physical_lines(text).enumerate() {
        let line = raw.trim_start_matches(is_blank);
        // A comment or blank line ends nothing: only a continued line reads it as text.
        if pending.is_none() && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        let trailing_backslashes = line.chars().rev().take_while(|c| *c == '\\').count();
        let continues = trailing_backslashes % 2 == 1;
        let content = match continues {
            true => &line[..line.len() - 1],
            false => line,
        };
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        joined.push_str(content);
        match continues {
            true => pending = Some((start, joined)),
            false => lines.push((start, joined)),
        }
    }
    lines.extend(pending);
    lines
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace; whitespace around
/// the separator belongs to neither side. Both sides are still escaped.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (index, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = index;
            break;
        }
    }
    let key = &line[..key_end];
    let rest = line[key_end..].trim_start_matches(is_blank);
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    (key, rest.trim_start_matches(is_blank))
}

/// Java's escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX` (a UTF-16 pair for characters past
/// U+FFFF), and `\` before any other character stands for that character. `None` for a
/// malformed `\u`.
fn unescape(text: &str) -> Option<String> {
    let mut output = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            output.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => output.push('\t'),
            Some('n') => output.push('\n'),
            Some('r') => output.push('\r'),
            Some('f') => output.push('\u{c}'),
            Some('u') => {
                let unit = utf16_unit(&mut chars)?;
                let decoded = match char::from_u32(unit) {
                    Some(decoded) => decoded,
                    // A high surrogate: the low one must follow as another \u escape.
                    None => {
                        let low = match (chars.next(), chars.next()) {
                            (Some('\\'), Some('u')) => utf16_unit(&mut chars)?,
                            _ => return None,
                        };
                        char::decode_utf16([u16::try_from(unit).ok()?, u16::try_from(low).ok()?])
                            .next()?
                            .ok()?
                    }
                };
                output.push(decoded);
            }
            Some(other) => output.push(other),
            None => {}
        }
    }
    Some(output)
}

/// The four hexadecimal digits after `\u`.
fn utf16_unit(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let digits: String = chars.by_ref().take(4).collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, usize)> {
        Properties::parse(text)
            .unwrap_or_else(|error| panic!("{text:?}: {error}"))
            .iter()
            .map(|entry| (entry.key.clone(), entry.value.clone(), entry.line))
            .collect()
    }

    fn expected(items: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
        items
            .iter()
            .map(|(key, value, line)| (key.to_string(), value.to_string(), *line))
            .collect()
    }

    #[test]
    fn properties_read_as_java_reads_them() {
        // Separators, comments, escapes, continuations and trimming, as in
        // java.util.Properties (plus Kafka's trimming of values), each with its first line.
        let text = "# a comment\n\
                    ! another\n\
                    \n\
                    a=1\n\
                    b : 2\n\
                    c 3\n\
                    d=  spaced value  \n\
                    e=one\\\n    two\n\
                    f\\=g=h\n\
                    i=tab\\there\\u0041\n\
                    a=last wins\n\
                    empty=\n\
                    bare\n\
                    \t\x0cj\t=\t\\ escaped blank\n\
                    smile=\\uD83D\\uDE00\n";
        assert_eq!(
            entries(text),
            expected(&[
                ("b", "2", 5),
                ("c", "3", 6),
                ("d", "spaced value", 7),
                ("e", "onetwo", 8),
                ("f=g", "h", 10),
                ("i", "tab\thereA", 11),
                ("a", "last wins", 12),
                ("empty", "", 13),
                ("bare", "", 14),
                ("j", "escaped blank", 15),
                ("smile", "\u{1F600}", 16),
            ])
        );
    }

    #[test]
    fn continuations_comments_and_line_ends_follow_java() {
        // A comment ending in `\` does not continue; a continued line may look like a
        // comment; an even number of trailing backslashes is an escaped backslash; `\r\n`
        // and a lone `\r` end lines; the last line may end in `\` at the end of the text.
        let text = "# comment \\\nk1=v1\r\nk2=a\\\n# not a comment\rk3=x\\\\\nk4=end\\";
        assert_eq!(
            entries(text),
            expected(&[
                ("k1", "v1", 2),
                ("k2", "a# not a comment", 3),
                ("k3", "x\\", 5),
                ("k4", "end", 6),
            ])
        );
    }

    #[test]
    fn malformed_unicode_escapes_are_refused_with_their_line() {
        // Java throws on a short or non-hexadecimal \u, and so do we, naming the line.
        for text in ["a=ok\nb=\\u12", "a=ok\nb=\\uZZZZ", "a=ok\nb=\\uD83Dx"] {
            assert_eq!(
                Properties::parse(text),
                Err(MalformedEscape { line: 2 }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_missing_oversized_or_binary_file_is_named() {
        // Every error names the file; a huge file is refused before it is parsed; a file
        // that is not UTF-8 names the line of the first bad byte.
        let dir = tempfile::Builder::new()
            .prefix("riffle-properties-test-")
            .tempdir()
            .expect("temp dir");
        let missing = dir.path().join("missing.properties");
        let message = Properties::load(&missing).err().map(|e| e.to_string());
        assert!(
            message
                .as_deref()
                .is_some_and(|m| m.contains("missing.properties")),
            "{message:?}"
        );
        let large = dir.path().join("large.properties");
        let size = usize::try_from(PROPERTIES_MAX_BYTES).expect("fits") + 1;
        std::fs::write(&large, vec![b'#'; size]).expect("write");
        assert!(matches!(
            Properties::load(&large),
            Err(PropertiesError::TooLarge { .. })
        ));
        let binary = dir.path().join("binary.properties");
        std::fs::write(&binary, b"a=1\nb=\xff\n").expect("write");
        let message = Properties::load(&binary).err().map(|e| e.to_string());
        assert_eq!(
            message,
            Some(format!("{}: line 2 is not UTF-8 text", binary.display()))
        );
        let good = dir.path().join("good.properties");
        std::fs::write(&good, "num.partitions = 3\n").expect("write");
        let properties = Properties::load(&good).expect("loads");
        assert_eq!(
            properties.get("num.partitions").map(|p| p.value.as_str()),
            Some("3")
        );
    }
}
