//! The sign-in page and the error page (no navigation: there may be no session).

use askama::Template;

use super::layout::Layout;
use super::render;
use crate::i18n::{Lang, Tr};

/// Why a sign-in failed (what the login page says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user name or password (or a disabled account: not told apart).
    Invalid,
    /// The form's security token was missing or stale: the page must be reloaded.
    Expired,
    /// Too many failed attempts: wait this many seconds.
    Throttled(u64),
    /// The server could not check the password now.
    Unavailable,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    l: Layout,
    tr: Tr,
    error: Option<String>,
    username: &'a str,
    csrf: &'a str,
    next: &'a str,
}

fn wait_text(tr: &Tr, secs: u64) -> String {
    if secs >= 90 {
        tr.tf("dur.min", &[("n", &tr.num(secs.div_ceil(60)))])
    } else {
        tr.tf("dur.s", &[("n", &tr.num(secs))])
    }
}

/// The sign-in page. The form posts `username`, `password`, `csrf` (this `csrf` value) and
/// `next` (a local path to go to afterwards) to `/login`; its language links go to
/// `/login?lang=en|ru` (the server renders the page in that language).
pub fn login(
    lang: Lang,
    error: Option<LoginError>,
    username: &str,
    csrf: &str,
    next: &str,
) -> String {
    let tr = Tr::new(lang, 0);
    let mut lang_base = crate::url::Query::new();
    if crate::url::is_local_path(next) {
        lang_base.push("next", next);
    }
    let lang_base = format!(
        "{}{}lang=",
        lang_base.url("/login"),
        if lang_base == crate::url::Query::new() {
            "?"
        } else {
            "&"
        }
    );
    let l = Layout::bare(
        lang,
        &tr,
        "login",
        tr.t("login.title").to_owned(),
        &lang_base,
    );
    let error = error.map(|e| match e {
        LoginError::Invalid => tr.t("error.login_failed").to_owned(),
        LoginError::Expired => tr.t("error.login_expired").to_owned(),
        LoginError::Unavailable => tr.t("error.login_unavailable").to_owned(),
        LoginError::Throttled(secs) => {
            tr.tf("error.login_throttled", &[("wait", &wait_text(&tr, secs))])
        }
    });
    render(&LoginPage {
        error,
        l,
        tr,
        username,
        csrf,
        next: if crate::url::is_local_path(next) {
            next
        } else {
            "/ui/"
        },
    })
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    tr: Tr,
    status: u16,
    heading: &'static str,
    message: String,
}

fn status_heading(status: u16) -> &'static str {
    match status {
        400 => "error.400",
        401 => "error.401",
        403 => "error.403",
        404 => "error.404",
        405 => "error.405",
        409 => "error.409",
        413 => "error.413",
        429 => "error.429",
        503 => "error.503",
        s if s >= 500 => "error.500",
        _ => "error.generic",
    }
}

/// An error page for an HTTP status. `message` is a catalog key (translated) or, if the
/// catalog has no such key, text shown as it is (escaped).
pub fn error_page(lang: Lang, status: u16, message: &str) -> String {
    let tr = Tr::new(lang, 0);
    let heading = tr.t(status_heading(status));
    let message = tr
        .lookup(message)
        .map_or_else(|| message.to_owned(), str::to_owned);
    let mut l = Layout::bare(lang, &tr, "error", heading.to_owned(), "/ui/");
    l.langs.clear();
    render(&ErrorPage {
        l,
        tr,
        status,
        heading,
        message,
    })
}
