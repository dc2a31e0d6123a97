//! The read loop of [`super::run`], generic over the event source: Windows (`super::win`) in
//! production, a fake in the tests below, so that the bookmark, retry and status logic is tested
//! on every system.

// Outside Windows only the tests drive it.
#![cfg_attr(not(windows), allow(dead_code))]

use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{SYSMON_CHANNEL, Subscription, bookmark_record_id, bookmark_xml_for, event_position};

/// What kind of failure a source reports (it decides the status message and the retry delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The channel does not exist (e.g. Sysmon is not installed).
    ChannelMissing,
    /// The account may not read the channel.
    AccessDenied,
    /// Windows rejected the XPath query.
    InvalidQuery,
    /// Anything else.
    Other,
}

/// A failure of the event source.
#[derive(Debug, Clone)]
pub(crate) struct SourceError {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

impl SourceError {
    pub(crate) fn other(message: impl Into<String>) -> Self {
        SourceError {
            kind: FailureKind::Other,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// After the bookmark's event.
    AfterBookmark,
    /// At the oldest record of the channel.
    Oldest,
    /// With the next event written.
    Future,
}

/// The Event Log as the read loop sees it.
pub(crate) trait EventSource {
    /// An in-memory bookmark.
    type Bookmark;
    /// A live subscription.
    type Sub;
    /// One event read from a subscription.
    type Event;

    /// A bookmark from its XML, or an empty one.
    fn new_bookmark(&mut self, xml: Option<&str>) -> Result<Self::Bookmark, SourceError>;
    /// The rendered XML of the newest record of `channel` (`None`: the channel is empty).
    fn newest_event_xml(&mut self, channel: &str) -> Result<Option<String>, SourceError>;
    /// Subscribes to `channel`'s events matching `xpath`.
    fn subscribe(
        &mut self,
        channel: &str,
        xpath: &str,
        bookmark: &Self::Bookmark,
        start: Start,
    ) -> Result<Self::Sub, SourceError>;
    /// Appends the events available now (none: nothing new).
    fn next_batch(
        &mut self,
        sub: &mut Self::Sub,
        out: &mut Vec<Self::Event>,
    ) -> Result<(), SourceError>;
    /// An event's XML.
    fn render_event(&mut self, event: &Self::Event) -> Result<String, SourceError>;
    /// Moves the bookmark to `event`.
    fn update_bookmark(
        &mut self,
        bookmark: &mut Self::Bookmark,
        event: &Self::Event,
    ) -> Result<(), SourceError>;
    /// A bookmark's XML.
    fn render_bookmark(&mut self, bookmark: &Self::Bookmark) -> Result<String, SourceError>;
    /// Waits until one of `subs` may have events, or `timeout`.
    fn wait(&mut self, subs: &[&Self::Sub], timeout: Duration);
}

/// The loop's delays.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// Longest wait for new events (how quickly `stop` and retries are noticed).
    pub(crate) wait: Duration,
    /// Bookmarks are saved at most this often while events flow (and always on stop/errors).
    pub(crate) save_every: Duration,
    /// Retry delay of a channel that does not exist, is denied or has a rejected query.
    pub(crate) unavailable_retry: Duration,
    /// First retry delay after other failures (doubles up to `backoff_max`).
    pub(crate) backoff_min: Duration,
    /// Longest retry delay after other failures.
    pub(crate) backoff_max: Duration,
    /// Batches read from one channel before the others get their turn.
    pub(crate) batches_per_turn: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            wait: Duration::from_millis(250),
            save_every: Duration::from_secs(1),
            unavailable_retry: Duration::from_secs(60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            batches_per_turn: 16,
        }
    }
}

fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The status message of a channel that can't be subscribed to.
pub(crate) fn unavailable_message(channel: &str, err: &SourceError, retry: Duration) -> String {
    let retry = human(retry);
    match err.kind {
        FailureKind::ChannelMissing if channel.eq_ignore_ascii_case(SYSMON_CHANNEL) => format!(
            "channel {channel} does not exist: Sysmon is not installed on this host; \
             the other channels are read, this one is checked again every {retry}"
        ),
        FailureKind::ChannelMissing => format!(
            "channel {channel} does not exist on this host (its provider is not installed or \
             the log is disabled); checked again every {retry}"
        ),
        FailureKind::AccessDenied => format!(
            "access to channel {channel} is denied: run the agent as LocalSystem (as the \
             service does), an administrator or a member of Event Log Readers; retrying every \
             {retry} ({})",
            err.message
        ),
        FailureKind::InvalidQuery => format!(
            "Windows rejected the query of channel {channel}: {}; retrying every {retry}",
            err.message
        ),
        // The delay grows: not in the message, which must stay the same while it repeats.
        FailureKind::Other => format!("cannot read channel {channel}: {}; retrying", err.message),
    }
}

/// Growing retry delays.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn delay(&mut self, timing: &Timing) -> Duration {
        let delay = self.next.clamp(timing.backoff_min, timing.backoff_max);
        self.next = (delay * 2).min(timing.backoff_max);
        delay
    }

    fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

