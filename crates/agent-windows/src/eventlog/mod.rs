//! Windows Event Log subscription with one persisted bookmark per channel.
//!
//! [`run`] subscribes to each [`ChannelQuery`] (`EvtSubscribe`, pull model with a wait event),
//! renders every event to XML and hands it to the agent; the channel's bookmark is advanced only
//! after the agent took the event, and saved to `bookmark_dir` (one file per channel) at most
//! once a second, when reading stops and before any retry. A restart therefore resumes after the
//! last saved event: events taken after the last save are read again, and the server drops them
//! by their deterministic `event.id` (see [`crate::xml_to_event`]).
//!
//! Everything but the Win32 calls is plain Rust and tested on every system: the query checks and
//! XPath building here, the bookmark files ([`Subscription`]), and the read loop itself (in
//! `driver`, run against a fake event source in its tests). The Win32 backend is `win`
//! (`cfg(windows)`), the only module of this file tree with `unsafe`.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod driver;
#[cfg(windows)]
mod win;

/// The Sysmon channel (exists only where Sysmon is installed).
pub const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";
/// The Security channel (reading it needs LocalSystem, an administrator or Event Log Readers).
pub const SECURITY_CHANNEL: &str = "Security";
/// The System channel.
pub const SYSTEM_CHANNEL: &str = "System";
/// The PowerShell operational channel (script block logging, event 4104).
pub const POWERSHELL_CHANNEL: &str = "Microsoft-Windows-PowerShell/Operational";

/// Longest accepted channel name (Windows' own limit is 255 characters).
pub const MAX_CHANNEL_CHARS: usize = 255;
/// Longest accepted XPath query, in bytes.
pub const MAX_XPATH_BYTES: usize = 32 * 1024;
/// Largest accepted bookmark document, in bytes (a real one is about 150 bytes).
pub const MAX_BOOKMARK_BYTES: usize = 64 * 1024;

/// Why the Event Log reader could not start. Problems of a single channel once running (a
/// missing channel, access denied, a refused event) are not errors of [`run`]: they are reported
/// through its `on_status` and retried.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Not on Windows.
    #[error("the Windows Event Log can only be read on Windows")]
    Unsupported,
    /// No query was given.
    #[error("no Event Log channel to read")]
    NoQueries,
    /// A query is unusable.
    #[error("invalid Event Log query for channel {channel:?}: {reason}")]
    InvalidQuery {
        /// The channel as given.
        channel: String,
        /// What is wrong.
        reason: String,
    },
    /// Two queries name the same channel (they would share one bookmark).
    #[error(
        "channel {0:?} is queried twice; combine the XPath expressions of one channel with `or`"
    )]
    DuplicateChannel(String),
    /// A bookmark file or the bookmark directory can't be read or written.
    #[error("bookmark {}: {source}", path.display())]
    BookmarkIo {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A bookmark file does not hold a bookmark.
    #[error("bookmark {}: {reason}", path.display())]
    BadBookmark {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// One channel to read and the XPath filter of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelQuery {
    /// The channel path, e.g. `Security` or `Microsoft-Windows-Sysmon/Operational`.
    pub channel: String,
    /// The XPath event filter, e.g. `*[System[(EventID=4624 or EventID=4625)]]`; `*` for all.
    pub xpath: String,
}

impl ChannelQuery {
    /// Every event of `channel`.
    pub fn all(channel: impl Into<String>) -> Self {
        ChannelQuery {
            channel: channel.into(),
            xpath: "*".to_owned(),
        }
    }

    /// The events of `channel` with one of these ids (all events when `ids` is empty).
    pub fn event_ids(channel: impl Into<String>, ids: &[u16]) -> Self {
        ChannelQuery {
            channel: channel.into(),
            xpath: event_id_xpath(ids),
        }
    }

    /// Checks the channel name and the XPath (the checks Windows would otherwise only report
    /// when subscribing, with a less helpful message, plus the ones that keep the bookmark file
    /// name and the query sane).
    pub fn validate(&self) -> Result<(), EventLogError> {
        let invalid = |reason: &str| EventLogError::InvalidQuery {
            channel: self.channel.clone(),
            reason: reason.to_owned(),
        };
        check_channel(&self.channel).map_err(|r| invalid(&r))?;
        check_xpath(&self.xpath).map_err(|r| invalid(&r))?;
        Ok(())
    }
}

/// The XPath filter selecting these event ids, in the form the Event Viewer writes:
/// `*[System[(EventID=4624 or EventID=4625)]]`. Duplicates are dropped, the order is kept; no
/// id gives `*` (every event).
pub fn event_id_xpath(ids: &[u16]) -> String {
    let mut seen: Vec<u16> = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.contains(id) {
            seen.push(*id);
        }
    }
    if seen.is_empty() {
        return "*".to_owned();
    }
    let terms: Vec<String> = seen.iter().map(|id| format!("EventID={id}")).collect();
    format!("*[System[({})]]", terms.join(" or "))
}

