//! Plain lists: CSV feeds with column settings, and freetext (anything on a line that parses
//! as an indicator, defanged forms such as `hxxp://evil[.]com` included).
//!
//! Skips are named by line (`line 17`): a CSV row whose value does not parse, whose type is
//! unknown or that lacks the column; a freetext line with text but no indicator.

use std::path::Path;

use dozor_intel::{Ioc, IocKind, IocSource};

use crate::http::HttpSettings;
use crate::{SourceError, SyncBatch, excerpt};

/// How a CSV row's type is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    /// Every row is of this kind.
    Kind(IocKind),
    /// Every row is of this MISP type (`ip-dst`, `domain|ip`, …).
    MispType(String),
    /// This column (0-based) holds a MISP type or a Dozor kind name.
    Column(usize),
    /// Guessed from the value, as freetext does.
    Guess,
}

/// Settings shared by CSV and freetext lists.
#[derive(Debug, Clone)]
pub struct ListSettings {
    /// Name put in every indicator's source.
    pub source_name: String,
    /// Lines starting with this (after leading blanks) are ignored; `#` by default.
    pub comment_prefix: Option<String>,
    /// Tags given to every indicator (a TLP, the list's name, …).
    pub tags: Vec<String>,
    pub confidence: Option<u8>,
    pub to_ids: bool,
    /// Expiry (ms since the epoch) given to every indicator.
    pub expires: Option<i64>,
}

impl ListSettings {
    pub fn new(source_name: &str) -> ListSettings {
        ListSettings {
            source_name: source_name.to_owned(),
            comment_prefix: Some("#".into()),
            tags: Vec::new(),
            confidence: None,
            to_ids: true,
            expires: None,
        }
    }

    fn is_comment(&self, line: &str) -> bool {
        let line = line.trim_start();
        self.comment_prefix
            .as_deref()
            .is_some_and(|p| !p.is_empty() && line.starts_with(p))
    }

    fn finish(&self, ioc: &mut Ioc, line: u64) {
        ioc.to_ids = self.to_ids && ioc.to_ids;
        ioc.tags.clone_from(&self.tags);
        ioc.confidence = self.confidence;
        ioc.expires = self.expires;
        ioc.sources = vec![IocSource {
            name: self.source_name.clone(),
            object_ids: vec![format!("line {line}")],
        }];
    }
}

/// Column settings of a CSV list.
#[derive(Debug, Clone)]
pub struct CsvSettings {
    pub list: ListSettings,
    /// The column (0-based) holding the value.
    pub value_column: usize,
    pub value_type: ValueType,
    pub delimiter: u8,
    /// Rows to skip at the top (not counting comments and blank lines).
    pub header_rows: usize,
}

impl CsvSettings {
    pub fn new(source_name: &str, value_column: usize, value_type: ValueType) -> CsvSettings {
        CsvSettings {
            list: ListSettings::new(source_name),
            value_column,
            value_type,
            delimiter: b',',
            header_rows: 0,
        }
    }
}

/// Fetches a list over HTTP(S) (for [`parse_csv`] or [`parse_freetext`]).
pub async fn fetch(url: &str, settings: &HttpSettings) -> Result<Vec<u8>, SourceError> {
    let http = settings.http()?;
    http.send(url, http.client.get(url))
        .await
        .map(|(_, body)| body)
}

/// Reads a list file.
pub fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
    std::fs::read(path).map_err(|e| SourceError::io(path, e))
}

/// A CSV list → indicators. Rows that do not give one are reported by line. Blank lines and
/// comments are ignored; a quoted field cannot span lines.
pub fn parse_csv(origin: &str, bytes: &[u8], settings: &CsvSettings) -> SyncBatch {
    let text = String::from_utf8_lossy(bytes);
    let mut batch = SyncBatch::default();
    let mut rows = 0usize;
    // Line by line (a quoted field cannot span lines in an IOC list), so that every skip
    // names its line.
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() || settings.list.is_comment(raw) {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(settings.delimiter)
            .from_reader(raw.as_bytes());
        let record = match reader.records().next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                batch.skip(format!("line {line}"), format!("{origin}: {e}"));
                continue;
            }
            None => continue,
        };
        rows += 1;
        if rows <= settings.header_rows {
            continue;
        }
        let object = format!("line {line}");
        let Some(value) = record.get(settings.value_column).map(str::trim) else {
            batch.skip(
                object,
                format!("no column {}", settings.value_column.saturating_add(1)),
            );
            continue;
        };
        if value.is_empty() {
            batch.skip(object, "empty value");
            continue;
        }
        let parsed = match &settings.value_type {
            ValueType::Kind(kind) => Ioc::new(*kind, value)
                .map(|i| vec![i])
                .map_err(|e| e.to_string()),
            ValueType::MispType(t) => Ioc::from_misp(t, value, true).map_err(|e| e.to_string()),
            ValueType::Column(c) => match record.get(*c).map(str::trim) {
                None => Err(format!("no type column {}", c.saturating_add(1))),
                Some(t) => match IocKind::from_name(t) {
                    Some(kind) => Ioc::new(kind, value).map(|i| vec![i]),
                    None => Ioc::from_misp(t, value, true),
                }
                .map_err(|e| e.to_string()),
            },
            ValueType::Guess => guess(value)
                .map(|i| vec![i])
                .ok_or_else(|| format!("`{}` is no recognizable indicator", excerpt(value, 80))),
        };
        match parsed {
            Ok(iocs) => {
                for mut ioc in iocs {
                    settings.list.finish(&mut ioc, line);
                    batch.iocs.push(ioc);
                }
            }
            Err(reason) => batch.skip(object, reason),
        }
    }
    batch
}

