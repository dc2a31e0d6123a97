//! The error responses of the OpenAPI document as types: each is one status with its
//! description, answered as `application/problem+json` with the `Problem` schema (and, when
//! the client should come back later, a `Retry-After` header). A handler's
//! `#[utoipa::path(responses(...))]` lists them beside its success response, so the media
//! type and schema are written once, here.
//!
//! The responses many operations share are below; one that a single module has is declared
//! in that module with [`problem_response!`].

use std::collections::BTreeMap;

use utoipa::openapi::response::Response;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::{ADMIN, READ, TRIAGE};
use crate::problem::{PROBLEM_JSON, ProblemDocument};

/// One problem response: `status` with `description`; `retry_after` describes the
/// `Retry-After` header when the answer has one.
pub(crate) fn problem(
    status: u16,
    description: &str,
    retry_after: Option<&str>,
) -> BTreeMap<String, RefOr<Response>> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ProblemDocument::name())))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    if let Some(header) = retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u64::schema()))
                .description(Some(header))
                .build(),
        );
    }
    BTreeMap::from([(status.to_string(), RefOr::T(response.build()))])
}

/// Declares unit types that each document one problem response (see [`problem`]):
///
/// ```text
/// problem_response! {
///     /// Why the type exists (optional).
///     pub(crate) NoSuchAlert = 404, "No such alert";
///     pub(crate) QueueFull = 503, "The queue is full", retry_after = "Seconds to wait";
/// }
/// ```
macro_rules! problem_response {
    ($(
        $(#[$attr:meta])*
        $vis:vis $name:ident = $status:literal, $description:expr $(, retry_after = $retry:expr)?;
    )+) => {$(
        $(#[$attr])*
        $vis struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::problem_responses::problem(
                    $status,
                    $description,
                    $crate::problem_responses::problem_response!(@retry $($retry)?),
                )
            }
        }
    )+};
    (@retry) => { None };
    (@retry $retry:expr) => { Some($retry) };
}
pub(crate) use problem_response;

problem_response! {
    /// A bearer token is missing or unknown (operator routes, ingest, metrics).
    pub(crate) Unauthorized = 401, "No or an invalid bearer token";
    /// An agent's route without the client certificate of a current (enrolled, unrevoked)
    /// agent.
    pub(crate) NoAgentCertificate = 401, "No, or not a current agent's, client certificate";
    /// An operator route on a server without a store or rules (`api-not-configured`).
    pub(crate) ApiNotConfigured = 503, "The API is not configured on this server";
    /// An agent route on a server without TLS or a store (`agents-not-configured`).
    pub(crate) AgentsNotConfigured = 503, "Enrollment needs TLS and a store";
    /// A query parameter the route doesn't know, repeated, or out of range
    /// (`invalid-parameter`, `parameter` names it).
    pub(crate) BadParameter = 400, "Bad parameter";
    /// As [`BadParameter`], or a `cursor` this listing did not produce.
    pub(crate) BadParameterOrCursor = 400, "Bad parameter or cursor";
    /// A JSON body that does not parse (`malformed-json`, `line` and `column` say where).
    pub(crate) NotJson = 400, "Not JSON (`line` and `column` say where)";
    /// A JSON body larger than the API reads (`too-large`, `limit_name` api.max_json_body).
    pub(crate) JsonTooLarge = 413, "The body is larger than 1 MiB (`limit_name` api.max_json_body)";
    /// A body sent as another media type than JSON (`unsupported-media-type`).
    pub(crate) NotJsonMediaType = 415, "Not application/json";
    /// Valid JSON of the wrong shape: a member missing, mistyped or out of its bounds.
    pub(crate) InvalidBody = 422, "A member is missing, mistyped or out of bounds (`field` when known)";
}

/// A credential whose role lacks the right `NEED` ([`READ`], [`TRIAGE`] or [`ADMIN`]) of the
/// route (`forbidden`).
pub(crate) struct Forbidden<const NEED: u8>;

impl<const NEED: u8> utoipa::IntoResponses for Forbidden<NEED> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let description = match NEED {
            READ => "An agent credential",
            TRIAGE => "A viewer or agent credential",
            ADMIN => "Not an admin credential",
            _ => "The credential's role may not do this",
        };
        problem(403, description, None)
    }
}

#[cfg(test)]
mod tests {
    use utoipa::IntoResponses;

    use super::*;

    #[test]
    fn a_problem_response_is_problem_json_with_the_problem_schema() {
        let responses = serde_json::to_value(Forbidden::<TRIAGE>::responses()).unwrap();
        assert_eq!(
            responses["403"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert_eq!(
            responses["403"]["description"],
            "A viewer or agent credential"
        );
        problem_response! {
            Later = 503, "Later", retry_after = "Seconds to wait";
        }
        let responses = serde_json::to_value(Later::responses()).unwrap();
        assert_eq!(
            responses["503"]["headers"]["Retry-After"]["schema"]["type"],
            "integer"
        );
    }
}
