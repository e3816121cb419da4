//! Comparing two output topics by their final value per key (and window).
//!
//! [`OutputDiff`] takes the records of the live topic and of the shadow topic in offset
//! order, keeps the latest value of every key on each side (a tombstone removes the key,
//! as a compacted topic or a table would read it), and [`OutputDiff::finish`] reports the
//! keys whose final values differ. Windowed keys are compared as whole keys, so a
//! difference is per key and window; the key format only decides how a key is shown.
//!
//! Memory is one entry per distinct key on each side; the report keeps at most
//! [`OutputDiff::limit`] differences, and counts all of them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Default [`OutputDiff::limit`]: differences listed in a report.
pub const DIFF_LIMIT_DEFAULT: usize = 20;

/// Bytes of one window timestamp in Kafka Streams' windowed key layout.
const TIMESTAMP_BYTES: usize = 8;

/// How the bytes of a key or value are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataFormat {
    /// UTF-8 text (bytes that are not UTF-8 are shown in hex).
    #[default]
    String,
    /// A big-endian `i64`, as Kafka's `LongSerializer` writes it.
    I64,
    /// A big-endian `f64`, as Kafka's `DoubleSerializer` writes it.
    F64,
    /// JSON; values compare as JSON, so object field order does not count.
    Json,
    /// Hex bytes.
    Hex,
}

impl DataFormat {
    /// The names [`FromStr`] reads.
    pub const NAMES: &'static str = "string, i64, f64, json, hex";

    /// `bytes` as text in this format; bytes the format does not fit are shown in hex.
    pub fn show(self, bytes: &[u8]) -> String {
        let shown = match self {
            DataFormat::String => std::str::from_utf8(bytes).ok().map(str::to_owned),
            DataFormat::I64 => fixed::<8>(bytes).map(|b| i64::from_be_bytes(b).to_string()),
            DataFormat::F64 => fixed::<8>(bytes).map(|b| f64::from_be_bytes(b).to_string()),
            DataFormat::Json => serde_json::from_slice::<serde_json::Value>(bytes)
                .ok()
                .map(|value| value.to_string()),
            DataFormat::Hex => None,
        };
        shown.unwrap_or_else(|| format!("0x{}", hex(bytes)))
    }

    /// Whether two values are the same in this format: JSON by value, others by bytes.
    fn same(self, a: &[u8], b: &[u8]) -> bool {
        if a == b {
            return true;
        }
        if self != DataFormat::Json {
            return false;
        }
        let parse = serde_json::from_slice::<serde_json::Value>;
        matches!((parse(a), parse(b)), (Ok(a), Ok(b)) if a == b)
    }
}

impl FromStr for DataFormat {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "string" => Ok(DataFormat::String),
            "i64" | "long" => Ok(DataFormat::I64),
            "f64" | "double" => Ok(DataFormat::F64),
            "json" => Ok(DataFormat::Json),
            "hex" | "bytes" => Ok(DataFormat::Hex),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// A format name that is not one of [`DataFormat::NAMES`] or [`KeyWindow::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}'")]
pub struct UnknownFormat(pub String);

/// Whether keys carry a window, in Kafka Streams' windowed key layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyWindow {
    /// Plain keys.
    #[default]
    None,
    /// Time windows (tumbling, hopping, sliding): `key ‖ start` (i64 big-endian).
    Time,
    /// Session windows: `key ‖ end ‖ start`.
    Session,
}

impl KeyWindow {
    /// The names [`FromStr`] reads.
    pub const NAMES: &'static str = "none, time, session";

    fn suffix_bytes(self) -> usize {
        match self {
            KeyWindow::None => 0,
            KeyWindow::Time => TIMESTAMP_BYTES,
            KeyWindow::Session => 2 * TIMESTAMP_BYTES,
        }
    }
}

impl FromStr for KeyWindow {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(KeyWindow::None),
            "time" => Ok(KeyWindow::Time),
            "session" => Ok(KeyWindow::Session),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// How keys are read: their format, and their window if they are windowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyFormat {
    /// The key itself (without its window).
    pub data: DataFormat,
    /// The window after it, if any.
    pub window: KeyWindow,
}

