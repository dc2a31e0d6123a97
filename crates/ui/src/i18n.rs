//! Languages, the translation catalog lookup, plural forms and the per-render translator.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::catalog::CATALOG;
use crate::format;

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    /// The language code: `en` or `ru`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// `en`, `EN`, `en-US`, `ru`, `ru-RU`, `ru_RU` ... → the language; anything else → `None`.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` header (q-values respected, the
    /// first listed wins a tie, `q=0` excludes); English when none is supported.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let mut q = 1.0f32;
            for p in parts {
                let p = p.trim();
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v.trim().parse::<f32>().unwrap_or(0.0);
                }
            }
            if q.is_nan() || q <= 0.0 {
                continue;
            }
            let Some(lang) = Lang::from_code(tag) else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    fn column(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Ru => 1,
        }
    }
}

fn index() -> &'static HashMap<&'static str, [&'static str; 2]> {
    static INDEX: OnceLock<HashMap<&'static str, [&'static str; 2]>> = OnceLock::new();
    INDEX.get_or_init(|| {
        CATALOG
            .iter()
            .map(|(key, en, ru)| (*key, [*en, *ru]))
            .collect()
    })
}

/// The text of a catalog key in a language, `None` for an unknown key.
pub fn translate(lang: Lang, key: &str) -> Option<&'static str> {
    index().get(key).map(|v| v[lang.column()])
}

/// Which plural form a count takes: English `one | other`; Russian `one | few | many`
/// (1, 21, 101 алерт; 2–4, 22–24 алерта; 0, 5–20, 25 алертов).
pub(crate) fn plural_index(lang: Lang, n: u64) -> usize {
    match lang {
        Lang::En => usize::from(n != 1),
        Lang::Ru => {
            let (d, h) = (n % 10, n % 100);
            if d == 1 && h != 11 {
                0
            } else if (2..=4).contains(&d) && !(12..=14).contains(&h) {
                1
            } else {
                2
            }
        }
    }
}

/// Replaces `{name}` placeholders.
pub(crate) fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match args.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Keys asked for that the catalog lacks (tests check it stays empty).
#[cfg(test)]
pub(crate) static MISSES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The translator one page render uses: a language and "now" (for relative times).
/// Every method is cheap; templates call them directly (`tr.t("nav.alerts")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    /// The language.
    pub lang: Lang,
    /// The render's notion of now, ms since the epoch.
    pub now: i64,
}

impl Tr {
    /// A translator.
    pub fn new(lang: Lang, now: i64) -> Tr {
        Tr { lang, now }
    }

    /// The text of a key; the key itself if the catalog lacks it (a test makes sure every key
    /// the sources use exists).
    pub fn t(&self, key: &'static str) -> &'static str {
        match translate(self.lang, key) {
            Some(text) => text,
            None => {
                #[cfg(test)]
                MISSES
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(key.to_owned());
                key
            }
        }
    }

    /// The text of a key whose name is only known at run time (e.g. a flash key from the
    /// server); `None` if unknown.
    pub fn lookup(&self, key: &str) -> Option<&'static str> {
        translate(self.lang, key)
    }

    /// A key with `{name}` placeholders filled.
    pub fn tf(&self, key: &'static str, args: &[(&str, &str)]) -> String {
        fill(self.t(key), args)
    }

    /// A plural key (`one|other` / `one|few|many`) for the count `n`, `{n}` filled with the
    /// formatted number.
    pub fn tn(&self, key: &'static str, n: u64) -> String {
        let forms: Vec<&str> = self.t(key).split('|').collect();
        let i = plural_index(self.lang, n).min(forms.len() - 1);
        fill(forms[i], &[("n", &self.num(n))])
    }

    /// A whole number with thousands separators (`1,234,567` / `1 234 567`).
    pub fn num<N: Into<i128>>(&self, n: N) -> String {
        format::number(self.lang, n.into())
    }

    /// A number with `digits` decimals (`12.5` / `12,5`).
    pub fn dec(&self, x: f64, digits: usize) -> String {
        format::decimal(self.lang, x, digits)
    }

    /// A percentage (`45.2%` / `45,2 %`).
    pub fn pct(&self, x: f64) -> String {
        format::percent(self.lang, x)
    }

