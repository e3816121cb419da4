//! Reading the broker's HTTP listener: a small HTTP/1.1 GET over a raw socket, and a strict
//! parser of the Prometheus/OpenMetrics text format that `/metrics` serves.
//!
//! The parser refuses what a scraper would trip on: every line is blank, a comment or
//! `name{labels} value`; a sample's family has its `# TYPE` line before it; a histogram
//! has, per label set, `_bucket` series ending at `le="+Inf"`, a `_sum` and a `_count`
//! equal to the `+Inf` bucket, with buckets that never decrease; no series appears twice,
//! and `# EOF`, if present, is the last line.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long an HTTP exchange with the broker may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `GET path` to `address` and returns the status code and the body.
///
/// # Panics
/// If the connection fails or the answer is not HTTP.
pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, HTTP_TIMEOUT)
        .unwrap_or_else(|error| panic!("connect to {address}: {error}"));
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|error| panic!("read the answer to GET {path}: {error}"));
    let answer = String::from_utf8(answer).expect("an HTTP answer in UTF-8");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no header end in {answer:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status line in {head:?}"));
    (status, body.to_string())
}

/// One sample: its labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// A parsed scrape: every sample by series name, and every family's type.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Samples by name (`riffle_requests_total`), each with its labels and value.
    pub samples: BTreeMap<String, Vec<(Labels, f64)>>,
    /// Family types by family name (`riffle_requests` -> `counter`).
    pub types: HashMap<String, String>,
}

impl Scrape {
    /// The value of the series `name` with exactly `labels`, if present.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_string(), (*value).to_string()))
            .collect();
        self.samples
            .get(name)?
            .iter()
            .find(|(labels, _)| *labels == wanted)
            .map(|(_, value)| *value)
    }

    /// The sum of every series `name` whose labels include `labels`; 0 if none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples.get(name).map_or(0.0, |samples| {
            samples
                .iter()
                .filter(|(series, _)| {
                    labels
                        .iter()
                        .all(|(key, value)| series.get(*key).map(String::as_str) == Some(*value))
                })
                .map(|(_, value)| value)
                .sum()
        })
    }
}

/// Parses `text` strictly (see the module doc).
///
/// # Errors
/// The first line that breaks a rule, with its number and what is wrong.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    let mut seen_eof = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fail = |what: String| format!("line {number}: {what}: {line:?}");
        if seen_eof {
            return Err(fail("a line after # EOF".into()));
        }
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            seen_eof = comment == " EOF";
            if let Some(rest) = comment.strip_prefix(" TYPE ") {
                let (family, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| fail("a TYPE line without a type".into()))?;
                check_name(family).map_err(&fail)?;
                const TYPES: &[&str] = &[
                    "counter",
                    "gauge",
                    "histogram",
                    "summary",
                    "untyped",
                    "unknown",
                    "info",
                    "stateset",
                    "gaugehistogram",
                ];
                if !TYPES.contains(&kind) {
                    return Err(fail(format!("unknown type {kind}")));
                }
                if scrape.types.insert(family.into(), kind.into()).is_some() {
                    return Err(fail(format!("a second TYPE line for {family}")));
                }
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(&fail)?;
        let kind = family_type(&scrape.types, &name)
            .ok_or_else(|| fail(format!("no TYPE line before the sample {name}")))?;
        if kind == "counter" && !name.ends_with("_total") && !name.ends_with("_created") {
            return Err(fail(format!(
                "counter sample {name} does not end in _total"
            )));
        }
        let series = scrape.samples.entry(name.clone()).or_default();
        if series.iter().any(|(existing, _)| *existing == labels) {
            return Err(fail(format!("the series {name}{labels:?} appears twice")));
        }
        series.push((labels, value));
    }
    check_histograms(&scrape)?;
    Ok(scrape)
}

/// The type of the family `name` belongs to: the name itself, or it less a suffix its
/// type allows.
fn family_type<'a>(types: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    if let Some(kind) = types.get(name) {
        return Some(kind);
    }
    let suffixes: &[(&str, &[&str])] = &[
        ("_total", &["counter"]),
        ("_created", &["counter", "histogram", "summary"]),
        ("_bucket", &["histogram", "gaugehistogram"]),
        ("_sum", &["histogram", "summary"]),
        ("_count", &["histogram", "summary"]),
        ("_info", &["info"]),
    ];
    suffixes.iter().find_map(|(suffix, kinds)| {
        let family = name.strip_suffix(suffix)?;
        let kind = types.get(family)?;
        kinds.contains(&kind.as_str()).then_some(kind.as_str())
    })
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("{name:?} is not a metric name"))
    }
}