/// The channels the agent reads by default: all of Sysmon; Security logons (4624, 4625),
/// process creation (4688), account creation (4720), group membership (4732) and log clearing
/// (1102); System service installation (7045); PowerShell script blocks (4104).
pub fn default_queries() -> Vec<ChannelQuery> {
    vec![
        ChannelQuery::all(SYSMON_CHANNEL),
        ChannelQuery::event_ids(SECURITY_CHANNEL, &[4624, 4625, 4688, 4720, 4732, 1102]),
        ChannelQuery::event_ids(SYSTEM_CHANNEL, &[7045]),
        ChannelQuery::event_ids(POWERSHELL_CHANNEL, &[4104]),
    ]
}

fn check_channel(channel: &str) -> Result<(), String> {
    if channel.trim().is_empty() {
        return Err("the channel name is empty".to_owned());
    }
    if channel.trim() != channel {
        return Err("the channel name starts or ends with white space".to_owned());
    }
    if channel.chars().count() > MAX_CHANNEL_CHARS {
        return Err(format!(
            "the channel name is longer than {MAX_CHANNEL_CHARS} characters"
        ));
    }
    if let Some(c) = channel
        .chars()
        .find(|c| c.is_control() || matches!(c, '<' | '>' | '"' | '&' | '*' | '?' | '|' | '\\'))
    {
        return Err(format!(
            "the channel name contains {c:?}, which no channel name has"
        ));
    }
    Ok(())
}

fn check_xpath(xpath: &str) -> Result<(), String> {
    let trimmed = xpath.trim();
    if trimmed.is_empty() {
        return Err("the XPath query is empty (use `*` for every event)".to_owned());
    }
    if xpath.len() > MAX_XPATH_BYTES {
        return Err(format!(
            "the XPath query is longer than {MAX_XPATH_BYTES} bytes"
        ));
    }
    if trimmed.starts_with('<') {
        return Err(
            "structured XML queries (<QueryList>) are not supported: give the XPath of one channel"
                .to_owned(),
        );
    }
    if xpath
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err("the XPath query contains a control character".to_owned());
    }
    // Brackets and quotes must balance (outside quoted literals).
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    for c in xpath.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => stack.push(c),
            ']' | ')' => {
                let open = if c == ']' { '[' } else { '(' };
                if stack.pop() != Some(open) {
                    return Err(format!("unbalanced {c:?} in the XPath query"));
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("unterminated string literal in the XPath query".to_owned());
    }
    if let Some(open) = stack.pop() {
        return Err(format!("unclosed {open:?} in the XPath query"));
    }
    Ok(())
}

/// One channel's subscription plan: its query and its bookmark file. The live Windows handles
/// are kept by the reader; this part is plain Rust, so the bookmark files can be inspected and
/// tested anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    query: ChannelQuery,
    bookmark_path: PathBuf,
}

