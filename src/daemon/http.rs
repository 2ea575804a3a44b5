//! The daemon's HTTP endpoints: probes for Kubernetes, metrics for Prometheus, and a small
//! API to run a scan now and read the latest one.

use super::{lock, ApiToken, Daemon, Refused};
use crate::store::Trigger;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The content type of the OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(super) fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/scan", post(scan))
        .route("/scans/latest", get(latest))
        .with_state(daemon)
}

/// The process is up and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(daemon): State<Arc<Daemon>>) -> Response {
    let check = Arc::clone(&daemon);
    match tokio::task::spawn_blocking(move || check.unready()).await {
        Ok(None) => Json(json!({"ready": true})).into_response(),
        Ok(Some(reason)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": reason})),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        daemon.metrics.encode(),
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct ScanQuery {
    /// Answer when the scan has finished, with its result, instead of at once.
    #[serde(default)]
    wait: bool,
    #[serde(default)]
    include_in_sync: bool,
}

/// `POST /scan`: runs a scan now. Refused (403) unless `daemon.api_token_env` names a set
/// variable, 401 without that bearer token, 409 while a scan runs.
async fn scan(
    State(daemon): State<Arc<Daemon>>,
    headers: HeaderMap,
    Query(query): Query<ScanQuery>,
) -> Response {
    let expected = match &daemon.token {
        ApiToken::NotConfigured => {
            return error(
                StatusCode::FORBIDDEN,
                "POST /scan is disabled: set daemon.api_token_env to the name of an environment variable holding the API token",
            )
        }
        ApiToken::Unset(name) => {
            return error(
                StatusCode::FORBIDDEN,
                &format!("POST /scan is disabled: the environment variable {name} (daemon.api_token_env) is not set"),
            )
        }
        ApiToken::Token(token) => token,
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|given| same(given.as_bytes(), expected.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "a valid bearer token is required"})),
        )
            .into_response();
    }
    let mut finished = daemon.finished.subscribe();
    let number = match daemon.start(Trigger::Api, None) {
        Ok(number) => number,
        Err(Refused::Busy(reason)) => return error(StatusCode::CONFLICT, &reason),
        Err(Refused::Stopping) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is shutting down",
            )
        }
    };
    if !query.wait {
        return (
            StatusCode::ACCEPTED,
            Json(json!({"run": number, "status": "started"})),
        )
            .into_response();
    }
    if finished.wait_for(|done| *done >= number).await.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        );
    }
    let outcome = lock(&daemon.runs)
        .last_outcome
        .clone()
        .filter(|(run, _)| *run == number)
        .map(|(_, outcome)| outcome);
    match outcome {
        Some(Ok(scan_id)) => stored_scan(daemon, Some(scan_id), query.include_in_sync).await,
        Some(Err(message)) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the run finished but its outcome was not kept",
        ),
    }
}

#[derive(Debug, serde::Deserialize)]
struct LatestQuery {
    #[serde(default)]
    include_in_sync: bool,
}

/// `GET /scans/latest`: the latest stored scan, as `report --format json` prints it.
async fn latest(State(daemon): State<Arc<Daemon>>, Query(query): Query<LatestQuery>) -> Response {
    stored_scan(daemon, None, query.include_in_sync).await
}

/// A stored scan (the latest when `id` is none) as JSON.
async fn stored_scan(daemon: Arc<Daemon>, id: Option<i64>, include_in_sync: bool) -> Response {
    let loaded = tokio::task::spawn_blocking(move || {
        let store = lock(&daemon.store);
        let id = match id {
            Some(id) => Some(id),
            None => store.latest_scan_id()?,
        };
        match id {
            Some(id) => store.load(id),
            None => Ok(None),
        }
    })
    .await;
    match loaded {
        Ok(Ok(Some(result))) => (
            [(header::CONTENT_TYPE, "application/json")],
            crate::report::json::render(&result, include_in_sync),
        )
            .into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no scan recorded yet"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
