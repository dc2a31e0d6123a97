//! Schema helpers for the `openapi` feature: the parts of the OpenAPI document that the
//! derived schemas can't say on their own.

use utoipa::openapi::{Ref, RefOr, Schema};

/// An event document: the `Event` component (the server puts the event JSON Schema there).
pub fn event_doc_schema() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("Event"))
}