impl Subscription {
    /// Checks `query` and places its bookmark file in `bookmark_dir`.
    pub fn new(query: &ChannelQuery, bookmark_dir: &Path) -> Result<Self, EventLogError> {
        query.validate()?;
        Ok(Subscription {
            query: query.clone(),
            bookmark_path: bookmark_dir.join(bookmark_file_name(&query.channel)),
        })
    }

    /// The subscriptions of `queries`: each checked, no channel twice (a channel has one
    /// bookmark), at least one.
    pub fn plan(queries: &[ChannelQuery], bookmark_dir: &Path) -> Result<Vec<Self>, EventLogError> {
        if queries.is_empty() {
            return Err(EventLogError::NoQueries);
        }
        let mut out: Vec<Subscription> = Vec::with_capacity(queries.len());
        for query in queries {
            let sub = Subscription::new(query, bookmark_dir)?;
            // Channel names are case-insensitive on Windows.
            if out
                .iter()
                .any(|s| s.channel().eq_ignore_ascii_case(sub.channel()))
            {
                return Err(EventLogError::DuplicateChannel(query.channel.clone()));
            }
            out.push(sub);
        }
        Ok(out)
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.query.channel
    }

    /// The XPath filter.
    pub fn xpath(&self) -> &str {
        &self.query.xpath
    }

    /// The query.
    pub fn query(&self) -> &ChannelQuery {
        &self.query
    }

    /// The channel's bookmark file.
    pub fn bookmark_path(&self) -> &Path {
        &self.bookmark_path
    }

    /// The saved bookmark (the XML `EvtRender(EvtRenderBookmark)` wrote), `None` before the
    /// first save. A file that is not a bookmark is an error (the caller then starts afresh and
    /// the next save replaces it).
    pub fn load_bookmark(&self) -> Result<Option<String>, EventLogError> {
        let path = &self.bookmark_path;
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EventLogError::BookmarkIo {
                    path: path.clone(),
                    source,
                });
            }
        };
        let bad = |reason: String| EventLogError::BadBookmark {
            path: path.clone(),
            reason,
        };
        if bytes.len() > MAX_BOOKMARK_BYTES {
            return Err(bad(format!("larger than {MAX_BOOKMARK_BYTES} bytes")));
        }
        let xml = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
        check_bookmark_xml(&xml).map_err(bad)?;
        Ok(Some(xml.trim().to_owned()))
    }

    /// Saves the bookmark, atomically: written to a temporary file, flushed, then renamed over
    /// the old one, so a crash leaves either the old or the new bookmark, never half of one.
    pub fn save_bookmark(&self, xml: &str) -> Result<(), EventLogError> {
        let path = &self.bookmark_path;
        check_bookmark_xml(xml).map_err(|reason| EventLogError::BadBookmark {
            path: path.clone(),
            reason,
        })?;
        let io_err = |source| EventLogError::BookmarkIo {
            path: path.clone(),
            source,
        };
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(xml.trim().as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err)
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.query.channel, self.query.xpath)
    }
}

