//! How store entries are laid out as bytes: one module for the format persistent stores
//! write to disk (in-memory stores use the same bytes, so both order entries alike).
//!
//! ```text
//! value          timestamp_ms (i64 BE) ‖ value bytes
//! window entry   0x00 ‖ escaped key ‖ start_ms (i64, sign-flipped BE) ‖ seq (i32, sign-flipped BE)
//! window index   0x01 ‖ start_ms ‖ escaped key ‖ seq                         (empty value)
//! session entry  0x00 ‖ escaped key ‖ end_ms ‖ start_ms
//! session index  0x01 ‖ end_ms ‖ escaped key ‖ start_ms                      (empty value)
//! ```
//!
//! Escaping (each 0x00 becomes 0x00 0xFF, then a 0x00 0x00 terminator) keeps byte order
//! and makes keys prefix-free, so one key's entries are one contiguous range and the index
//! orders entries by time, then key bytes, as Kafka Streams' in-memory stores do.
//! Sign-flipped big-endian integers sort as the signed values.
//!
//! Keyspaces (the engine's column families) are named `<task>.<store>` for key-value
//! stores and `<task>.<store>.<segment>` (decimal segment number) for window and session
//! stores, so expiring a segment drops one keyspace.

use super::StoredValue;

/// The first byte of an entry in a window or session segment.
pub(crate) const ENTRY_PREFIX: u8 = 0x00;
/// The first byte of an index entry (time first) in a window or session segment.
pub(crate) const INDEX_PREFIX: u8 = 0x01;

/// Longest keyspace name the engine accepts, in bytes.
pub(crate) const MAX_KEYSPACE_NAME_BYTES: usize = 255;

/// Bytes of an encoded timestamp.
const TIME_BYTES: usize = 8;

/// `value` as stored: its timestamp first.
pub(crate) fn encode_value(value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(TIME_BYTES + value.len());
    bytes.extend_from_slice(&timestamp_ms.to_be_bytes());
    bytes.extend_from_slice(value);
    bytes
}

/// A stored value back, `None` if it is too short to hold a timestamp (a corrupt entry).
pub(crate) fn decode_value(bytes: &[u8]) -> Option<StoredValue> {
    let (timestamp, value) = bytes.split_at_checked(TIME_BYTES)?;
    let timestamp: [u8; TIME_BYTES] = timestamp.try_into().ok()?;
    Some(StoredValue {
        value: value.to_vec(),
        timestamp_ms: i64::from_be_bytes(timestamp),
    })
}

/// An i64 as bytes that sort like the signed value.
pub(crate) fn time_bytes(time_ms: i64) -> [u8; 8] {
    (time_ms ^ i64::MIN).to_be_bytes()
}

fn read_time(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (time, rest) = bytes.split_at_checked(TIME_BYTES)?;
    let time: [u8; TIME_BYTES] = time.try_into().ok()?;
    Some((i64::from_be_bytes(time) ^ i64::MIN, rest))
}

/// A tiebreak of a window or session entry: a duplicate number or a session start.
pub(crate) trait Tiebreak: Copy + Ord {
    /// The smallest value, where ranges start.
    const MIN: Self;
    /// The largest value, where ranges end.
    const MAX: Self;
    /// Appends the value in sortable form.
    fn append(self, bytes: &mut Vec<u8>);
    /// Reads the value from the whole of `bytes`.
    fn read(bytes: &[u8]) -> Option<Self>;
}

impl Tiebreak for i32 {
    const MIN: i32 = i32::MIN;
    const MAX: i32 = i32::MAX;
    fn append(self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&(self ^ i32::MIN).to_be_bytes());
    }
    fn read(bytes: &[u8]) -> Option<i32> {
        let array: [u8; 4] = bytes.try_into().ok()?;
        Some(i32::from_be_bytes(array) ^ i32::MIN)
    }
}

impl Tiebreak for i64 {
    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;
    fn append(self, bytes: &mut Vec<u8>) {
        bytes.extend_from_slice(&time_bytes(self));
    }
    fn read(bytes: &[u8]) -> Option<i64> {
        let (time, rest) = read_time(bytes)?;
        rest.is_empty().then_some(time)
    }
}

/// Appends `key` escaped: order-preserving and prefix-free.
fn append_escaped(bytes: &mut Vec<u8>, key: &[u8]) {
    for byte in key {
        bytes.push(*byte);
        if *byte == 0 {
            bytes.push(0xFF);
        }
    }
    bytes.extend_from_slice(&[0, 0]);
}

/// Reads an escaped key from the front of `bytes`; returns it and what follows.
fn read_escaped(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut key = Vec::new();
    let mut at = 0;
    loop {
        let byte = *bytes.get(at)?;
        if byte != 0 {
            key.push(byte);
            at += 1;
            continue;
        }
        match *bytes.get(at + 1)? {
            0xFF => {
                key.push(0);
                at += 2;
            }
            0 => return Some((key, bytes.get(at + 2..)?)),
            _ => return None,
        }
    }
}

/// The entry key of `(key, time, tiebreak)`.
pub(crate) fn entry_key<T: Tiebreak>(key: &[u8], time_ms: i64, tiebreak: T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.len() + 24);
    bytes.push(ENTRY_PREFIX);
    append_escaped(&mut bytes, key);
    bytes.extend_from_slice(&time_bytes(time_ms));
    tiebreak.append(&mut bytes);
    bytes
}

