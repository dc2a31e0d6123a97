//! Errors as `application/problem+json` (RFC 9457).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response: an RFC 9457 problem document (boxed, so that `Result<_, Problem>` stays
/// small; fields are read through `Deref`).
#[derive(Debug, Clone)]
pub struct Problem {
    body: Box<ProblemDocument>,
}

impl std::ops::Deref for Problem {
    type Target = ProblemDocument;

    fn deref(&self) -> &ProblemDocument {
        &self.body
    }
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

/// An RFC 9457 problem document. `type` is a `urn:dozor:problem:<slug>` URI that names the kind
/// of problem; extension members carry the details a client can act on (`limit`, `line`,
/// `column`, ...).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI naming the kind of problem, e.g. `urn:dozor:problem:too-large`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension members (RFC 9457 §3.2).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    retry_after: Option<Duration>,
    #[serde(skip)]
    www_authenticate: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Problem {
        Problem {
            body: Box::new(ProblemDocument {
                type_uri: format!("urn:dozor:problem:{slug}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: None,
                instance: None,
                extensions: serde_json::Map::new(),
                retry_after: None,
                www_authenticate: None,
            }),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.body.detail = Some(detail.into());
        self
    }

    pub fn instance(mut self, path: impl Into<String>) -> Problem {
        self.body.instance = Some(path.into());
        self
    }

    /// Adds an extension member.
    pub fn with(mut self, name: &str, value: impl Serialize) -> Problem {
        if let Ok(value) = serde_json::to_value(value) {
            self.body.extensions.insert(name.to_owned(), value);
        }
        self
    }

    /// Sends `Retry-After` (whole seconds, at least 1) and a `retry_after` member.
    pub fn retry_after(mut self, after: Duration) -> Problem {
        let secs = after.as_secs().max(1);
        self.body.retry_after = Some(Duration::from_secs(secs));
        self.with("retry_after", secs)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `urn:dozor:problem:` slug.
    pub fn slug(&self) -> &str {
        self.type_uri
            .strip_prefix("urn:dozor:problem:")
            .unwrap_or(&self.type_uri)
    }

    // Constructors for the problems the API returns.

    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, slug, "Bad request").detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Problem {
        let mut p = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
        )
        .detail(detail);
        p.body.www_authenticate = Some(if invalid_token {
            "Bearer realm=\"dozor\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"dozor\""
        });
        p
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(detail)
    }

    pub fn too_large(limit_key: &str, limit: u64, detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request too large",
        )
        .detail(detail)
        .with("limit_name", limit_key)
        .with("limit", limit)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .detail(detail)
    }

    pub fn unavailable(slug: &str, detail: impl Into<String>, retry: Duration) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, slug, "Service unavailable")
            .detail(detail)
            .retry_after(retry)
    }

    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
        .detail(detail)
    }

    pub fn not_found(path: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(format!("no resource at {path}"))
            .instance(path)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            br#"{"type":"urn:dozor:problem:internal","title":"Internal server error","status":500}"#
                .to_vec()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_extensions() {
        let p = Problem::too_large("limits.max_body_bytes", 1024, "too big").instance("/x");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:dozor:problem:too-large");
        assert_eq!(v["status"], 413);
        assert_eq!(v["limit"], 1024);
        assert_eq!(v["limit_name"], "limits.max_body_bytes");
        assert_eq!(v["instance"], "/x");
        let r =
            Problem::unavailable("queue-full", "full", Duration::from_millis(10)).into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