/// `name{key="value",...} value`, or `name value`.
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "neither labels nor a value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inside)?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_string())?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        text => text
            .parse::<f64>()
            .map_err(|_| format!("value {text:?} is not a number"))?,
    };
    Ok((name.to_string(), labels, value))
}

/// Labels up to the closing brace; returns them and what follows the brace.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, after_key) = text
            .split_once("=\"")
            .ok_or_else(|| "a label without =\"".to_string())?;
        check_name(key)?;
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape {other:?} in label {key}")),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {key} is not closed")),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} given twice"));
        }
        text = &after_key[end + 1..];
        if let Some(after_comma) = text.strip_prefix(',') {
            text = after_comma;
        } else if !text.starts_with('}') {
            return Err("labels not separated by commas".into());
        }
    }
}

/// Every histogram family: per label set, buckets ending at +Inf, never decreasing, and a
/// `_sum` and a `_count` equal to the +Inf bucket.
fn check_histograms(scrape: &Scrape) -> Result<(), String> {
    for (family, kind) in &scrape.types {
        if kind != "histogram" {
            continue;
        }
        let buckets = scrape
            .samples
            .get(&format!("{family}_bucket"))
            .cloned()
            .unwrap_or_default();
        let mut by_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for (mut labels, value) in buckets {
            let le = labels
                .remove("le")
                .ok_or_else(|| format!("{family}_bucket without le"))?;
            let bound = match le.as_str() {
                "+Inf" => f64::INFINITY,
                text => text
                    .parse()
                    .map_err(|_| format!("{family}_bucket le={text:?}"))?,
            };
            by_series.entry(labels).or_default().push((bound, value));
        }
        let counts = scrape.samples.get(&format!("{family}_count"));
        let sums = scrape.samples.get(&format!("{family}_sum"));
        let series_count = counts.map_or(0, Vec::len);
        if series_count != by_series.len() {
            return Err(format!(
                "{family}: {} bucket series but {series_count} _count series",
                by_series.len()
            ));
        }
        for (labels, buckets) in by_series {
            let find = |samples: Option<&Vec<(Labels, f64)>>| {
                samples.and_then(|samples| {
                    samples
                        .iter()
                        .find(|(series, _)| *series == labels)
                        .map(|(_, value)| *value)
                })
            };
            let count = find(counts).ok_or_else(|| format!("{family}{labels:?}: no _count"))?;
            find(sums).ok_or_else(|| format!("{family}{labels:?}: no _sum"))?;
            let (last_bound, last_value) = *buckets.last().expect("a series has a bucket");
            if last_bound != f64::INFINITY {
                return Err(format!("{family}{labels:?}: the last bucket is not +Inf"));
            }
            if last_value != count {
                return Err(format!(
                    "{family}{labels:?}: +Inf bucket {last_value} != _count {count}"
                ));
            }
            let ascending = buckets
                .windows(2)
                .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1);
            if !ascending {
                return Err(format!(
                    "{family}{labels:?}: buckets out of order: {buckets:?}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP requests Requests.\n\
        # TYPE requests counter\n\
        requests_total{api=\"Produce\",version=\"9\"} 3\n\
        # TYPE latency histogram\n\
        latency_bucket{le=\"0.5\"} 1\n\
        latency_bucket{le=\"+Inf\"} 2\n\
        latency_sum 1.5\n\
        latency_count 2\n\
        \n\
        # TYPE open gauge\n\
        open 4\n\
        # EOF\n";

    #[test]
    fn a_well_formed_scrape_parses_with_its_values() {
        // Proves counters, histograms and gauges are read with their labels and values.
        let scrape = parse(GOOD).expect("parses");
        assert_eq!(
            scrape.value("requests_total", &[("api", "Produce"), ("version", "9")]),
            Some(3.0)
        );
        assert_eq!(scrape.sum("requests_total", &[("api", "Produce")]), 3.0);
        assert_eq!(scrape.value("latency_count", &[]), Some(2.0));
        assert_eq!(scrape.value("open", &[]), Some(4.0));
    }

    #[test]
    fn each_broken_rule_is_refused() {
        // Proves the parser refuses each thing a scraper would trip on.
        let cases: &[(&str, &str)] = &[
            ("open 4\n", "no TYPE line"),
            ("# TYPE open gauge\nopen four\n", "not a number"),
            ("# TYPE open gauge\nopen{a=\"1\" 4\n", "not separated"),
            ("# TYPE open gauge\nopen 4\nopen 5\n", "appears twice"),
            ("# TYPE c counter\nc 1\n", "does not end in _total"),
            ("# TYPE open gauge\n# EOF\nopen 4\n", "after # EOF"),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
                "not +Inf",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
                "no _sum",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
                "!= _count",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
                "out of order",
            ),
            ("# TYPE 1bad gauge\n", "not a metric name"),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