impl KeyFormat {
    /// A key as a report shows it: the key and its window.
    pub fn show(self, bytes: &[u8]) -> ShownKey {
        let Some(key_bytes) = bytes.len().checked_sub(self.window.suffix_bytes()) else {
            // Too short for its window: show it whole, as bytes.
            return ShownKey {
                key: format!("0x{}", hex(bytes)),
                window_start_ms: None,
                window_end_ms: None,
            };
        };
        let (key, suffix) = bytes.split_at(key_bytes);
        let timestamp =
            |at: usize| fixed::<8>(&suffix[at..at + TIMESTAMP_BYTES]).map(i64::from_be_bytes);
        let (window_start_ms, window_end_ms) = match self.window {
            KeyWindow::None => (None, None),
            KeyWindow::Time => (timestamp(0), None),
            KeyWindow::Session => (timestamp(TIMESTAMP_BYTES), timestamp(0)),
        };
        ShownKey {
            key: self.data.show(key),
            window_start_ms,
            window_end_ms,
        }
    }
}

/// A key as shown in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownKey {
    /// The key, in its format.
    pub key: String,
    /// Its window's start (ms), for windowed keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start_ms: Option<i64>,
    /// Its window's end (ms), for session keys (time windows' keys carry only the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end_ms: Option<i64>,
}

impl fmt::Display for ShownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        match (self.window_start_ms, self.window_end_ms) {
            (Some(start), Some(end)) => write!(f, " [{start}, {end}]"),
            (Some(start), None) => write!(f, " [{start}..)"),
            _ => Ok(()),
        }
    }
}

/// How a key's final value differs between the live and the shadow output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Both have the key, with different values.
    Changed,
    /// Only the live output has the key: the new version no longer writes it.
    Removed,
    /// Only the shadow output has the key: the new version writes it and the live does not.
    Added,
}

impl DifferenceKind {
    fn name(self) -> &'static str {
        match self {
            DifferenceKind::Changed => "changed",
            DifferenceKind::Removed => "removed",
            DifferenceKind::Added => "added",
        }
    }
}

/// One key whose final value differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDifference {
    /// Changed, removed or added.
    pub kind: DifferenceKind,
    /// The key (and window).
    #[serde(flatten)]
    pub key: ShownKey,
    /// The live output's final value; `None` when it has none.
    pub live: Option<String>,
    /// The shadow output's final value; `None` when it has none.
    pub shadow: Option<String>,
}

/// What [`OutputDiff::finish`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Records read from the live topic.
    pub live_records: u64,
    /// Records read from the shadow topic.
    pub shadow_records: u64,
    /// Keys with a final value in the live topic.
    pub live_keys: usize,
    /// Keys with a final value in the shadow topic.
    pub shadow_keys: usize,
    /// Keys with the same final value on both sides.
    pub same: usize,
    /// Keys on both sides with different final values.
    pub changed: usize,
    /// Keys only the live topic has.
    pub removed: usize,
    /// Keys only the shadow topic has.
    pub added: usize,
    /// Records without a key, which cannot be compared by key: live, shadow.
    pub keyless_records: (u64, u64),
    /// The first differences in key order, at most the diff's limit.
    pub differences: Vec<KeyDifference>,
}

impl DiffReport {
    /// Whether both sides end with the same value for every key.
    pub fn is_identical(&self) -> bool {
        self.changed == 0 && self.removed == 0 && self.added == 0
    }

    /// Every difference, listed or not.
    pub fn difference_count(&self) -> usize {
        self.changed + self.removed + self.added
    }
}

impl fmt::Display for DiffReport {
    /// A summary line, then one line per listed difference.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = format!(
            "live: {} records, {} keys; shadow: {} records, {} keys",
            self.live_records, self.live_keys, self.shadow_records, self.shadow_keys
        );
        if self.is_identical() {
            writeln!(f, "no differences ({} keys the same; {summary})", self.same)?;
        } else {
            let count = self.difference_count();
            let plural = if count == 1 { "" } else { "s" };
            writeln!(
                f,
                "{count} difference{plural}: {} changed, {} removed, {} added ({} keys the same; {summary})",
                self.changed, self.removed, self.added, self.same
            )?;
        }
        let (keyless_live, keyless_shadow) = self.keyless_records;
        if keyless_live + keyless_shadow > 0 {
            writeln!(
                f,
                "not compared: records without a key (live {keyless_live}, shadow {keyless_shadow})"
            )?;
        }
        for difference in &self.differences {
            let value = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "{:<8} {}: live {} -> shadow {}",
                difference.kind.name(),
                difference.key,
                value(&difference.live),
                value(&difference.shadow)
            )?;
        }
        let unlisted = self.difference_count() - self.differences.len();
        if unlisted > 0 {
            writeln!(f, "... and {unlisted} more")?;
        }
        Ok(())
    }
}

