//! The `/apps` routes: applications and their stores over HTTP, as plain functions (a
//! path and a query in, a status and JSON out), so every host serves them the same way.
//!
//! # Format
//!
//! | GET | answer |
//! |---|---|
//! | `/apps` | `{"apps": [APP, ...]}` |
//! | `/apps/{app}` | `APP`: [`super::AppSummary`] |
//! | `/apps/{app}/stores/{store}/keys/{key}` | `{"key": .., "value": ..}`; 404 when absent |
//! | `/apps/{app}/stores/{store}/keys?from=K&to=K&limit=N` | `{"entries": [{"key": .., "value": ..}], "truncated": bool}`: keys in `[from, to)` by serialized bytes, at most `limit` ([`RANGE_LIMIT_DEFAULT`], capped at [`RANGE_LIMIT_MAX`]) |
//! | `/apps/{app}/stores/{store}/windows/{key}?from=MS&to=MS` | `{"windows": [{"start": ms, "end": ms, "value": ..}]}`: windows starting within `[from, to]` (default: all) |
//! | `/apps/{app}/stores/{store}/sessions/{key}` | `{"sessions": [{"start": ms, "end": ms, "value": ..}]}` |
//!
//! Path parts are percent-decoded; keys are read by the store's key serde (strings as
//! they are, numbers in decimal, JSON as JSON). Errors are `{"error": "..."}`: 404 for an
//! unknown application, store, key or route, 400 for a bad key or parameter or a store of
//! another kind, 500 when a store cannot be read.

use std::sync::Arc;

use serde_json::json;

use super::app::AppHandle;
use crate::store::json_query::{JsonQueryError, JsonStores, RANGE_LIMIT_DEFAULT, RANGE_LIMIT_MAX};

/// A route's answer: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl RouteAnswer {
    fn json(status: u16, value: &impl serde::Serialize) -> RouteAnswer {
        match serde_json::to_vec(value) {
            Ok(body) => RouteAnswer { status, body },
            Err(error) => RouteAnswer::error(500, &format!("cannot encode the answer: {error}")),
        }
    }

    fn error(status: u16, message: &str) -> RouteAnswer {
        let body = json!({ "error": message }).to_string().into_bytes();
        RouteAnswer { status, body }
    }
}

/// The answer to `GET path?query` over `apps`. `path` is `/apps` or starts with
/// `/apps/`, still percent-encoded; `query` is the part after `?` (empty without one).
/// Reads stores, which may wait on the disk: call from a blocking thread, or through
/// [`answer_blocking`].
pub fn answer(apps: &[AppHandle], path: &str, query: &str) -> RouteAnswer {
    match route(apps, path, query) {
        Ok(answer) | Err(answer) => answer,
    }
}

/// [`answer`] on tokio's blocking pool, where the runtimes do their store reads.
pub async fn answer_blocking(apps: Arc<[AppHandle]>, path: String, query: String) -> RouteAnswer {
    let answered = tokio::task::spawn_blocking(move || answer(&apps, &path, &query)).await;
    answered.unwrap_or_else(|error| RouteAnswer::error(500, &format!("the query failed: {error}")))
}

/// One request: the parts of the path decide, errors come back as answers.
fn route(apps: &[AppHandle], path: &str, query: &str) -> Result<RouteAnswer, RouteAnswer> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let parts: Vec<String> = path
        .split('/')
        .skip(2) // "" and "apps"
        .map(percent_decode)
        .collect::<Result<_, _>>()?;
    let parameters = Parameters::parse(query)?;
    match parts.as_slice() {
        [] => {
            parameters.allow(&[])?;
            let summaries: Vec<_> = apps.iter().map(AppHandle::summary).collect();
            Ok(RouteAnswer::json(200, &json!({ "apps": summaries })))
        }
        [app] => {
            parameters.allow(&[])?;
            Ok(RouteAnswer::json(200, &find_app(apps, app)?.summary()))
        }
        [app, stores, store, rest @ ..] if stores == "stores" => {
            let stores = find_app(apps, app)?.stores();
            store_route(stores, store, rest, &parameters)
        }
        _ => Err(not_found_route()),
    }
}