struct Channel<S: EventSource> {
    plan: Subscription,
    bookmark: Option<S::Bookmark>,
    /// The bookmark points at an event (loaded, anchored or updated).
    positioned: bool,
    /// Where to start while not positioned.
    start: Start,
    /// The channel was missing earlier in this run: when it appears, all of it is new.
    missing_seen: bool,
    sub: Option<S::Sub>,
    retry_at: Instant,
    backoff: Backoff,
    /// Events were taken since the last save.
    dirty: bool,
    last_save: Instant,
    status: Option<Result<(), String>>,
    /// Reading stopped on a failure: the channel is reported healthy again only once it reads.
    failed: bool,
}

type OnEvent<'a> = &'a mut dyn FnMut(&str, &str) -> Result<(), String>;
type OnStatus<'a> = &'a mut dyn FnMut(&str, Result<(), String>);

impl<S: EventSource> Channel<S> {
    fn new(plan: Subscription) -> Self {
        let now = Instant::now();
        Channel {
            plan,
            bookmark: None,
            positioned: false,
            start: Start::Future,
            missing_seen: false,
            sub: None,
            retry_at: now,
            backoff: Backoff {
                next: Duration::ZERO,
            },
            dirty: false,
            last_save: now,
            status: None,
            failed: false,
        }
    }

    fn report(&mut self, status: Result<(), String>, on_status: OnStatus<'_>) {
        if self.status.as_ref() != Some(&status) {
            match &status {
                Ok(()) => info!(channel = self.plan.channel(), "reading the channel"),
                Err(message) => warn!(channel = self.plan.channel(), "{message}"),
            }
            on_status(self.plan.channel(), status.clone());
            self.status = Some(status);
        }
    }

