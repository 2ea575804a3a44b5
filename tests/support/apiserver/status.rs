//! Errors as `kind: Status` objects, the way kube-apiserver writes them
//! (`k8s.io/apimachinery/pkg/api/errors`): clients branch on `code` and `reason`,
//! and kube-rs and kubectl print `message`, so all three match the real server's.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// A failed request: HTTP code, `reason`, `message` and the rarer parts boxed (errors
/// travel through every `Result` of the server, so they stay small).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    extra: Box<Extra>,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    details: Option<Value>,
    /// Extra `metadata` of the Status (the inconsistent `continue` token of a 410).
    metadata: Map<String, Value>,
    /// Seconds for the `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            extra: Box::default(),
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.extra.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// The RBAC denial text, e.g. `deployments.apps "web" is forbidden: User "u" cannot get
    /// resource "deployments" in API group "apps" in the namespace "shop"`.
    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> ApiError {
        let qualified = qualified(resource, group);
        let subject = match name {
            Some(name) => format!("{qualified} \"{name}\""),
            None => qualified,
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let message = format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
        );
        ApiError::new(403, "Forbidden", message).with_details(details(group, resource, name))
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        let message = format!("{} \"{name}\" not found", qualified(resource, group));
        ApiError::new(404, "NotFound", message).with_details(details(group, resource, Some(name)))
    }

    /// A path that names no resource the server knows.
    pub fn no_route() -> ApiError {
        ApiError::new(404, "NotFound", "the server could not find the requested resource")
            .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        let message = format!("{} \"{name}\" already exists", qualified(resource, group));
        ApiError::new(409, "AlreadyExists", message).with_details(details(
            group,
            resource,
            Some(name),
        ))
    }

    /// A write whose `resourceVersion` precondition is stale.
    pub fn conflict(group: &str, resource: &str, name: &str) -> ApiError {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            qualified(resource, group)
        );
        ApiError::new(409, "Conflict", message).with_details(details(group, resource, Some(name)))
    }

    /// Server-side apply conflicts `(manager, field)`: the message and causes of
    /// structured-merge-diff's `Conflicts` error, which `kubectl apply --server-side` prints.
    pub fn apply_conflicts(conflicts: &[(String, String)], api_version: &str) -> ApiError {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{manager}\" using {api_version}"),
                    "field": field,
                })
            })
            .collect();
        let message = match conflicts {
            [(manager, field)] => {
                format!("Apply failed with 1 conflict: conflict with \"{manager}\" using {api_version}: {field}")
            }
            _ => {
                let mut managers: Vec<&String> = Vec::new();
                for (manager, _) in conflicts {
                    if !managers.contains(&manager) {
                        managers.push(manager);
                    }
                }
                let groups: Vec<String> = managers
                    .iter()
                    .map(|manager| {
                        let fields: Vec<String> = conflicts
                            .iter()
                            .filter(|(m, _)| m == *manager)
                            .map(|(_, field)| format!("- {field}"))
                            .collect();
                        format!(
                            "conflicts with \"{manager}\" using {api_version}:\n{}",
                            fields.join("\n")
                        )
                    })
                    .collect();
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    groups.join("\n")
                )
            }
        };
        ApiError::new(409, "Conflict", message).with_details(json!({ "causes": causes }))
    }

    pub fn expired(inconsistent_continue: String) -> ApiError {
        let mut error = ApiError::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter, or use the continue token \
             in this response to retrieve the remainder of the results. Continuing with the \
             provided token results in an inconsistent list - objects that were created, \
             modified, or deleted between the time the first chunk was returned and now may \
             show up in the list.",
        );
        error
            .extra
            .metadata
            .insert("continue".to_string(), Value::String(inconsistent_continue));
        error
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml (got {content_type:?})"),
        )
    }

    pub fn invalid(kind: &str, group: &str, name: &str, field: &str, detail: &str) -> ApiError {
        let kind_group = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        ApiError::new(
            422,
            "Invalid",
            format!("{kind_group} \"{name}\" is invalid: {field}: {detail}"),
        )
        .with_details(json!({
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [{"reason": "FieldValueRequired", "message": detail, "field": field}],
        }))
    }

    pub fn too_many_requests(retry_after: u64) -> ApiError {
        let mut error = ApiError::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(json!({ "retryAfterSeconds": retry_after }));
        error.extra.retry_after = Some(retry_after);
        error
    }

    pub fn internal(cause: &str) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {cause}"),
        )
        .with_details(json!({"causes": [{"message": cause}]}))
    }

    /// The `kind: Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": Value::Object(self.extra.metadata.clone()),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let (Some(details), Some(map)) = (&self.extra.details, status.as_object_mut()) {
            map.insert("details".to_string(), details.clone());
        }
        if let Some(map) = status.as_object_mut() {
            map.insert("code".to_string(), json!(self.code));
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(code, &self.to_status());
        if let Some(seconds) = self.extra.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// A JSON body with the content type the API server uses.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

/// A response of JSON serialised already.
pub fn bytes_response(code: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (code, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `deployments.apps`, or `secrets` for the core group: how RBAC and NotFound messages name
/// a resource.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, resource: &str, name: Option<&str>) -> Value {
    let mut details = Map::new();
    if let Some(name) = name {
        details.insert("name".to_string(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".to_string(), json!(group));
    }
    details.insert("kind".to_string(), json!(resource));
    Value::Object(details)
}
