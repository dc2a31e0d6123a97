//! The Win32 Event Log calls behind the read loop (`wevtapi.dll`): `EvtSubscribe` (pull model
//! with a wait event), `EvtNext`, `EvtRender`, `EvtCreateBookmark`, `EvtUpdateBookmark`,
//! `EvtQuery`. Every handle is owned (`Owned<_>` closes it on drop); every call is wrapped in
//! a small function with its own `// SAFETY:` note. Nothing else of the crate is `unsafe`.

#![allow(unsafe_code)]

use std::time::Duration;

use windows::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_EVT_CHANNEL_NOT_FOUND, ERROR_EVT_INVALID_QUERY,
    ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_ITEMS, ERROR_TIMEOUT, HANDLE, WIN32_ERROR,
};
use windows::Win32::System::EventLog::{
    EVT_HANDLE, EvtCreateBookmark, EvtNext, EvtQuery, EvtQueryChannelPath,
    EvtQueryReverseDirection, EvtRender, EvtRenderBookmark, EvtRenderEventXml, EvtSubscribe,
    EvtSubscribeStartAfterBookmark, EvtSubscribeStartAtOldestRecord, EvtSubscribeToFutureEvents,
    EvtUpdateBookmark,
};
use windows::Win32::System::Threading::{CreateEventW, ResetEvent, WaitForMultipleObjects};
use windows::core::{HSTRING, Owned, PCWSTR};

use super::driver::{EventSource, FailureKind, SourceError, Start};
use super::{grown_render_len, utf16_to_string};

/// Events fetched per `EvtNext` call.
const BATCH: usize = 64;
/// `WaitForMultipleObjects` takes at most this many handles.
const MAX_WAIT_HANDLES: usize = 64;

fn source_error(call: &str, e: &windows::core::Error) -> SourceError {
    let kind = match WIN32_ERROR::from_error(e) {
        Some(ERROR_EVT_CHANNEL_NOT_FOUND) => FailureKind::ChannelMissing,
        Some(ERROR_ACCESS_DENIED) => FailureKind::AccessDenied,
        Some(ERROR_EVT_INVALID_QUERY) => FailureKind::InvalidQuery,
        _ => FailureKind::Other,
    };
    SourceError {
        kind,
        message: format!("{call}: {} ({})", e.message().trim(), e.code()),
    }
}

fn is(e: &windows::core::Error, code: WIN32_ERROR) -> bool {
    WIN32_ERROR::from_error(e) == Some(code)
}

/// An owned event log handle (closed with `EvtClose` on drop).
fn owned(handle: EVT_HANDLE) -> Owned<EVT_HANDLE> {
    // SAFETY: `handle` was just returned by wevtapi to this process and nothing else owns it;
    // `Owned` closes it exactly once, on drop.
    unsafe { Owned::new(handle) }
}

/// A live subscription: its handle and the event it signals when events arrive.
pub(crate) struct WinSub {
    handle: Owned<EVT_HANDLE>,
    signal: Owned<HANDLE>,
}

/// The Windows event source; keeps one render buffer for all calls.
pub(crate) struct WinBackend {
    buf: Vec<u16>,
}

impl WinBackend {
    pub(crate) fn new() -> Self {
        WinBackend {
            buf: vec![0; 16 * 1024],
        }
    }

    /// `EvtRender` of an event (`EvtRenderEventXml`) or a bookmark (`EvtRenderBookmark`),
    /// growing the buffer on `ERROR_INSUFFICIENT_BUFFER`.
    fn render(&mut self, fragment: EVT_HANDLE, flags: u32) -> Result<String, SourceError> {
        loop {
            let size_bytes = u32::try_from(self.buf.len() * 2).unwrap_or(u32::MAX);
            let mut used_bytes = 0u32;
            let mut properties = 0u32;
            // SAFETY: `buf` is a live, exclusively borrowed allocation of `size_bytes` bytes,
            // which EvtRender writes at most; `fragment` is an open handle owned by the caller;
            // the out-pointers point at locals.
            let result = unsafe {
                EvtRender(
                    None,
                    fragment,
                    flags,
                    size_bytes,
                    Some(self.buf.as_mut_ptr().cast()),
                    &mut used_bytes,
                    &mut properties,
                )
            };
            match result {
                Ok(()) => {
                    let used = (used_bytes as usize / 2).min(self.buf.len());
                    return Ok(utf16_to_string(&self.buf[..used]));
                }
                Err(e) if is(&e, ERROR_INSUFFICIENT_BUFFER) => {
                    match grown_render_len(self.buf.len(), used_bytes) {
                        Some(len) => self.buf.resize(len, 0),
                        None => {
                            return Err(SourceError::other(format!(
                                "EvtRender: the rendering needs {used_bytes} bytes"
                            )));
                        }
                    }
                }
                Err(e) => return Err(source_error("EvtRender", &e)),
            }
        }
    }
}

impl EventSource for WinBackend {
    type Bookmark = Owned<EVT_HANDLE>;
    type Sub = WinSub;
    type Event = Owned<EVT_HANDLE>;

    fn new_bookmark(&mut self, xml: Option<&str>) -> Result<Self::Bookmark, SourceError> {
        let text = xml.map(HSTRING::from);
        let ptr = text.as_ref().map_or(PCWSTR::null(), |t| PCWSTR(t.as_ptr()));
        // SAFETY: `ptr` is null (an empty bookmark) or points at `text`, a NUL-terminated
        // UTF-16 string alive for the call.
        let handle =
            unsafe { EvtCreateBookmark(ptr) }.map_err(|e| source_error("EvtCreateBookmark", &e))?;
        Ok(owned(handle))
    }