/// Final values per key of a live and a shadow output topic, compared.
#[derive(Debug, Clone)]
pub struct OutputDiff {
    key_format: KeyFormat,
    value_format: DataFormat,
    limit: usize,
    live: Side,
    shadow: Side,
}

/// One topic's final values.
#[derive(Debug, Clone, Default)]
struct Side {
    latest: BTreeMap<Vec<u8>, Vec<u8>>,
    records: u64,
    keyless_records: u64,
}

impl Side {
    fn add(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.records += 1;
        let Some(key) = key else {
            self.keyless_records += 1;
            return;
        };
        match value {
            Some(value) => {
                self.latest.insert(key.to_vec(), value.to_vec());
            }
            None => {
                self.latest.remove(key);
            }
        }
    }
}

impl OutputDiff {
    /// An empty comparison, showing keys and values in these formats.
    pub fn new(key_format: KeyFormat, value_format: DataFormat) -> OutputDiff {
        OutputDiff {
            key_format,
            value_format,
            limit: DIFF_LIMIT_DEFAULT,
            live: Side::default(),
            shadow: Side::default(),
        }
    }

    /// Lists at most `limit` differences in the report (all are counted).
    pub fn limit(mut self, limit: usize) -> OutputDiff {
        self.limit = limit;
        self
    }

    /// The next record of the live topic (records of one partition in offset order).
    pub fn add_live(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.live.add(key, value);
    }

    /// The next record of the shadow topic.
    pub fn add_shadow(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        self.shadow.add(key, value);
    }

    /// Compares the final values.
    pub fn finish(self) -> DiffReport {
        let mut report = DiffReport {
            live_records: self.live.records,
            shadow_records: self.shadow.records,
            live_keys: self.live.latest.len(),
            shadow_keys: self.shadow.latest.len(),
            same: 0,
            changed: 0,
            removed: 0,
            added: 0,
            keyless_records: (self.live.keyless_records, self.shadow.keyless_records),
            differences: Vec::new(),
        };
        let mut live = self.live.latest.into_iter().peekable();
        let mut shadow = self.shadow.latest.into_iter().peekable();
        loop {
            // Both maps are sorted by key: walk them together.
            let order = match (live.peek(), shadow.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            let (kind, key, live_value, shadow_value) = match order {
                std::cmp::Ordering::Less => {
                    let Some((key, value)) = live.next() else {
                        break;
                    };
                    (DifferenceKind::Removed, key, Some(value), None)
                }
                std::cmp::Ordering::Greater => {
                    let Some((key, value)) = shadow.next() else {
                        break;
                    };
                    (DifferenceKind::Added, key, None, Some(value))
                }
                std::cmp::Ordering::Equal => {
                    let (Some((key, a)), Some((_, b))) = (live.next(), shadow.next()) else {
                        break;
                    };
                    if self.value_format.same(&a, &b) {
                        report.same += 1;
                        continue;
                    }
                    (DifferenceKind::Changed, key, Some(a), Some(b))
                }
            };
            match kind {
                DifferenceKind::Changed => report.changed += 1,
                DifferenceKind::Removed => report.removed += 1,
                DifferenceKind::Added => report.added += 1,
            }
            if report.differences.len() < self.limit {
                let show = |value: Option<Vec<u8>>| value.map(|v| self.value_format.show(&v));
                report.differences.push(KeyDifference {
                    kind,
                    key: self.key_format.show(&key),
                    live: show(live_value),
                    shadow: show(shadow_value),
                });
            }
        }
        report
    }
}

/// The first `N` bytes as an array, when `bytes` has exactly `N`.
fn fixed<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.try_into().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windowed_time(key: &str, start_ms: i64) -> Vec<u8> {
        let mut bytes = key.as_bytes().to_vec();
        bytes.extend_from_slice(&start_ms.to_be_bytes());
        bytes
    }

    fn count(value: i64) -> Vec<u8> {
        value.to_be_bytes().to_vec()
    }

