//! Reading an `/api/` request: percent-decoded path segments and query parameters.

use super::ApiError;

/// The path after `/api/`, split at `/` and percent-decoded. `/api/topics/a%2Fb` is
/// `["topics", "a/b"]`: a topic name may hold any byte the escape can carry.
///
/// # Errors
/// `BadRequest` for a malformed escape or a segment that is not UTF-8.
pub fn path_segments(rest: &str) -> Result<Vec<String>, ApiError> {
    rest.split('/')
        .filter(|segment| !segment.is_empty())
        .map(percent_decode)
        .collect()
}

/// The decoded value of query parameter `name` (the part after `?`), if present.
///
/// # Errors
/// `BadRequest` for a malformed escape.
pub fn query_value(query: &str, name: &str) -> Result<Option<String>, ApiError> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key)? == name {
            return percent_decode(&value.replace('+', " ")).map(Some);
        }
    }
    Ok(None)
}

/// Query parameter `name` as a number, if present.
///
/// # Errors
/// `BadRequest` naming the parameter when it is not a number.
pub fn query_number(query: &str, name: &str) -> Result<Option<i64>, ApiError> {
    match query_value(query, name)? {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter {name} must be a number, not {text:?}"
            ))
        }),
    }
}

/// Decodes `%XX` escapes.
///
/// # Errors
/// `BadRequest` for a `%` without two hex digits, or bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte != b'%' {
            decoded.push(byte);
            index += 1;
            continue;
        }
        let escape = bytes.get(index + 1..index + 3);
        let value = escape
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or_else(|| ApiError::BadRequest(format!("malformed percent escape in {text:?}")))?;
        decoded.push(value);
        index += 3;
    }
    String::from_utf8(decoded)
        .map_err(|_| ApiError::BadRequest(format!("{text:?} does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_decode_and_bad_escapes_are_refused() {
        // Proves escapes decode in path and query, and malformed ones are a BadRequest.
        assert_eq!(
            path_segments("topics/a%2Fb/partitions/0").expect("decodes"),
            ["topics", "a/b", "partitions", "0"]
        );
        assert_eq!(
            query_value("max=5&offset=%31%32", "offset").expect("decodes"),
            Some("12".to_string())
        );
        assert_eq!(query_number("", "offset"), Ok(None));
        for bad in ["%", "%4", "%zz", "%ff%fe"] {
            assert!(
                matches!(percent_decode(bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            query_number("offset=ten", "offset"),
            Err(ApiError::BadRequest(message)) if message.contains("offset")
        ));
    }
}