    fn newest_event_xml(&mut self, channel: &str) -> Result<Option<String>, SourceError> {
        let path = HSTRING::from(channel);
        let all = HSTRING::from("*");
        // SAFETY: both strings are NUL-terminated UTF-16 alive for the call.
        let query = unsafe {
            EvtQuery(
                None,
                &path,
                &all,
                EvtQueryChannelPath.0 | EvtQueryReverseDirection.0,
            )
        }
        .map_err(|e| source_error("EvtQuery", &e))?;
        let query = owned(query);
        let mut raw = [0isize; 1];
        let mut returned = 0u32;
        // SAFETY: `query` is an open result set; `raw` has room for the one event asked for;
        // `returned` is a local.
        let next = unsafe { EvtNext(*query, &mut raw, 5_000, 0, &mut returned) };
        match next {
            Ok(()) if returned >= 1 => {
                let event = owned(EVT_HANDLE(raw[0]));
                self.render(*event, EvtRenderEventXml.0).map(Some)
            }
            Ok(()) => Ok(None),
            Err(e) if is(&e, ERROR_NO_MORE_ITEMS) => Ok(None),
            Err(e) => Err(source_error("EvtNext", &e)),
        }
    }

    fn subscribe(
        &mut self,
        channel: &str,
        xpath: &str,
        bookmark: &Self::Bookmark,
        start: Start,
    ) -> Result<WinSub, SourceError> {
        // Manual reset, initially set: the first drain looks without waiting.
        // SAFETY: no security attributes and no name (both null) are valid arguments.
        let signal = unsafe { CreateEventW(None, true, true, PCWSTR::null()) }
            .map_err(|e| source_error("CreateEventW", &e))?;
        // SAFETY: `signal` was just created for this process and nothing else owns it.
        let signal = unsafe { Owned::new(signal) };
        let (flags, bookmark) = match start {
            Start::AfterBookmark => (EvtSubscribeStartAfterBookmark, Some(**bookmark)),
            Start::Oldest => (EvtSubscribeStartAtOldestRecord, None),
            Start::Future => (EvtSubscribeToFutureEvents, None),
        };
        let path = HSTRING::from(channel);
        let query = HSTRING::from(xpath);
        // SAFETY: the strings are NUL-terminated UTF-16 alive for the call; `signal` and
        // `bookmark` are open handles that outlive the subscription's use of them (the signal
        // is kept in the returned `WinSub`, the bookmark only positions the start); no callback
        // and no context (pull model).
        let handle = unsafe {
            EvtSubscribe(
                None,
                Some(*signal),
                &path,
                &query,
                bookmark,
                None,
                None,
                flags.0,
            )
        }
        .map_err(|e| source_error("EvtSubscribe", &e))?;
        Ok(WinSub {
            handle: owned(handle),
            signal,
        })
    }

    fn next_batch(
        &mut self,
        sub: &mut WinSub,
        out: &mut Vec<Self::Event>,
    ) -> Result<(), SourceError> {
        let mut raw = [0isize; BATCH];
        for attempt in 0..2 {
            let mut returned = 0u32;
            // SAFETY: `sub.handle` is an open subscription; `raw` has room for BATCH handles,
            // the count EvtNext is given; `returned` is a local.
            let next = unsafe { EvtNext(*sub.handle, &mut raw, 0, 0, &mut returned) };
            match next {
                Ok(()) => {
                    let n = (returned as usize).min(raw.len());
                    out.extend(raw[..n].iter().map(|h| owned(EVT_HANDLE(*h))));
                    return Ok(());
                }
                Err(e) if is(&e, ERROR_NO_MORE_ITEMS) || is(&e, ERROR_TIMEOUT) => {
                    if attempt == 1 {
                        return Ok(());
                    }
                    // Reset, then look once more: an event that arrived in between sets the
                    // signal again or is read now, never lost.
                    // SAFETY: `sub.signal` is an open event handle owned by `sub`.
                    unsafe { ResetEvent(*sub.signal) }
                        .map_err(|e| source_error("ResetEvent", &e))?;
                }
                Err(e) => return Err(source_error("EvtNext", &e)),
            }
        }
        Ok(())
    }

    fn render_event(&mut self, event: &Self::Event) -> Result<String, SourceError> {
        self.render(**event, EvtRenderEventXml.0)
    }

    fn update_bookmark(
        &mut self,
        bookmark: &mut Self::Bookmark,
        event: &Self::Event,
    ) -> Result<(), SourceError> {
        // SAFETY: both are open handles owned by the caller.
        unsafe { EvtUpdateBookmark(**bookmark, **event) }
            .map_err(|e| source_error("EvtUpdateBookmark", &e))
    }

    fn render_bookmark(&mut self, bookmark: &Self::Bookmark) -> Result<String, SourceError> {
        self.render(**bookmark, EvtRenderBookmark.0)
    }

    fn wait(&mut self, subs: &[&WinSub], timeout: Duration) {
        let handles: Vec<HANDLE> = subs
            .iter()
            .take(MAX_WAIT_HANDLES)
            .map(|s| *s.signal)
            .collect();
        if handles.is_empty() {
            std::thread::sleep(timeout);
            return;
        }
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
        // SAFETY: `handles` holds at most 64 open event handles owned by live `WinSub`s that
        // outlive the call. The result is not needed: every channel is looked at afterwards.
        let _ = unsafe { WaitForMultipleObjects(&handles, false, ms) };
    }
}