/// The bookmark file name of a channel: `bookmark-<channel>.xml`, with every byte other than
/// ASCII letters, digits, `-`, `_` and `.` written `%XX` (`/` of `Microsoft-Windows-Sysmon/
/// Operational` included). The `bookmark-` prefix keeps clear of Windows' reserved names
/// (`CON`, `NUL`...). Very long names are cut and end with a hash of the whole name.
pub fn bookmark_file_name(channel: &str) -> String {
    let mut encoded = String::with_capacity(channel.len());
    for b in channel.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    const MAX: usize = 180;
    if encoded.len() > MAX {
        // Only ASCII in `encoded`: any byte index is a char boundary.
        encoded.truncate(150);
        encoded.push_str(&format!("~{:016x}", fnv1a(channel.as_bytes())));
    }
    format!("bookmark-{encoded}.xml")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Checks that `xml` looks like a bookmark document (`<BookmarkList>...</BookmarkList>`).
/// Windows parses it for real (`EvtCreateBookmark`); this keeps other files out.
pub fn check_bookmark_xml(xml: &str) -> Result<(), String> {
    let xml = xml.trim();
    if xml.len() > MAX_BOOKMARK_BYTES {
        return Err(format!("larger than {MAX_BOOKMARK_BYTES} bytes"));
    }
    if !xml.starts_with("<BookmarkList") {
        return Err("not a bookmark (no <BookmarkList> element)".to_owned());
    }
    if !(xml.ends_with("</BookmarkList>") || xml.ends_with("/>")) {
        return Err("truncated bookmark (no </BookmarkList>)".to_owned());
    }
    if xml.contains('\0') {
        return Err("the bookmark contains a NUL character".to_owned());
    }
    Ok(())
}

/// The record id of a bookmark (`RecordId='1234'` of its current `<Bookmark>`), for logs.
pub fn bookmark_record_id(xml: &str) -> Option<u64> {
    let start = xml
        .find("IsCurrent='true'")
        .or_else(|| xml.find("IsCurrent=\"true\""))
        .and_then(|at| xml[..at].rfind("<Bookmark "))
        .or_else(|| xml.find("<Bookmark "))?;
    let rest = &xml[start..];
    let end = rest.find('>').unwrap_or(rest.len());
    let element = &rest[..end];
    let value = element.split("RecordId=").nth(1)?;
    let value = value.strip_prefix(['\'', '"'])?;
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The bookmark document that stands right after record `record_id` of `channel` (what
/// `EvtRender(EvtRenderBookmark)` writes for a bookmark updated with that event).
pub fn bookmark_xml_for(channel: &str, record_id: u64) -> String {
    format!(
        "<BookmarkList>\r\n  <Bookmark Channel='{}' RecordId='{record_id}' IsCurrent='true'/>\r\n</BookmarkList>",
        xml_attr_escape(channel)
    )
}

fn xml_attr_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The channel (as the event names it) and record id of a rendered event.
pub fn event_position(xml: &str) -> Option<(String, u64)> {
    let flat = dozor_decode::parse_event_xml(xml).ok()?;
    // A payload field named Channel (event 104) shadows the System one, which then is
    // `System_Channel`.
    let channel = match flat.get("System_Channel").or_else(|| flat.get("Channel"))? {
        dozor_decode::Value::Str(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => return None,
    };
    let record = match flat
        .get("System_EventRecordID")
        .or_else(|| flat.get("EventRecordID"))?
    {
        dozor_decode::Value::Int(i) => u64::try_from(*i).ok()?,
        dozor_decode::Value::Str(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((channel, record))
}

/// The text of a rendered UTF-16 buffer: up to the first NUL (EvtRender counts the
/// terminator), invalid UTF-16 replaced by U+FFFD.
pub fn utf16_to_string(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// Largest rendered event or bookmark accepted, in bytes (events are at most 64 KiB of
/// binary XML; their text rendering is a few times that).
pub const MAX_RENDER_BYTES: u32 = 16 * 1024 * 1024;

/// The buffer length (in UTF-16 units) to retry `EvtRender` with after it answered
/// `ERROR_INSUFFICIENT_BUFFER` and `used_bytes`; `None` when that is beyond
/// [`MAX_RENDER_BYTES`] or would not grow the buffer (then retrying is pointless).
pub fn grown_render_len(current_len: usize, used_bytes: u32) -> Option<usize> {
    if used_bytes > MAX_RENDER_BYTES {
        return None;
    }
    let needed = (used_bytes as usize).div_ceil(2);
    (needed > current_len).then_some(needed)
}

/// Runs the Event Log reader until `stop()` returns true.
///
/// Subscribes (`EvtSubscribe`, pull model with a wait event) to each query, starting after the
/// bookmark saved in `bookmark_dir` (one file per channel) or, on first run, after the newest
/// record present ("now"). Each event is rendered to XML and given to `on_event(channel, xml)`;
/// the channel's bookmark moves past it only when `on_event` returns `Ok`, and is saved at most
/// once a second, when reading stops and before any retry. An `Err` from `on_event` stops that
/// channel, which is read again from its bookmark after a growing delay (1 s to 60 s), so the
/// refused event is offered again.
///
/// A channel that can't be read (Sysmon not installed, access denied, an invalid query) is
/// reported through `on_status(channel, Err(message))` and retried every minute; the others keep
/// working. `on_status(channel, Ok(()))` reports a channel (again) being read. Statuses are
/// reported when they change.
///
/// `Err` only when nothing can start: bad queries, a bookmark directory that can't be created,
/// or [`EventLogError::Unsupported`] on other systems than Windows.
pub fn run(
    queries: &[ChannelQuery],
    bookmark_dir: &Path,
    stop: &dyn Fn() -> bool,
    on_event: &mut dyn FnMut(&str, &str) -> Result<(), String>,
    on_status: &mut dyn FnMut(&str, Result<(), String>),
) -> Result<(), EventLogError> {
    #[cfg(windows)]
    {
        let plans = Subscription::plan(queries, bookmark_dir)?;
        fs::create_dir_all(bookmark_dir).map_err(|source| EventLogError::BookmarkIo {
            path: bookmark_dir.to_path_buf(),
            source,
        })?;
        let mut backend = win::WinBackend::new();
        driver::drive(
            &mut backend,
            plans,
            &driver::Timing::default(),
            stop,
            on_event,
            on_status,
        );
        Ok(())
    }
    #[cfg(not(windows))]
    {
        let _ = (queries, bookmark_dir, stop, on_event, on_status);
        Err(EventLogError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_queries_are_valid_and_distinct() {
        let queries = default_queries();
        let dir = Path::new("/var/lib/dozor/bookmarks");
        let plans = Subscription::plan(&queries, dir).unwrap();
        assert_eq!(plans.len(), 4);
        assert_eq!(queries[0], ChannelQuery::all(SYSMON_CHANNEL));
        assert_eq!(queries[0].xpath, "*");
        assert_eq!(queries[1].channel, "Security");
        assert_eq!(
            queries[1].xpath,
            "*[System[(EventID=4624 or EventID=4625 or EventID=4688 or EventID=4720 or EventID=4732 or EventID=1102)]]"
        );
        assert_eq!(queries[2].channel, "System");
        assert_eq!(queries[2].xpath, "*[System[(EventID=7045)]]");
        assert_eq!(queries[3].channel, POWERSHELL_CHANNEL);
        assert_eq!(queries[3].xpath, "*[System[(EventID=4104)]]");
        assert_eq!(
            plans[0].bookmark_path(),
            dir.join("bookmark-Microsoft-Windows-Sysmon%2FOperational.xml")
        );
    }

    #[test]
    fn xpath_building() {
        assert_eq!(event_id_xpath(&[]), "*");
        assert_eq!(event_id_xpath(&[1]), "*[System[(EventID=1)]]");
        assert_eq!(
            event_id_xpath(&[4624, 1102, 4624]),
            "*[System[(EventID=4624 or EventID=1102)]]"
        );
        for ids in [&[][..], &[0], &[65535, 1, 2]] {
            ChannelQuery::event_ids("Security", ids).validate().unwrap();
        }
    }

    #[test]
    fn query_validation() {
        let ok = |c: &str, x: &str| {
            ChannelQuery {
                channel: c.into(),
                xpath: x.into(),
            }
            .validate()
        };
        ok("Security", "*").unwrap();
        ok("Windows PowerShell", "*[System[Level<=3]]").unwrap();
        ok(
            "Security",
            "*[EventData[Data[@Name='TargetUserName']='a]b(']]",
        )
        .unwrap();
        ok(
            "ForwardedEvents",
            "*[System[(EventID=1)]]\n and *[System[Provider[@Name=\"x\"]]]",
        )
        .unwrap();
        for (c, x, why) in [
            ("", "*", "empty"),
            (" Security", "*", "white space"),
            ("Sec\u{0}urity", "*", "contains"),
            ("Sec<urity", "*", "contains"),
            ("Security", "", "empty"),
            ("Security", "   ", "empty"),
            ("Security", "*[System[(EventID=1)]", "unclosed"),
            ("Security", "*[System[(EventID=1]]]", "unbalanced"),
            ("Security", "*[System)", "unbalanced"),
            ("Security", "*[EventData[Data='x]]", "unterminated"),
            ("Security", "<QueryList/>", "structured"),
            ("Security", "*\u{7}", "control"),
        ] {
            let err = ok(c, x).unwrap_err().to_string();
            assert!(err.contains(why), "{c:?} {x:?}: {err}");
        }
        let long = "a".repeat(MAX_CHANNEL_CHARS + 1);
        assert!(ok(&long, "*").is_err());
        let long = format!("*[System[{}]]", "(".repeat(MAX_XPATH_BYTES));
        assert!(ok("Security", &long).is_err());
    }

    #[test]
    fn plan_rejects_no_queries_and_duplicates() {
        let dir = Path::new("b");
        assert!(matches!(
            Subscription::plan(&[], dir),
            Err(EventLogError::NoQueries)
        ));
        let err = Subscription::plan(
            &[ChannelQuery::all("Security"), ChannelQuery::all("security")],
            dir,
        )
        .unwrap_err();
        assert!(matches!(err, EventLogError::DuplicateChannel(ref c) if c == "security"));
        assert!(err.to_string().contains("`or`"), "{err}");
        let err = Subscription::plan(&[ChannelQuery::all("")], dir).unwrap_err();
        assert!(matches!(err, EventLogError::InvalidQuery { .. }));
    }

    #[test]
    fn bookmark_file_names() {
        assert_eq!(bookmark_file_name("Security"), "bookmark-Security.xml");
        assert_eq!(bookmark_file_name("CON"), "bookmark-CON.xml");
        assert_eq!(
            bookmark_file_name("Windows PowerShell"),
            "bookmark-Windows%20PowerShell.xml"
        );
        assert_eq!(
            bookmark_file_name("../../etc/passwd"),
            "bookmark-..%2F..%2Fetc%2Fpasswd.xml"
        );
        assert_eq!(
            bookmark_file_name("Журнал"),
            "bookmark-%D0%96%D1%83%D1%80%D0%BD%D0%B0%D0%BB.xml"
        );
        let long_a = bookmark_file_name(&"ж".repeat(200));
        let long_b = bookmark_file_name(&format!("{}x", "ж".repeat(199)));
        assert!(long_a.len() < 220, "{}", long_a.len());
        assert_ne!(long_a, long_b);
        for name in [long_a, long_b] {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.%~".contains(&b))
            );
        }
    }

    #[test]
    fn bookmark_files_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subscription::new(&ChannelQuery::all(SYSMON_CHANNEL), dir.path()).unwrap();
        assert_eq!(sub.load_bookmark().unwrap(), None);
        let xml = bookmark_xml_for(SYSMON_CHANNEL, 1742);
        sub.save_bookmark(&xml).unwrap();
        assert_eq!(sub.load_bookmark().unwrap().as_deref(), Some(xml.as_str()));
        let newer = bookmark_xml_for(SYSMON_CHANNEL, 1743);
        sub.save_bookmark(&newer).unwrap();
        assert_eq!(
            sub.load_bookmark().unwrap().as_deref(),
            Some(newer.as_str())
        );
        // Only the bookmark file is left (the temporary one was renamed).
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["bookmark-Microsoft-Windows-Sysmon%2FOperational.xml"]
        );
        // Garbage is refused on save and reported on load.
        assert!(matches!(
            sub.save_bookmark("hello"),
            Err(EventLogError::BadBookmark { .. })
        ));
        fs::write(sub.bookmark_path(), "<BookmarkList><Bookm").unwrap();
        assert!(matches!(
            sub.load_bookmark(),
            Err(EventLogError::BadBookmark { .. })
        ));
        fs::write(sub.bookmark_path(), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            sub.load_bookmark(),
            Err(EventLogError::BadBookmark { .. })
        ));
        fs::write(sub.bookmark_path(), vec![b' '; MAX_BOOKMARK_BYTES + 1]).unwrap();
        assert!(matches!(
            sub.load_bookmark(),
            Err(EventLogError::BadBookmark { .. })
        ));
        // A directory that does not exist is an I/O error on save.
        let gone =
            Subscription::new(&ChannelQuery::all("System"), &dir.path().join("no/such")).unwrap();
        assert!(matches!(
            gone.save_bookmark(&xml),
            Err(EventLogError::BookmarkIo { .. })
        ));
    }

    #[test]
    fn bookmark_documents() {
        let xml = bookmark_xml_for("Security", 99);
        check_bookmark_xml(&xml).unwrap();
        assert_eq!(bookmark_record_id(&xml), Some(99));
        // As Windows renders one.
        let windows = "<BookmarkList>\r\n  <Bookmark Channel='Microsoft-Windows-Sysmon/Operational' RecordId='123456' IsCurrent='true'/>\r\n</BookmarkList>";
        check_bookmark_xml(windows).unwrap();
        assert_eq!(bookmark_record_id(windows), Some(123456));
        let two = "<BookmarkList><Bookmark Channel='A' RecordId='1'/><Bookmark Channel=\"B\" RecordId=\"7\" IsCurrent=\"true\"/></BookmarkList>";
        assert_eq!(bookmark_record_id(two), Some(7));
        assert_eq!(bookmark_record_id("<BookmarkList/>"), None);
        assert_eq!(bookmark_record_id("<Bookmark RecordId='x'/>"), None);
        assert!(bookmark_xml_for("a'b<c", 1).contains("Channel='a&apos;b&lt;c'"));
        for bad in [
            "",
            "<Event/>",
            "<BookmarkList>",
            "<BookmarkList>\0</BookmarkList>",
        ] {
            assert!(check_bookmark_xml(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_positions() {
        let xml = "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='x'/><EventID>1</EventID><TimeCreated SystemTime='2024-01-01T00:00:00Z'/><EventRecordID>42</EventRecordID><Channel>Security</Channel><Computer>pc</Computer></System></Event>";
        assert_eq!(event_position(xml), Some(("Security".to_owned(), 42)));
        // Event 104 carries the cleared log's name in UserData/Channel.
        let cleared = "<Event><System><EventID>104</EventID><EventRecordID>7</EventRecordID><Channel>System</Channel></System><UserData><LogFileCleared><Channel>Application</Channel></LogFileCleared></UserData></Event>";
        assert_eq!(event_position(cleared), Some(("System".to_owned(), 7)));
        assert_eq!(
            event_position("<Event><System><EventID>1</EventID></System></Event>"),
            None
        );
        assert_eq!(event_position("garbage"), None);
    }

    #[test]
    fn utf16_rendering_helpers() {
        let text: Vec<u16> = "<Event>ж</Event>\0junk".encode_utf16().collect();
        assert_eq!(utf16_to_string(&text), "<Event>ж</Event>");
        assert_eq!(utf16_to_string(&[0x41, 0xD800, 0x42]), "A\u{FFFD}B");
        assert_eq!(utf16_to_string(&[]), "");
        assert_eq!(grown_render_len(0, 9), Some(5));
        assert_eq!(grown_render_len(100, 200), None);
        assert_eq!(grown_render_len(100, 202), Some(101));
        assert_eq!(grown_render_len(0, MAX_RENDER_BYTES + 1), None);
    }

    #[cfg(not(windows))]
    #[test]
    fn run_is_unsupported_here() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(
            &default_queries(),
            dir.path(),
            &|| true,
            &mut |_, _| Ok(()),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, EventLogError::Unsupported));
    }
}
