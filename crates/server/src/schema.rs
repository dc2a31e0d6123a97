//! The normalized event JSON Schema and its validator live in `dozor-event` (the agent's tests
//! use them too); the server serves the schema at `/api/v1/schema/event.json`.

pub use dozor_event::schema::*;
