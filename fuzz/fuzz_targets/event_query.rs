//! The event query language (`GET /api/v1/events?q=...`, the dashboard's search box): parsed
//! and compiled to SQL for both dialects.
#![no_main]

use dozor_store::query::parse;
use dozor_store::query::sql::{Dialect, SqlBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(Some(expr)) => {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let mut builder = SqlBuilder::new(dialect);
                builder.push_expr(&expr);
            }
            let _ = format!("{expr:?}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
