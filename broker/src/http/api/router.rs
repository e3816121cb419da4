//! From an `/api/` path to the handler that reads the answer.

use std::sync::Weak;
use std::time::Duration;

use serde::Serialize;

use super::records::RecordsQuery;
use super::request::{path_segments, query_number, query_value};
use super::{ApiError, cluster, groups, history, records, topics};
use crate::cluster::Cluster;
use crate::http::history::History;
use crate::http::{HttpAnswer, HttpState};

/// One `/api/` request, parsed before any lock is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Cluster,
    Topics,
    Topic(String),
    Records(RecordsQuery),
    Groups,
    Group(String),
    History { group: Option<String> },
}

/// The answer to a GET of `path` (starting with `/api/`, still percent-encoded) with
/// `query`: 200 and JSON, or an [`ApiError`]'s status and `{"error": ...}`.
pub async fn answer(state: &HttpState, path: &str, query: &str) -> HttpAnswer {
    match read(state, path, query).await {
        Ok(body) => HttpAnswer::json(200, body),
        Err(error) => error.into_answer(),
    }
}

async fn read(state: &HttpState, path: &str, query: &str) -> Result<Vec<u8>, ApiError> {
    let route = parse(path, query)?;
    let cluster = state
        .cluster
        .get()
        .and_then(Weak::upgrade)
        .ok_or(ApiError::NotReady)?;
    let history = state.history.clone();
    let uptime = state.started.elapsed();
    // Handlers take topic and group locks and read log files: off the async threads.
    tokio::task::spawn_blocking(move || run(&route, &cluster, &history, uptime))
        .await
        .map_err(|error| ApiError::Internal(format!("the handler failed: {error}")))?
}

fn parse(path: &str, query: &str) -> Result<Route, ApiError> {
    let rest = path.strip_prefix("/api/").unwrap_or_default();
    let segments = path_segments(rest)?;
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["cluster"] => Ok(Route::Cluster),
        ["topics"] => Ok(Route::Topics),
        ["topics", topic] => Ok(Route::Topic((*topic).to_string())),
        ["topics", topic, "partitions", partition, "records"] => {
            let query = RecordsQuery::new(
                (*topic).to_string(),
                partition,
                query_number(query, "offset")?,
                query_number(query, "max")?,
            )?;
            Ok(Route::Records(query))
        }
        ["groups"] => Ok(Route::Groups),
        ["groups", group] => Ok(Route::Group((*group).to_string())),
        ["history"] => Ok(Route::History {
            group: query_value(query, "group")?,
        }),
        _ => Err(ApiError::NotFound(format!(
            "no API at {path}; try /api/cluster, /api/topics, /api/groups or /api/history"
        ))),
    }
}

fn run(
    route: &Route,
    cluster: &Cluster,
    history: &History,
    uptime: Duration,
) -> Result<Vec<u8>, ApiError> {
    match route {
        Route::Cluster => to_json(&cluster::read(cluster, uptime)),
        Route::Topics => to_json(&topics::list(cluster)),
        Route::Topic(name) => to_json(&topics::describe(cluster, name)?),
        Route::Records(query) => to_json(&records::read(cluster, query)?),
        Route::Groups => to_json(&groups::list(cluster)),
        Route::Group(group_id) => to_json(&groups::describe(cluster, group_id)?),
        Route::History { group } => to_json(&history::read(history, group.as_deref())),
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|error| ApiError::Internal(format!("encoding: {error}")))
}