fn store_route(
    stores: &JsonStores,
    store: &str,
    rest: &[String],
    parameters: &Parameters,
) -> Result<RouteAnswer, RouteAnswer> {
    match rest {
        [keys] if keys == "keys" => {
            parameters.allow(&["from", "to", "limit"])?;
            let limit = match parameters.get("limit") {
                Some(text) => parse_parameter::<usize>("limit", text)?,
                None => RANGE_LIMIT_DEFAULT,
            };
            let (from, to) = (parameters.get("from"), parameters.get("to"));
            let range = stores.range(store, from, to, limit.min(RANGE_LIMIT_MAX));
            Ok(RouteAnswer::json(200, &range.map_err(query_error)?))
        }
        [keys, key] if keys == "keys" => {
            parameters.allow(&[])?;
            match stores.get(store, key).map_err(query_error)? {
                Some(entry) => Ok(RouteAnswer::json(200, &entry)),
                None => Err(RouteAnswer::error(
                    404,
                    &format!("no key {key:?} in store {store:?} on this instance"),
                )),
            }
        }
        [windows, key] if windows == "windows" => {
            parameters.allow(&["from", "to"])?;
            let from_ms = optional_ms(parameters, "from", i64::MIN)?;
            let to_ms = optional_ms(parameters, "to", i64::MAX)?;
            let windows = stores.fetch_windows(store, key, from_ms, to_ms);
            let windows = windows.map_err(query_error)?;
            Ok(RouteAnswer::json(200, &json!({ "windows": windows })))
        }
        [sessions, key] if sessions == "sessions" => {
            parameters.allow(&[])?;
            let sessions = stores.fetch_sessions(store, key).map_err(query_error)?;
            Ok(RouteAnswer::json(200, &json!({ "sessions": sessions })))
        }
        _ => Err(not_found_route()),
    }
}

fn find_app<'a>(apps: &'a [AppHandle], name: &str) -> Result<&'a AppHandle, RouteAnswer> {
    apps.iter()
        .find(|app| app.application_id() == name)
        .ok_or_else(|| RouteAnswer::error(404, &format!("no application {name:?} runs here")))
}

fn not_found_route() -> RouteAnswer {
    RouteAnswer::error(
        404,
        "no such route; try /apps, /apps/{app}, /apps/{app}/stores/{store}/keys/{key}, \
         /apps/{app}/stores/{store}/keys?from=&to=&limit=, \
         /apps/{app}/stores/{store}/windows/{key}?from=&to= or \
         /apps/{app}/stores/{store}/sessions/{key}",
    )
}

fn query_error(error: JsonQueryError) -> RouteAnswer {
    let status = match &error {
        JsonQueryError::UnknownStore(_) => 404,
        JsonQueryError::WrongKind { .. } | JsonQueryError::BadKey { .. } => 400,
        JsonQueryError::State(_) => 500,
    };
    RouteAnswer::error(status, &error.to_string())
}

fn parse_parameter<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, RouteAnswer> {
    text.trim()
        .parse()
        .map_err(|_| RouteAnswer::error(400, &format!("bad parameter {name}: {text:?}")))
}

fn optional_ms(parameters: &Parameters, name: &str, default: i64) -> Result<i64, RouteAnswer> {
    match parameters.get(name) {
        Some(text) => parse_parameter(name, text),
        None => Ok(default),
    }
}

/// The decoded `name=value` pairs of a query string.
struct Parameters(Vec<(String, String)>);

impl Parameters {
    fn parse(query: &str) -> Result<Parameters, RouteAnswer> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // In a query string a `+` is a space (forms encode spaces so).
            let decode = |text: &str| percent_decode(&text.replace('+', " "));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Parameters(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        let found = self.0.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    }

    /// Refuses a parameter the route does not take, naming it.
    fn allow(&self, names: &[&str]) -> Result<(), RouteAnswer> {
        match self
            .0
            .iter()
            .find(|(name, _)| !names.contains(&name.as_str()))
        {
            Some((name, _)) => Err(RouteAnswer::error(
                400,
                &format!("unknown parameter {name:?}; this route takes {names:?}"),
            )),
            None => Ok(()),
        }
    }
}

/// `text` with each `%XX` replaced by its byte; the result must be UTF-8.
fn percent_decode(text: &str) -> Result<String, RouteAnswer> {
    let bad = || RouteAnswer::error(400, &format!("bad percent-encoding in {text:?}"));
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte != b'%' {
            decoded.push(byte);
            at += 1;
            continue;
        }
        let hex = bytes.get(at + 1..at + 3).ok_or_else(bad)?;
        let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
        decoded.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
        at += 3;
    }
    String::from_utf8(decoded).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_takes_escapes_and_refuses_broken_ones() {
        assert_eq!(percent_decode("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
        for bad in ["%", "%2", "%zz", "%FF"] {
            assert_eq!(percent_decode(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn unknown_parameters_are_refused_by_name() {
        let parameters = Parameters::parse("from=a+b&limit=3").unwrap();
        assert_eq!(parameters.get("from"), Some("a b"));
        assert!(parameters.allow(&["from", "limit"]).is_ok());
        let refused = parameters.allow(&["from"]).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(String::from_utf8_lossy(&refused.body).contains("limit"));
    }
}