    /// Picks the starting point (saved bookmark, else the newest record) and subscribes.
    fn open(&mut self, src: &mut S) -> Result<(), SourceError> {
        let channel = self.plan.channel().to_owned();
        if self.bookmark.is_none() {
            match self.plan.load_bookmark() {
                Ok(Some(xml)) if bookmark_record_id(&xml).is_none() => {
                    warn!(
                        channel,
                        "the saved bookmark points at no record; starting anew"
                    );
                }
                Ok(Some(xml)) => match src.new_bookmark(Some(&xml)) {
                    Ok(bookmark) => {
                        info!(
                            channel,
                            record_id = bookmark_record_id(&xml),
                            "resuming after the saved bookmark"
                        );
                        self.bookmark = Some(bookmark);
                        self.positioned = true;
                    }
                    Err(e) => warn!(
                        channel,
                        "the saved bookmark is refused ({e}); starting anew"
                    ),
                },
                Ok(None) => {}
                Err(e) => warn!(channel, "{e}; starting anew"),
            }
        }
        if self.bookmark.is_none() {
            if self.missing_seen {
                // The channel appeared while the agent ran: everything in it is new.
                self.bookmark = Some(src.new_bookmark(None)?);
                self.start = Start::Oldest;
            } else {
                let newest = src.newest_event_xml(&channel).inspect_err(|e| {
                    if e.kind == FailureKind::ChannelMissing {
                        self.missing_seen = true;
                    }
                })?;
                match newest.as_deref().map(event_position) {
                    Some(Some((event_channel, record))) => {
                        // First run: start after the newest record ("now"), and make that
                        // durable at once.
                        let xml = bookmark_xml_for(&event_channel, record);
                        self.bookmark = Some(src.new_bookmark(Some(&xml))?);
                        self.positioned = true;
                        info!(
                            channel,
                            record_id = record,
                            "first run: reading from now on"
                        );
                        if let Err(e) = self.plan.save_bookmark(&xml) {
                            warn!(channel, "{e}");
                        }
                    }
                    Some(None) => {
                        warn!(
                            channel,
                            "the newest record has no readable position; reading new events only"
                        );
                        self.bookmark = Some(src.new_bookmark(None)?);
                        self.start = Start::Future;
                    }
                    None => {
                        // An empty channel: its oldest record is the first new one.
                        self.bookmark = Some(src.new_bookmark(None)?);
                        self.start = Start::Oldest;
                    }
                }
            }
        }
        let Some(bookmark) = self.bookmark.as_ref() else {
            return Err(SourceError::other("no bookmark"));
        };
        let start = if self.positioned {
            Start::AfterBookmark
        } else {
            self.start
        };
        let sub = src.subscribe(&channel, self.plan.xpath(), bookmark, start)?;
        debug!(channel, ?start, "subscribed");
        self.sub = Some(sub);
        Ok(())
    }

    fn try_open(&mut self, src: &mut S, timing: &Timing, on_status: OnStatus<'_>) {
        match self.open(src) {
            Ok(()) if self.failed => {}
            Ok(()) => self.report(Ok(()), on_status),
            Err(e) => {
                if e.kind == FailureKind::ChannelMissing {
                    self.missing_seen = true;
                }
                let retry = match e.kind {
                    FailureKind::Other => self.backoff.delay(timing),
                    _ => timing.unavailable_retry,
                };
                self.retry_at = Instant::now() + retry;
                let message = unavailable_message(self.plan.channel(), &e, retry);
                self.report(Err(message), on_status);
            }
        }
    }

    /// Saves the bookmark (if any).
    fn save(&mut self, src: &mut S, on_status: OnStatus<'_>) {
        let Some(bookmark) = self.bookmark.as_ref() else {
            return;
        };
        self.last_save = Instant::now();
        let result = src
            .render_bookmark(bookmark)
            .map_err(|e| format!("cannot render the bookmark: {e}"))
            .and_then(|xml| self.plan.save_bookmark(&xml).map_err(|e| e.to_string()));
        match result {
            Ok(()) => {
                self.dirty = false;
                if self.sub.is_some() && !self.failed {
                    self.report(Ok(()), on_status);
                }
            }
            Err(e) => {
                let message = format!(
                    "the bookmark of channel {} can't be saved ({e}); events taken since the \
                     last save would be read again after a restart",
                    self.plan.channel()
                );
                self.report(Err(message), on_status);
            }
        }
    }

    /// Closes the subscription after a failure; it is opened again from the bookmark later.
    fn fail(&mut self, src: &mut S, timing: &Timing, message: String, on_status: OnStatus<'_>) {
        self.sub = None;
        self.failed = true;
        if self.dirty {
            self.save(src, on_status);
        }
        let retry = self.backoff.delay(timing);
        self.retry_at = Instant::now() + retry;
        debug!(
            channel = self.plan.channel(),
            "retrying in {}",
            human(retry)
        );
        // The delay grows: not in the message, which must stay the same while it repeats.
        self.report(Err(format!("{message}; retrying")), on_status);
    }

