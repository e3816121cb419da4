//! Output for people and for scripts: aligned tables, or JSON with `--format json`.

use serde::Serialize;

/// `--format`: how a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned tables and sentences, for people.
    #[default]
    Text,
    /// JSON, for scripts: one document, or one object per line for records.
    Json,
}

/// `value` as pretty JSON with a final newline.
pub fn to_json(value: &impl Serialize) -> String {
    // Maps with string keys, strings and numbers always serialize.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    text
}

/// Lays out `rows` under `headers` in left-aligned columns two spaces apart, one line each,
/// with no trailing spaces. Each column is as wide as its widest cell (counted in characters).
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (column, text) in row.iter().enumerate() {
            let length = text.chars().count();
            match widths.get_mut(column) {
                Some(width) => *width = (*width).max(length),
                None => widths.push(length),
            }
        }
    }
    let mut output = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (column, text) in row.iter().enumerate() {
            if column > 0 {
                line.push_str("  ");
            }
            line.push_str(text);
            let padding = widths[column].saturating_sub(text.chars().count());
            line.extend(std::iter::repeat_n(' ', padding));
        }
        output.push_str(line.trim_end());
        output.push('\n');
    }
    output
}

/// A byte count for people: `512 B`, `1.5 KiB`, `20.0 MiB`, `3.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Display only: the rounding of a large count to f64 does not show at one decimal.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_in_binary_units() {
        // Proves small counts stay exact and larger ones get one decimal and the right unit.
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
