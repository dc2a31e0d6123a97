//! The dashboard's own stylesheet and script, served by the server under [`CSS_PATH`] and
//! [`JS_PATH`] with `?v=` [`asset_version`] for cache busting.

use std::sync::OnceLock;

/// The stylesheet (no framework, no fonts, no images from elsewhere).
pub const APP_CSS: &str = include_str!("../assets/app.css");
/// The script: live updates over SSE, "select all", confirmations. Pages work without it.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// Where the server serves [`APP_CSS`] (`text/css; charset=utf-8`).
pub const CSS_PATH: &str = "/ui/static/app.css";
/// Where the server serves [`APP_JS`] (`text/javascript; charset=utf-8`).
pub const JS_PATH: &str = "/ui/static/app.js";

const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const ASSET_HASH: u64 = fnv1a(
    fnv1a(0xcbf2_9ce4_8422_2325, APP_CSS.as_bytes()),
    APP_JS.as_bytes(),
);

/// A hash of both assets (16 hex digits): changes whenever either changes, so the server
/// can let browsers cache `/static/*?v=…` for a long time.
pub fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| format!("{ASSET_HASH:016x}"))
}

pub(crate) fn css_href() -> String {
    format!("{CSS_PATH}?v={}", asset_version())
}

pub(crate) fn js_href() -> String {
    format!("{JS_PATH}?v={}", asset_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_stable_hex() {
        let v = asset_version();
        assert_eq!(v.len(), 16);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(v, asset_version());
        assert_ne!(
            fnv1a(0xcbf2_9ce4_8422_2325, b"a"),
            fnv1a(0xcbf2_9ce4_8422_2325, b"b")
        );
    }

    #[test]
    fn assets_are_our_own_and_offline() {
        for text in [APP_CSS, APP_JS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("@import") && !text.contains("url("));
        }
        assert!(APP_JS.contains("/api/v1/alerts/stream"));
        assert!(APP_JS.contains("/api/v1/agents/stream"));
    }
}