    /// The channel reads again after a failure.
    fn recovered(&mut self, on_status: OnStatus<'_>) {
        if self.failed {
            self.failed = false;
            self.report(Ok(()), on_status);
        }
    }

    /// Reads what is available (a bounded number of batches).
    fn drain(
        &mut self,
        src: &mut S,
        timing: &Timing,
        stop: &dyn Fn() -> bool,
        on_event: OnEvent<'_>,
        on_status: OnStatus<'_>,
    ) {
        let channel = self.plan.channel().to_owned();
        let mut batch = Vec::new();
        for _ in 0..timing.batches_per_turn.max(1) {
            if stop() {
                return;
            }
            let Some(sub) = self.sub.as_mut() else { return };
            batch.clear();
            if let Err(e) = src.next_batch(sub, &mut batch) {
                let message = format!("reading channel {channel} failed: {e}");
                self.fail(src, timing, message, on_status);
                return;
            }
            if batch.is_empty() {
                // Caught up.
                self.recovered(on_status);
                return;
            }
            for event in batch.drain(..) {
                let xml = match src.render_event(&event) {
                    Ok(xml) => xml,
                    Err(e) => {
                        // It will never render: skipped, so that it doesn't block the channel.
                        warn!(channel, "an event can't be rendered and is skipped: {e}");
                        self.advance(src, &event);
                        continue;
                    }
                };
                match on_event(&channel, &xml) {
                    Ok(()) => {
                        self.backoff.reset();
                        self.advance(src, &event);
                        self.recovered(on_status);
                    }
                    Err(refused) => {
                        // The rest of the batch is dropped; the refused event and those after
                        // it are read again from the bookmark.
                        let message =
                            format!("the agent did not take an event of {channel}: {refused}");
                        self.fail(src, timing, message, on_status);
                        return;
                    }
                }
            }
            if self.dirty && self.last_save.elapsed() >= timing.save_every {
                self.save(src, on_status);
            }
        }
    }

    fn advance(&mut self, src: &mut S, event: &S::Event) {
        let Some(bookmark) = self.bookmark.as_mut() else {
            return;
        };
        match src.update_bookmark(bookmark, event) {
            Ok(()) => {
                self.positioned = true;
                self.dirty = true;
            }
            Err(e) => warn!(
                channel = self.plan.channel(),
                "the bookmark can't be updated: {e}"
            ),
        }
    }
}