    /// Identical histories, and histories that differ only on the way (same final
    /// values), report no difference.
    #[test]
    fn same_final_values_are_no_difference() {
        let mut diff = OutputDiff::new(KeyFormat::default(), DataFormat::I64);
        for value in 1..=3 {
            diff.add_live(Some(b"alice"), Some(&count(value)));
        }
        // The shadow coalesced its updates (a record cache): only the last one.
        diff.add_shadow(Some(b"alice"), Some(&count(3)));
        diff.add_live(Some(b"bob"), Some(&count(1)));
        diff.add_shadow(Some(b"bob"), Some(&count(1)));
        let report = diff.finish();
        assert!(report.is_identical(), "{report}");
        assert_eq!(
            (report.same, report.live_records, report.shadow_records),
            (2, 4, 2)
        );
        assert!(
            report
                .to_string()
                .starts_with("no differences (2 keys the same")
        );
    }

    /// Changed, removed and added keys are each found, per key and window, with both values;
    /// a tombstone removes its key.
    #[test]
    fn finds_changed_removed_and_added_windows() {
        let format = KeyFormat {
            data: DataFormat::String,
            window: KeyWindow::Time,
        };
        let mut diff = OutputDiff::new(format, DataFormat::I64);
        diff.add_live(Some(&windowed_time("alice", 0)), Some(&count(2)));
        diff.add_shadow(Some(&windowed_time("alice", 0)), Some(&count(2)));
        diff.add_live(Some(&windowed_time("alice", 60_000)), Some(&count(1)));
        diff.add_shadow(Some(&windowed_time("alice", 60_000)), Some(&count(2)));
        diff.add_live(Some(&windowed_time("bob", 0)), Some(&count(5)));
        diff.add_shadow(Some(&windowed_time("bob", 0)), Some(&count(5)));
        diff.add_shadow(Some(&windowed_time("bob", 0)), None);
        diff.add_shadow(Some(&windowed_time("carol", 0)), Some(&count(7)));
        let report = diff.finish();
        assert_eq!(
            (report.same, report.changed, report.removed, report.added),
            (1, 1, 1, 1)
        );
        let shown: Vec<String> = report
            .differences
            .iter()
            .map(|d| format!("{:?} {} {:?} {:?}", d.kind, d.key, d.live, d.shadow))
            .collect();
        assert_eq!(
            shown,
            [
                r#"Changed alice [60000..) Some("1") Some("2")"#,
                r#"Removed bob [0..) Some("5") None"#,
                r#"Added carol [0..) None Some("7")"#,
            ]
        );
        let text = report.to_string();
        assert!(
            text.starts_with("3 differences: 1 changed, 1 removed, 1 added"),
            "{text}"
        );
        assert!(
            text.contains("changed  alice [60000..): live 1 -> shadow 2"),
            "{text}"
        );
    }

    /// The report lists at most `limit` differences and counts the rest.
    #[test]
    fn report_is_bounded() {
        let mut diff = OutputDiff::new(KeyFormat::default(), DataFormat::String).limit(2);
        for key in 0..5 {
            diff.add_shadow(Some(format!("k{key}").as_bytes()), Some(b"v"));
        }
        let report = diff.finish();
        assert_eq!((report.added, report.differences.len()), (5, 2));
        assert!(report.to_string().ends_with("... and 3 more\n"));
    }

    /// JSON values compare as JSON; session keys show both ends; keyless records are
    /// counted, not compared; bytes a format does not fit show as hex.
    #[test]
    fn formats() {
        let mut diff = OutputDiff::new(KeyFormat::default(), DataFormat::Json);
        diff.add_live(Some(b"k"), Some(br#"{"a":1,"b":2}"#));
        diff.add_shadow(Some(b"k"), Some(br#"{"b":2, "a":1}"#));
        diff.add_live(None, Some(b"1"));
        let report = diff.finish();
        assert!(report.is_identical());
        assert_eq!(report.keyless_records, (1, 0));

        let mut session = b"alice".to_vec();
        session.extend_from_slice(&20_i64.to_be_bytes());
        session.extend_from_slice(&10_i64.to_be_bytes());
        let format = KeyFormat {
            data: DataFormat::String,
            window: KeyWindow::Session,
        };
        assert_eq!(format.show(&session).to_string(), "alice [10, 20]");
        assert_eq!(format.show(b"short").key, "0x73686f7274");
        assert_eq!(DataFormat::I64.show(b"abc"), "0x616263");
        assert_eq!(DataFormat::String.show(&[0xff]), "0xff");
        assert_eq!("i64".parse(), Ok(DataFormat::I64));
        assert_eq!("session".parse(), Ok(KeyWindow::Session));
        assert!("yaml".parse::<DataFormat>().is_err());
    }
}