    /// A byte size (`1.5 GiB` / `1,5 ГиБ`).
    pub fn bytes(&self, n: u64) -> String {
        format::bytes(self.lang, n)
    }

    /// Date and time in UTC (`2026-11-21 14:05:09 UTC` / `21.11.2026 14:05:09 UTC`).
    pub fn dt(&self, ms: i64) -> String {
        format::datetime(self.lang, ms)
    }

    /// An optional date and time; "never" for `None`.
    pub fn dt_opt(&self, ms: Option<i64>) -> String {
        match ms {
            Some(ms) => self.dt(ms),
            None => self.t("time.never").to_owned(),
        }
    }

    /// `HH:MM` in UTC.
    pub fn hm(&self, ms: i64) -> String {
        format::hour_minute(ms)
    }

    /// Relative to now: "5 min ago", "in 3 d", "just now".
    pub fn ago(&self, ms: i64) -> String {
        format::relative(self, ms)
    }

    /// The ISO 8601 form for `<time datetime>`.
    pub fn iso(&self, ms: i64) -> String {
        format::iso(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Lang::from_code("ru"), Some(Lang::Ru));
        assert_eq!(Lang::from_code("RU-ru"), Some(Lang::Ru));
        assert_eq!(Lang::from_code("ru_RU"), Some(Lang::Ru));
        assert_eq!(Lang::from_code("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_code("de"), None);
        assert_eq!(Lang::from_code(""), None);
        for l in Lang::ALL {
            assert_eq!(Lang::from_code(l.code()), Some(l));
        }
    }

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::from_accept_language("ru"), Lang::Ru);
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en;q=0.8"),
            Lang::Ru
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,ru;q=0.8"),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language("de-DE, ru;q=0.5, en;q=0.4"),
            Lang::Ru
        );
        assert_eq!(Lang::from_accept_language("en;q=0.2, ru;q=0.7"), Lang::Ru);
        assert_eq!(Lang::from_accept_language("ru;q=0, en;q=0.1"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr, de"), Lang::En);
        assert_eq!(Lang::from_accept_language("*"), Lang::En);
        assert_eq!(Lang::from_accept_language("ru;q=abc"), Lang::En);
        assert_eq!(Lang::from_accept_language("uk, ru-UA;q=0.9"), Lang::Ru);
    }

    #[test]
    fn russian_plurals() {
        let cases = [
            (0, 2),
            (1, 0),
            (2, 1),
            (4, 1),
            (5, 2),
            (11, 2),
            (12, 2),
            (14, 2),
            (21, 0),
            (22, 1),
            (25, 2),
            (101, 0),
            (111, 2),
            (1_000_002, 1),
        ];
        for (n, want) in cases {
            assert_eq!(plural_index(Lang::Ru, n), want, "{n}");
        }
        assert_eq!(plural_index(Lang::En, 1), 0);
        assert_eq!(plural_index(Lang::En, 0), 1);
        assert_eq!(plural_index(Lang::En, 2), 1);
    }

    #[test]
    fn plural_texts() {
        let ru = Tr::new(Lang::Ru, 0);
        assert_eq!(ru.tn("alerts.count", 1), "1 алерт");
        assert_eq!(ru.tn("alerts.count", 2), "2 алерта");
        assert_eq!(ru.tn("alerts.count", 5), "5 алертов");
        assert_eq!(ru.tn("alerts.count", 11), "11 алертов");
        assert_eq!(ru.tn("alerts.count", 21), "21 алерт");
        assert_eq!(ru.tn("alerts.count", 1234), "1\u{a0}234 алерта");
        assert_eq!(ru.tn("live.new_alerts", 1), "1 новый алерт — обновить");
        assert_eq!(ru.tn("live.new_alerts", 3), "3 новых алерта — обновить");
        let en = Tr::new(Lang::En, 0);
        assert_eq!(en.tn("alerts.count", 1), "1 alert");
        assert_eq!(en.tn("alerts.count", 1234), "1,234 alerts");
    }

    #[test]
    fn placeholders() {
        assert_eq!(fill("a {x} b {y}", &[("x", "1"), ("y", "2")]), "a 1 b 2");
        assert_eq!(fill("a {z} b", &[("x", "1")]), "a {z} b");
        assert_eq!(fill("open { brace", &[]), "open { brace");
    }
}