/// Reads the channels of `plans` until `stop()`; bookmarks are saved before returning.
pub(crate) fn drive<S: EventSource>(
    src: &mut S,
    plans: Vec<Subscription>,
    timing: &Timing,
    stop: &dyn Fn() -> bool,
    on_event: OnEvent<'_>,
    on_status: OnStatus<'_>,
) {
    let mut channels: Vec<Channel<S>> = plans.into_iter().map(Channel::new).collect();
    info!(channels = channels.len(), "Event Log reader started");
    while !stop() {
        let now = Instant::now();
        for ch in &mut channels {
            if ch.sub.is_none() && now >= ch.retry_at {
                ch.try_open(src, timing, on_status);
            }
        }
        for ch in &mut channels {
            if stop() {
                break;
            }
            if ch.sub.is_some() {
                ch.drain(src, timing, stop, on_event, on_status);
            }
        }
        for ch in &mut channels {
            if ch.dirty && ch.last_save.elapsed() >= timing.save_every {
                ch.save(src, on_status);
            }
        }
        if stop() {
            break;
        }
        let subs: Vec<&S::Sub> = channels.iter().filter_map(|c| c.sub.as_ref()).collect();
        src.wait(&subs, timing.wait);
    }
    for ch in &mut channels {
        if ch.dirty {
            ch.save(src, on_status);
        }
    }
    info!("Event Log reader stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::{ChannelQuery, SECURITY_CHANNEL};
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::rc::Rc;

    fn event_xml(channel: &str, record: u64) -> String {
        format!(
            "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>\
             <Provider Name='P'/><EventID>1</EventID><TimeCreated SystemTime='2024-05-01T10:00:00.000Z'/>\
             <EventRecordID>{record}</EventRecordID><Channel>{channel}</Channel><Computer>pc</Computer>\
             </System></Event>"
        )
    }

    type Hook = Box<dyn FnMut(usize, &mut Fake)>;

    /// An Event Log in memory: channels of (record id) in order.
    #[derive(Default)]
    struct Fake {
        channels: BTreeMap<String, Vec<u64>>,
        denied: Vec<String>,
        ticks: Rc<Cell<usize>>,
        hook: Option<Hook>,
        subscribes: Vec<(String, Start)>,
    }

    struct FakeSub {
        channel: String,
        next: u64,
    }

    impl Fake {
        fn with(channels: &[(&str, &[u64])]) -> Self {
            let mut fake = Fake::default();
            for (name, records) in channels {
                fake.channels.insert((*name).to_owned(), records.to_vec());
            }
            fake
        }

        fn add(&mut self, channel: &str, records: &[u64]) {
            self.channels
                .entry(channel.to_owned())
                .or_default()
                .extend_from_slice(records);
        }

        fn check(&self, channel: &str) -> Result<&Vec<u64>, SourceError> {
            if self.denied.iter().any(|d| d == channel) {
                return Err(SourceError {
                    kind: FailureKind::AccessDenied,
                    message: "Access is denied. (0x80070005)".into(),
                });
            }
            self.channels.get(channel).ok_or(SourceError {
                kind: FailureKind::ChannelMissing,
                message: "The specified channel could not be found.".into(),
            })
        }
    }

    impl EventSource for Fake {
        type Bookmark = Option<(String, u64)>;
        type Sub = FakeSub;
        type Event = (String, u64);

        fn new_bookmark(&mut self, xml: Option<&str>) -> Result<Self::Bookmark, SourceError> {
            match xml {
                None => Ok(None),
                Some(xml) => {
                    let record = bookmark_record_id(xml)
                        .ok_or_else(|| SourceError::other("The bookmark is invalid."))?;
                    let channel = xml
                        .split("Channel='")
                        .nth(1)
                        .and_then(|r| r.split('\'').next())
                        .unwrap_or_default();
                    Ok(Some((channel.to_owned(), record)))
                }
            }
        }

        fn newest_event_xml(&mut self, channel: &str) -> Result<Option<String>, SourceError> {
            let records = self.check(channel)?;
            Ok(records.last().map(|r| event_xml(channel, *r)))
        }

        fn subscribe(
            &mut self,
            channel: &str,
            _xpath: &str,
            bookmark: &Self::Bookmark,
            start: Start,
        ) -> Result<FakeSub, SourceError> {
            let records = self.check(channel)?;
            let next = match start {
                Start::AfterBookmark => {
                    bookmark
                        .as_ref()
                        .ok_or_else(|| SourceError::other("empty bookmark"))?
                        .1
                        + 1
                }
                Start::Oldest => 0,
                Start::Future => records.last().map_or(0, |r| r + 1),
            };
            self.subscribes.push((channel.to_owned(), start));
            Ok(FakeSub {
                channel: channel.to_owned(),
                next,
            })
        }

        fn next_batch(
            &mut self,
            sub: &mut FakeSub,
            out: &mut Vec<(String, u64)>,
        ) -> Result<(), SourceError> {
            let records = self.check(&sub.channel)?;
            // Small batches, to exercise the batching.
            for r in records.iter().filter(|r| **r >= sub.next).take(3) {
                out.push((sub.channel.clone(), *r));
            }
            if let Some((_, last)) = out.last() {
                sub.next = last + 1;
            }
            Ok(())
        }

        fn render_event(&mut self, event: &(String, u64)) -> Result<String, SourceError> {
            Ok(event_xml(&event.0, event.1))
        }

        fn update_bookmark(
            &mut self,
            bookmark: &mut Self::Bookmark,
            event: &(String, u64),
        ) -> Result<(), SourceError> {
            *bookmark = Some(event.clone());
            Ok(())
        }

        fn render_bookmark(&mut self, bookmark: &Self::Bookmark) -> Result<String, SourceError> {
            match bookmark {
                Some((channel, record)) => Ok(bookmark_xml_for(channel, *record)),
                None => Ok("<BookmarkList/>".to_owned()),
            }
        }

        fn wait(&mut self, _subs: &[&FakeSub], _timeout: Duration) {
            let tick = self.ticks.get() + 1;
            self.ticks.set(tick);
            if let Some(mut hook) = self.hook.take() {
                hook(tick, self);
                self.hook = Some(hook);
            }
        }
    }

    fn fast() -> Timing {
        Timing {
            wait: Duration::ZERO,
            save_every: Duration::from_secs(3600),
            unavailable_retry: Duration::ZERO,
            backoff_min: Duration::ZERO,
            backoff_max: Duration::ZERO,
            batches_per_turn: 2,
        }
    }

    struct Outcome {
        events: Vec<(String, u64)>,
        statuses: Vec<(String, Result<(), String>)>,
    }

    /// Runs the loop until `ticks` waits happened; `refuse(channel, record, attempt)` makes
    /// `on_event` fail.
    fn drive_fake(
        fake: &mut Fake,
        queries: &[ChannelQuery],
        dir: &Path,
        ticks: usize,
        refuse: &dyn Fn(&str, u64, usize) -> bool,
    ) -> Outcome {
        let plans = Subscription::plan(queries, dir).unwrap();
        let counter = fake.ticks.clone();
        counter.set(0);
        let mut events = Vec::new();
        let mut attempts: BTreeMap<(String, u64), usize> = BTreeMap::new();
        let mut statuses = Vec::new();
        drive(
            fake,
            plans,
            &fast(),
            &|| counter.get() >= ticks,
            &mut |channel, xml| {
                let (c, record) = event_position(xml).ok_or("no position")?;
                assert_eq!(c, channel);
                let n = attempts.entry((c.clone(), record)).or_default();
                *n += 1;
                if refuse(channel, record, *n) {
                    return Err("spool full".to_owned());
                }
                events.push((c, record));
                Ok(())
            },
            &mut |channel, status| statuses.push((channel.to_owned(), status)),
        );
        Outcome { events, statuses }
    }

    fn saved(dir: &Path, channel: &str) -> Option<u64> {
        let sub = Subscription::new(&ChannelQuery::all(channel), dir).unwrap();
        sub.load_bookmark()
            .unwrap()
            .as_deref()
            .and_then(bookmark_record_id)
    }

    fn never(_: &str, _: u64, _: usize) -> bool {
        false
    }

    #[test]
    fn first_run_starts_now_and_saves_the_bookmark() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1, 2, 3])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add(SECURITY_CHANNEL, &[4, 5, 6, 7, 8, 9, 10]);
            }
        }));
        let q = [ChannelQuery::all(SECURITY_CHANNEL)];
        let out = drive_fake(&mut fake, &q, dir.path(), 4, &never);
        let got: Vec<u64> = out.events.iter().map(|e| e.1).collect();
        assert_eq!(got, (4..=10).collect::<Vec<_>>());
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(10));
        assert_eq!(out.statuses, vec![(SECURITY_CHANNEL.to_owned(), Ok(()))]);
        assert_eq!(
            fake.subscribes,
            vec![(SECURITY_CHANNEL.to_owned(), Start::AfterBookmark)]
        );

        // Restart: resumes after record 10.
        fake.add(SECURITY_CHANNEL, &[11, 12]);
        fake.hook = None;
        let out = drive_fake(&mut fake, &q, dir.path(), 2, &never);
        let got: Vec<u64> = out.events.iter().map(|e| e.1).collect();
        assert_eq!(got, vec![11, 12]);
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(12));
    }

    #[test]
    fn first_run_anchor_is_saved_before_any_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1, 2, 3])]);
        let q = [ChannelQuery::all(SECURITY_CHANNEL)];
        let out = drive_fake(&mut fake, &q, dir.path(), 1, &never);
        assert!(out.events.is_empty());
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(3));
    }

    #[test]
    fn an_empty_channel_is_read_from_its_oldest_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[("System", &[])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add("System", &[1, 2]);
            }
        }));
        let q = [ChannelQuery::event_ids("System", &[7045])];
        let out = drive_fake(&mut fake, &q, dir.path(), 3, &never);
        let got: Vec<u64> = out.events.iter().map(|e| e.1).collect();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(fake.subscribes, vec![("System".to_owned(), Start::Oldest)]);
        assert_eq!(saved(dir.path(), "System"), Some(2));
    }

    #[test]
    fn missing_sysmon_is_degraded_and_the_others_keep_working() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| match tick {
            1 => f.add(SECURITY_CHANNEL, &[2]),
            // Sysmon gets installed: its first events are read (from the oldest).
            3 => f.add(SYSMON_CHANNEL, &[1, 2]),
            _ => {}
        }));
        let q = [
            ChannelQuery::all(SYSMON_CHANNEL),
            ChannelQuery::all(SECURITY_CHANNEL),
        ];
        let out = drive_fake(&mut fake, &q, dir.path(), 6, &never);
        assert_eq!(
            out.events,
            vec![
                (SECURITY_CHANNEL.to_owned(), 2),
                (SYSMON_CHANNEL.to_owned(), 1),
                (SYSMON_CHANNEL.to_owned(), 2),
            ]
        );
        let sysmon: Vec<&Result<(), String>> = out
            .statuses
            .iter()
            .filter(|(c, _)| c == SYSMON_CHANNEL)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(sysmon.len(), 2, "{:?}", out.statuses);
        let message = sysmon[0].as_ref().unwrap_err();
        assert!(message.contains("Sysmon is not installed"), "{message}");
        assert!(message.contains("other channels are read"), "{message}");
        assert_eq!(sysmon[1], &Ok(()));
        assert!(
            out.statuses
                .contains(&(SECURITY_CHANNEL.to_owned(), Ok(())))
        );
        assert_eq!(saved(dir.path(), SYSMON_CHANNEL), Some(2));
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(2));
    }

    #[test]
    fn a_refused_event_is_offered_again_and_the_bookmark_stops_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add(SECURITY_CHANNEL, &[2, 3, 4, 5]);
            }
        }));
        let q = [ChannelQuery::all(SECURITY_CHANNEL)];
        // Record 4 is refused twice, then taken.
        let refuse = |_: &str, record: u64, attempt: usize| record == 4 && attempt <= 2;
        let out = drive_fake(&mut fake, &q, dir.path(), 8, &refuse);
        let got: Vec<u64> = out.events.iter().map(|e| e.1).collect();
        assert_eq!(got, vec![2, 3, 4, 5]);
        let statuses: Vec<&Result<(), String>> = out.statuses.iter().map(|(_, s)| s).collect();
        assert_eq!(statuses.len(), 3, "{statuses:?}");
        assert_eq!(statuses[0], &Ok(()));
        let message = statuses[1].as_ref().unwrap_err();
        assert!(
            message.contains("did not take") && message.contains("spool full"),
            "{message}"
        );
        assert_eq!(statuses[2], &Ok(()));
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(5));
    }

    #[test]
    fn a_refusal_saves_what_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add(SECURITY_CHANNEL, &[2, 3, 4]);
            }
        }));
        let q = [ChannelQuery::all(SECURITY_CHANNEL)];
        // Record 3 is always refused.
        let refuse = |_: &str, record: u64, _: usize| record == 3;
        let out = drive_fake(&mut fake, &q, dir.path(), 5, &refuse);
        let got: Vec<u64> = out.events.iter().map(|e| e.1).collect();
        assert_eq!(got, vec![2]);
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), Some(2));
    }

    #[test]
    fn access_denied_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Fake::with(&[(SECURITY_CHANNEL, &[1]), ("System", &[1])]);
        fake.denied.push(SECURITY_CHANNEL.to_owned());
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add("System", &[2]);
            }
        }));
        let q = [
            ChannelQuery::all(SECURITY_CHANNEL),
            ChannelQuery::all("System"),
        ];
        let out = drive_fake(&mut fake, &q, dir.path(), 3, &never);
        assert_eq!(out.events, vec![("System".to_owned(), 2)]);
        let (channel, status) = &out.statuses[0];
        assert_eq!(channel, SECURITY_CHANNEL);
        let message = status.as_ref().unwrap_err();
        assert!(message.contains("Event Log Readers"), "{message}");
        // Reported once, not at every retry.
        assert_eq!(
            out.statuses
                .iter()
                .filter(|(c, _)| c == SECURITY_CHANNEL)
                .count(),
            1
        );
        assert_eq!(saved(dir.path(), SECURITY_CHANNEL), None);
    }

    #[test]
    fn a_damaged_bookmark_file_starts_anew() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subscription::new(&ChannelQuery::all("System"), dir.path()).unwrap();
        std::fs::write(sub.bookmark_path(), "garbage").unwrap();
        let mut fake = Fake::with(&[("System", &[1, 2])]);
        fake.hook = Some(Box::new(|tick, f: &mut Fake| {
            if tick == 1 {
                f.add("System", &[3]);
            }
        }));
        let out = drive_fake(
            &mut fake,
            &[ChannelQuery::all("System")],
            dir.path(),
            2,
            &never,
        );
        assert_eq!(out.events, vec![("System".to_owned(), 3)]);
        assert_eq!(saved(dir.path(), "System"), Some(3));
    }

    #[test]
    fn an_empty_saved_bookmark_starts_anew() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subscription::new(&ChannelQuery::all("System"), dir.path()).unwrap();
        std::fs::write(sub.bookmark_path(), "<BookmarkList>\r\n</BookmarkList>").unwrap();
        let mut fake = Fake::with(&[("System", &[1, 2])]);
        let out = drive_fake(
            &mut fake,
            &[ChannelQuery::all("System")],
            dir.path(),
            1,
            &never,
        );
        assert!(out.events.is_empty());
        assert_eq!(saved(dir.path(), "System"), Some(2));
    }

    #[test]
    fn messages() {
        let missing = SourceError {
            kind: FailureKind::ChannelMissing,
            message: "x".into(),
        };
        let m = unavailable_message(
            "Microsoft-Windows-PowerShell/Operational",
            &missing,
            Duration::from_secs(60),
        );
        assert!(m.contains("does not exist") && m.contains("60 s"), "{m}");
        assert!(!m.contains("Sysmon"), "{m}");
        let bad = SourceError {
            kind: FailureKind::InvalidQuery,
            message: "The specified query is invalid.".into(),
        };
        let m = unavailable_message("Security", &bad, Duration::from_millis(5));
        assert!(
            m.contains("rejected the query") && m.contains("invalid") && m.contains("5 ms"),
            "{m}"
        );
        let m = unavailable_message(
            "Security",
            &SourceError::other("boom"),
            Duration::from_secs(2),
        );
        assert!(m.contains("boom"), "{m}");
    }

    #[test]
    fn backoff_grows_and_resets() {
        let timing = Timing::default();
        let mut b = Backoff {
            next: Duration::ZERO,
        };
        let delays: Vec<u64> = (0..8).map(|_| b.delay(&timing).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.delay(&timing), Duration::from_secs(1));
    }
}
