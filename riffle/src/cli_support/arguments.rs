//! Parsers for arguments of the form `key=value`, for clap's `value_parser`.

/// Splits `key=value` at the first `=`; the key must not be empty, the value may be.
///
/// # Errors
/// A message for clap when there is no `=` or no key.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        Some(_) => Err(format!("'{text}' has no name before '='")),
        None => Err(format!("'{text}' is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        // Proves values may hold '=' or be empty, and a missing name or '=' is refused.
        assert_eq!(
            key_value("retention.ms=1000"),
            Ok(("retention.ms".into(), "1000".into()))
        );
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(key_value("a="), Ok(("a".into(), String::new())));
        assert!(key_value("=b").is_err());
        assert!(key_value("retention.ms").is_err());
    }
}
