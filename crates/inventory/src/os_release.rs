//! `/etc/os-release` (systemd's format: `KEY=value`, the value optionally quoted).

use serde::{Deserialize, Serialize};

/// Where the OS describes itself; `/usr/lib/os-release` is the fallback the format defines.
pub const OS_RELEASE_PATHS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The fields of os-release that decide which advisories apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`, lower case (`debian`, `astra`, `redos`, `altlinux`, `rhel`...).
    pub id: String,
    /// `VERSION_ID` (`12`, `1.7_x86-64`, `7.3`, `9.4`).
    pub version_id: Option<String>,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
    pub version_codename: Option<String>,
}

impl OsRelease {
    /// Parses os-release text. Unknown keys, comments and malformed lines are ignored (the
    /// format says so); `ID` defaults to `linux` as the format defines.
    pub fn parse(text: &str) -> OsRelease {
        let mut release = OsRelease {
            id: "linux".to_owned(),
            ..OsRelease::default()
        };
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, raw_value)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(raw_value.trim());
            match key.trim() {
                "ID" if !value.is_empty() => release.id = value.to_lowercase(),
                "VERSION_ID" if !value.is_empty() => release.version_id = Some(value),
                "ID_LIKE" => {
                    release.id_like = value.split_whitespace().map(str::to_lowercase).collect();
                }
                "NAME" => release.name = Some(value),
                "PRETTY_NAME" => release.pretty_name = Some(value),
                "VERSION_CODENAME" if !value.is_empty() => release.version_codename = Some(value),
                _ => {}
            }
        }
        release
    }

    /// Reads the first os-release file that exists; `None` when neither does.
    pub fn read_local() -> Option<OsRelease> {
        OS_RELEASE_PATHS
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .map(|text| OsRelease::parse(&text))
    }

    /// True when `ID` or `ID_LIKE` names `family`.
    pub fn is_like(&self, family: &str) -> bool {
        self.id == family || self.id_like.iter().any(|like| like == family)
    }
}

/// Removes shell-style quotes: `"..."` with backslash escapes, `'...'` literally.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian() {
        let release = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
        );
        assert_eq!(release.id, "debian");
        assert_eq!(release.version_id.as_deref(), Some("12"));
        assert_eq!(release.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            release.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(release.id_like.is_empty());
    }

    #[test]
    fn quotes_comments_and_defaults() {
        let release = OsRelease::parse(
            "# comment\nID_LIKE='rhel fedora'\nNAME=\"A \\\"quoted\\\" name\"\nbroken\n",
        );
        assert_eq!(release.id, "linux");
        assert_eq!(release.id_like, ["rhel", "fedora"]);
        assert_eq!(release.name.as_deref(), Some("A \"quoted\" name"));
        assert!(release.is_like("fedora"));
    }
}