/// The index key of `(key, time, tiebreak)`.
pub(crate) fn index_key<T: Tiebreak>(key: &[u8], time_ms: i64, tiebreak: T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.len() + 24);
    bytes.push(INDEX_PREFIX);
    bytes.extend_from_slice(&time_bytes(time_ms));
    append_escaped(&mut bytes, key);
    tiebreak.append(&mut bytes);
    bytes
}

/// The smallest index key at `time_ms`.
pub(crate) fn index_start(time_ms: i64) -> Vec<u8> {
    let mut bytes = vec![INDEX_PREFIX];
    bytes.extend_from_slice(&time_bytes(time_ms));
    bytes
}

/// `(key, time, tiebreak)` from an entry key; `None` if it is not one.
pub(crate) fn parse_entry_key<T: Tiebreak>(bytes: &[u8]) -> Option<(Vec<u8>, i64, T)> {
    let rest = bytes.strip_prefix(&[ENTRY_PREFIX])?;
    let (key, rest) = read_escaped(rest)?;
    let (time_ms, rest) = read_time(rest)?;
    Some((key, time_ms, T::read(rest)?))
}

/// `(key, time, tiebreak)` from an index key; `None` if it is not one.
pub(crate) fn parse_index_key<T: Tiebreak>(bytes: &[u8]) -> Option<(Vec<u8>, i64, T)> {
    let rest = bytes.strip_prefix(&[INDEX_PREFIX])?;
    let (time_ms, rest) = read_time(rest)?;
    let (key, rest) = read_escaped(rest)?;
    Some((key, time_ms, T::read(rest)?))
}

/// The keyspace of a key-value store of a task.
pub(crate) fn store_keyspace(task: &str, store: &str) -> String {
    format!("{task}.{store}")
}

/// The keyspace of one segment of a window or session store of a task.
pub(crate) fn segment_keyspace(task: &str, store: &str, segment: i64) -> String {
    format!("{task}.{store}.{segment}")
}

/// The segment number in a keyspace name of `store` of `task`, if it is one of its segments.
pub(crate) fn parse_segment_keyspace(name: &str, task: &str, store: &str) -> Option<i64> {
    let rest = name.strip_prefix(task)?.strip_prefix('.')?;
    let digits = rest.strip_prefix(store)?.strip_prefix('.')?;
    let parsed: i64 = digits.parse().ok()?;
    // Only the canonical spelling, so no other store's name parses as a segment.
    (parsed.to_string() == digits).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry and index keys parse back, sort as `(key, time, tiebreak)` and `(time, key,
    /// tiebreak)` tuples do (negative times and keys with zero bytes included), and one
    /// key's entries never interleave with a longer key that extends it.
    #[test]
    fn keys_round_trip_and_sort_like_tuples() {
        let keys: [&[u8]; 5] = [b"", b"a", b"a\0", b"a\0b", b"b"];
        let times = [i64::MIN, -5, 0, 7, i64::MAX];
        let mut tuples = Vec::new();
        for key in keys {
            for time in times {
                for seq in [i32::MIN, 0, 3] {
                    tuples.push((key.to_vec(), time, seq));
                }
            }
        }
        for (key, time, seq) in &tuples {
            let entry = entry_key(key, *time, *seq);
            assert_eq!(parse_entry_key(&entry), Some((key.clone(), *time, *seq)));
            let index = index_key(key, *time, *seq);
            assert_eq!(parse_index_key(&index), Some((key.clone(), *time, *seq)));
        }
        let mut by_entry = tuples.clone();
        by_entry.sort_by_key(|(key, time, seq)| entry_key(key, *time, *seq));
        let mut expected = tuples.clone();
        expected.sort();
        assert_eq!(by_entry, expected);
        let mut by_index = tuples.clone();
        by_index.sort_by_key(|(key, time, seq)| index_key(key, *time, *seq));
        expected.sort_by(|a, b| (a.1, &a.0, a.2).cmp(&(b.1, &b.0, b.2)));
        assert_eq!(by_index, expected);
    }

    /// Values keep their timestamp; a value too short for one is refused.
    #[test]
    fn values_round_trip() {
        let stored = decode_value(&encode_value(b"v", -3));
        assert_eq!(
            stored,
            Some(StoredValue {
                value: b"v".to_vec(),
                timestamp_ms: -3
            })
        );
        assert_eq!(decode_value(b"short"), None);
    }

    /// Segment keyspace names parse back for their own store only.
    #[test]
    fn segment_names_round_trip() {
        let name = segment_keyspace("0_1", "counts", 42);
        assert_eq!(parse_segment_keyspace(&name, "0_1", "counts"), Some(42));
        let negative = segment_keyspace("0_1", "counts", -2);
        assert_eq!(parse_segment_keyspace(&negative, "0_1", "counts"), Some(-2));
        assert_eq!(parse_segment_keyspace(&name, "0_1", "count"), None);
        assert_eq!(parse_segment_keyspace(&name, "0_2", "counts"), None);
        assert_eq!(
            parse_segment_keyspace("0_1.counts.0042", "0_1", "counts"),
            None
        );
    }
}