/// Freetext → every token of every line that parses as an indicator. A line with text and no
/// indicator is reported.
pub fn parse_freetext(text: &str, settings: &ListSettings) -> SyncBatch {
    let mut batch = SyncBatch::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() || settings.is_comment(line) {
            continue;
        }
        let before = batch.iocs.len();
        for token in line.split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '"' | '<' | '>' | '|' | '`')
        }) {
            let token = token.trim_matches(|c: char| matches!(c, '\'' | '(' | ')' | '{' | '}'));
            if token.is_empty() {
                continue;
            }
            if let Some(mut ioc) = guess(token) {
                settings.finish(&mut ioc, line_no);
                if !batch.iocs[before..]
                    .iter()
                    .any(|o| o.kind == ioc.kind && o.value == ioc.value)
                {
                    batch.iocs.push(ioc);
                }
            }
        }
        if batch.iocs.len() == before {
            batch.skip(
                format!("line {line_no}"),
                format!("no indicator in `{}`", excerpt(line, 80)),
            );
        }
    }
    batch
}

/// Undoes the usual defanging: `hxxp` → `http`, `[.]` `(.)` `{.}` `[dot]` → `.`, `[:]` → `:`,
/// `[@]` `[at]` → `@`.
pub fn refang(s: &str) -> String {
    let mut out = s.to_owned();
    for (from, to) in [
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("[:]", ":"),
        ("[@]", "@"),
        ("[at]", "@"),
        ("[://]", "://"),
    ] {
        out = out.replace(from, to);
    }
    for (from, to) in [
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("fxp://", "ftp://"),
    ] {
        if let (Some(head), Some(rest)) = (out.get(..from.len()), out.get(from.len()..))
            && head.eq_ignore_ascii_case(from)
        {
            out = format!("{to}{rest}");
        }
    }
    out
}

/// File extensions that make `name.ext` a file name rather than a domain in freetext.
const FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "sys", "scr", "bat", "cmd", "ps1", "vbs", "js", "jse", "hta", "lnk", "jar",
    "msi", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "pdf", "rtf", "txt", "zip",
    "rar", "7z", "gz", "tar", "iso", "img", "bin", "dat", "tmp", "log", "php", "asp", "aspx",
    "jsp", "html", "htm", "png", "jpg", "jpeg", "gif", "elf", "so", "sh", "py",
];

/// The indicator a token is, if any: URL (with a scheme), hash (by length), address or
/// network, e-mail, domain, file name (a name with a known file extension).
pub fn guess(token: &str) -> Option<Ioc> {
    let token = refang(token.trim().trim_end_matches(['.', ',', ':', ';']));
    if token.is_empty() || token.len() > 2048 {
        return None;
    }
    if let Some((scheme, rest)) = token.split_once("://") {
        if !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
            && !rest.is_empty()
        {
            return Ioc::new(IocKind::Url, &token).ok();
        }
        return None;
    }
    if token.chars().all(|c| c.is_ascii_hexdigit()) {
        let kind = match token.len() {
            32 => IocKind::Md5,
            40 => IocKind::Sha1,
            64 => IocKind::Sha256,
            128 => IocKind::Sha512,
            _ => return None,
        };
        return Ioc::new(kind, &token).ok();
    }
    if token.contains('@') {
        return Ioc::new(IocKind::Email, &token).ok();
    }
    if token.contains(':')
        || token
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '/')
    {
        return Ioc::new(IocKind::Ip, &token).ok();
    }
    let (_, last) = token.rsplit_once('.')?;
    if FILE_EXTENSIONS.iter().any(|e| last.eq_ignore_ascii_case(e)) {
        if token.contains(['/', '\\']) {
            return None;
        }
        return Ioc::new(IocKind::Filename, &token).ok();
    }
    // A domain needs an alphabetic top-level label.
    if last.len() < 2 || !last.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Ioc::new(IocKind::Domain, &token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_value(token: &str) -> Option<(IocKind, String)> {
        guess(token).map(|i| (i.kind, i.value))
    }

    #[test]
    fn guesses_and_refangs() {
        assert_eq!(
            kind_value("hxxp://evil[.]example/x"),
            Some((IocKind::Url, "http://evil.example/x".into()))
        );
        assert_eq!(
            kind_value("198.51.100.7"),
            Some((IocKind::Ip, "198.51.100.7".into()))
        );
        assert_eq!(
            kind_value("10.0.0.0/8"),
            Some((IocKind::Cidr, "10.0.0.0/8".into()))
        );
        assert_eq!(kind_value("2001:db8::1").map(|k| k.0), Some(IocKind::Ip));
        assert_eq!(
            kind_value("Evil[.]Example."),
            Some((IocKind::Domain, "evil.example".into()))
        );
        assert_eq!(
            kind_value("invoice.exe"),
            Some((IocKind::Filename, "invoice.exe".into()))
        );
        assert_eq!(
            kind_value(&"a".repeat(64)).map(|k| k.0),
            Some(IocKind::Sha256)
        );
        assert_eq!(
            kind_value("bad[@]evil.example").map(|k| k.0),
            Some(IocKind::Email)
        );
        for prose in [
            "the",
            "1.2",
            "v1.2.3",
            "abc123",
            "e.g",
            "12:30",
            "999.1.1.1",
        ] {
            assert_eq!(kind_value(prose), None, "{prose}");
        }
    }
}
