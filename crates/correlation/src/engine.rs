//! The streaming correlation engine: per-rule, per-group windows fed with base-rule matches.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::Range;

use dozor_event::{EventFields, FieldValue};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::CorrelationError;
use crate::resolve::{FieldSpec, ResolvedCorrelation, RuleRef};
use crate::rule::{Condition, CorrelationType};

/// What to do with a match whose event has no timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingTimestamp {
    /// Place it at the newest timestamp seen so far (0 before any): it joins the current
    /// windows. Counted in [`CorrelationStats::missing_timestamp`].
    #[default]
    UseNewest,
    /// Ignore it for correlation. Counted in [`CorrelationStats::missing_timestamp`].
    Drop,
}

/// Limits and tolerances of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationConfig {
    /// Groups kept per correlation rule; beyond it the least recently seen group is evicted
    /// (its partial window is lost) and [`CorrelationStats::evicted_groups`] counts it.
    pub max_groups_per_rule: usize,
    /// Events kept per group; beyond it the oldest is forgotten (the window becomes an
    /// approximation) and [`CorrelationStats::truncated_events`] counts it.
    pub max_events_per_group: usize,
    /// How far behind the newest timestamp seen an event may be and still be placed in its
    /// windows. Older events are counted in [`CorrelationStats::dropped_late`]. This is also
    /// how long a window that is decided when it closes (`lt`, `eq`, averages, ...) waits
    /// after its end before it is evaluated.
    pub max_lateness_millis: i64,
    /// Event references kept per hit (the first ones in time order).
    pub max_event_refs: usize,
    pub missing_timestamp: MissingTimestamp,
    /// Also report hits of correlations that only feed another correlation
    /// (`ResolvedCorrelation::output == false`).
    pub emit_intermediate: bool,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            max_groups_per_rule: 100_000,
            max_events_per_group: 10_000,
            max_lateness_millis: 60_000,
            max_event_refs: 100,
            missing_timestamp: MissingTimestamp::UseNewest,
            emit_intermediate: false,
        }
    }
}

/// Counters of everything the engine did not do by the book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelationStats {
    /// Inputs accepted into a window (one per correlation fed, chained hits included).
    pub inputs: u64,
    /// Hits produced (reported or not).
    pub hits: u64,
    /// Matches older than the newest timestamp minus `max_lateness_millis`.
    pub dropped_late: u64,
    /// Matches whose event had no timestamp (placed or dropped per config).
    pub missing_timestamp: u64,
    /// Inputs ignored because a group-by or condition field was absent (or, for numeric
    /// aggregations, not a number) in the event.
    pub missing_field: u64,
    /// Groups evicted because of `max_groups_per_rule`.
    pub evicted_groups: u64,
    /// Groups removed because all their state was older than timespan + lateness.
    pub expired_groups: u64,
    /// Events forgotten because of `max_events_per_group`.
    pub truncated_events: u64,
}

/// One correlation match.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index into the rules given to [`CorrelationEngine::new`].
    pub correlation: usize,
    /// `(group-by name as written in the rule, value)`, in group-by order. For
    /// value_percentile without `percentile` (share of a value), the `(field, value)` pairs of
    /// the rare value follow.
    pub group: Vec<(String, String)>,
    /// Time of the first and last event of the window that matched.
    pub first_millis: i64,
    pub last_millis: i64,
    /// The aggregate the condition was checked on: event count, distinct value count,
    /// number of distinct rules (temporal), length of the ordered prefix (temporal_ordered),
    /// sum, average, percentile/median, or share in percent.
    pub value: f64,
    /// Number of inputs in the window (events; for chained correlations, upstream hits).
    pub event_count: usize,
    /// The `event_ref`s of the contributing base events, in time order, at most
    /// `max_event_refs` (for chained correlations: those of the upstream hits).
    pub event_refs: Vec<u64>,
}

// ---------------------------------------------------------------------------------------------

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum StoredRefs {
    One(u64),
    Many(Box<[u64]>),
}

impl StoredRefs {
    fn as_slice(&self) -> &[u64] {
        match self {
            StoredRefs::One(r) => std::slice::from_ref(r),
            StoredRefs::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone)]
enum EntryValue {
    None,
    Text(Box<str>),
    Num(f64),
}

#[derive(Debug, Clone)]
struct Entry {
    ts: i64,
    slot: u32,
    value: EntryValue,
    refs: StoredRefs,
}

/// Incrementally maintained aggregate of the current sliding window (eager rules).
#[derive(Debug, Default)]
struct Agg {
    count: usize,
    sum: f64,
    distinct: FxHashMap<Box<str>, u32>,
    slots: Vec<u32>,
    slots_present: usize,
}

impl Agg {
    fn new(nslots: usize, kind: CorrelationType) -> Agg {
        let temporal = matches!(
            kind,
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
        );
        Agg {
            slots: if temporal {
                vec![0; nslots]
            } else {
                Vec::new()
            },
            ..Agg::default()
        }
    }

    fn add(&mut self, e: &Entry) {
        self.count += 1;
        match &e.value {
            EntryValue::Num(x) => self.sum += x,
            EntryValue::Text(t) => {
                if let Some(c) = self.distinct.get_mut(&**t) {
                    *c += 1;
                } else {
                    self.distinct.insert(t.clone(), 1);
                }
            }
            EntryValue::None => {}
        }
        if let Some(c) = self.slots.get_mut(e.slot as usize) {
            if *c == 0 {
                self.slots_present += 1;
            }
            *c += 1;
        }
    }

    fn remove(&mut self, e: &Entry) {
        self.count = self.count.saturating_sub(1);
        match &e.value {
            EntryValue::Num(x) => self.sum -= x,
            EntryValue::Text(t) => {
                if let Some(c) = self.distinct.get_mut(&**t) {
                    *c -= 1;
                    if *c == 0 {
                        self.distinct.remove(&**t);
                    }
                }
            }
            EntryValue::None => {}
        }
        if let Some(c) = self.slots.get_mut(e.slot as usize)
            && *c > 0
        {
            *c -= 1;
            if *c == 0 {
                self.slots_present -= 1;
            }
        }
    }

    fn clear(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.distinct.clear();
        self.slots.iter_mut().for_each(|c| *c = 0);
        self.slots_present = 0;
    }
}

#[derive(Debug)]
struct Group {
    key: Box<str>,
    values: Vec<String>,
    /// Sorted by timestamp (ties in arrival order).
    entries: VecDeque<Entry>,
    /// Eager rules: first entry of the current window `[newest - timespan, newest]`.
    win_start: usize,
    newest: i64,
    agg: Agg,
    prev: u32,
    next: u32,
    live: bool,
}

/// Groups of one rule: a hash map from the encoded key into a slab with an LRU list.
#[derive(Debug, Default)]
struct Groups {
    map: FxHashMap<Box<str>, u32>,
    nodes: Vec<Group>,
    free: Vec<u32>,
    /// Most recently seen.
    head: u32,
    /// Least recently seen.
    tail: u32,
}

impl Groups {
    fn new() -> Groups {
        Groups {
            head: NIL,
            tail: NIL,
            ..Groups::default()
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn remove(&mut self, i: u32) {
        self.unlink(i);
        let g = &mut self.nodes[i as usize];
        self.map.remove(&g.key);
        g.live = false;
        g.key = Box::from("");
        g.values = Vec::new();
        g.entries = VecDeque::new();
        g.agg.clear();
        g.agg.distinct = FxHashMap::default();
        g.win_start = 0;
        self.free.push(i);
    }

    fn clear(&mut self) {
        *self = Groups::new();
    }

    fn live_indices(&self) -> Vec<u32> {
        (0..self.nodes.len() as u32)
            .filter(|&i| self.nodes[i as usize].live)
            .collect()
    }
}

/// Per-rule constants the window code needs.
#[derive(Debug)]
struct RulePlan {
    kind: CorrelationType,
    condition: Condition,
    timespan: i64,
    nslots: usize,
    /// Fire as soon as the condition holds on the sliding window, then reset; otherwise the
    /// condition is evaluated when a window closes.
    eager: bool,
    /// value_percentile without `percentile`: share (in %) of each distinct value.
    share_mode: bool,
    /// Entries carry text values (distinct counting).
    text_value: bool,
    /// Entries carry a number.
    numeric_value: bool,
}

impl RulePlan {
    fn new(r: &ResolvedCorrelation) -> RulePlan {
        let kind = r.rule.kind;
        let cond = r.rule.condition.clone();
        let monotone = matches!(
            kind,
            CorrelationType::EventCount
                | CorrelationType::ValueCount
                | CorrelationType::Temporal
                | CorrelationType::TemporalOrdered
                | CorrelationType::ValueSum
        );
        let share_mode = kind == CorrelationType::ValuePercentile && cond.percentile.is_none();
        RulePlan {
            kind,
            eager: monotone && cond.lower_bounded_only(),
            timespan: r.rule.timespan.millis,
            nslots: r.inputs.len(),
            share_mode,
            text_value: kind == CorrelationType::ValueCount || share_mode,
            numeric_value: matches!(
                kind,
                CorrelationType::ValueSum
                    | CorrelationType::ValueAvg
                    | CorrelationType::ValueMedian
            ) || (kind == CorrelationType::ValuePercentile && !share_mode),
            condition: cond,
        }
    }
}

#[derive(Debug)]
struct RuleState {
    plan: RulePlan,
    groups: Groups,
}

/// A window that matched, described before its entries are removed.
struct Fired {
    range: Range<usize>,
    value: f64,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Event(&'a dyn EventFields),
    Chained {
        group: &'a [(String, String)],
        event: Option<&'a dyn EventFields>,
    },
}

impl<'a> Source<'a> {
    fn event(self) -> Option<&'a dyn EventFields> {
        match self {
            Source::Event(e) => Some(e),
            Source::Chained { event, .. } => event,
        }
    }
}

#[derive(Clone, Copy)]
enum RefsIn<'a> {
    One(u64),
    Many(&'a [u64]),
}

#[derive(Debug, Default)]
struct Scratch {
    values: Vec<String>,
    found: Vec<bool>,
    key: String,
}

/// Streaming evaluator of resolved correlation rules.
///
/// Feed it every base-rule match with [`on_match`](Self::on_match), call
/// [`flush`](Self::flush) periodically in a live pipeline and [`finish`](Self::finish) at the
/// end of a finite input. See the crate documentation for the window semantics.
#[derive(Debug)]
pub struct CorrelationEngine {
    rules: Vec<ResolvedCorrelation>,
    config: CorrelationConfig,
    states: Vec<RuleState>,
    /// By base-rule index: (correlation, input slot).
    base_listeners: Vec<Vec<(usize, u32)>>,
    /// By correlation index: (downstream correlation, input slot).
    corr_listeners: Vec<Vec<(usize, u32)>>,
    /// Upstream correlations before the ones that consume them.
    topo: Vec<usize>,
    watermark: i64,
    stats: CorrelationStats,
    scratch: Scratch,
}

impl CorrelationEngine {
    /// Builds an engine over correlations produced by [`crate::resolve`]. Fails only when the
    /// vector is inconsistent (a chained index out of range, a cycle), i.e. was edited after
    /// resolution.
    pub fn new(
        rules: Vec<ResolvedCorrelation>,
        config: CorrelationConfig,
    ) -> Result<Self, CorrelationError> {
        let n = rules.len();
        let mut base_listeners: Vec<Vec<(usize, u32)>> = Vec::new();
        let mut corr_listeners: Vec<Vec<(usize, u32)>> = vec![Vec::new(); n];
        for (c, r) in rules.iter().enumerate() {
            if r.inputs.len() != r.rule.rules.len()
                || r.group_fields.len() != r.inputs.len()
                || r.value_fields.len() != r.inputs.len()
            {
                return Err(CorrelationError::Engine(format!(
                    "correlation {c} was not built by resolve()"
                )));
            }
            for (slot, input) in r.inputs.iter().enumerate() {
                match *input {
                    RuleRef::Base(b) => {
                        let b = b as usize;
                        if base_listeners.len() <= b {
                            base_listeners.resize_with(b + 1, Vec::new);
                        }
                        base_listeners[b].push((c, slot as u32));
                    }
                    RuleRef::Correlation(u) => {
                        if u >= n {
                            return Err(CorrelationError::Engine(format!(
                                "correlation {c} references correlation {u}, but there are only {n}"
                            )));
                        }
                        corr_listeners[u].push((c, slot as u32));
                    }
                }
            }
        }
        // Topological order (Kahn); leftovers mean a cycle.
        let mut indegree: Vec<usize> = rules
            .iter()
            .map(|r| {
                r.inputs
                    .iter()
                    .filter(|i| matches!(i, RuleRef::Correlation(_)))
                    .count()
            })
            .collect();
        let mut queue: VecDeque<usize> = (0..n).filter(|&c| indegree[c] == 0).collect();
        let mut topo = Vec::with_capacity(n);
        while let Some(c) = queue.pop_front() {
            topo.push(c);
            for &(d, _) in &corr_listeners[c] {
                indegree[d] -= 1;
                if indegree[d] == 0 {
                    queue.push_back(d);
                }
            }
        }
        if topo.len() != n {
            return Err(CorrelationError::Engine(
                "correlations reference each other in a cycle".into(),
            ));
        }
        let states = rules
            .iter()
            .map(|r| RuleState {
                plan: RulePlan::new(r),
                groups: Groups::new(),
            })
            .collect();
        Ok(CorrelationEngine {
            rules,
            config,
            states,
            base_listeners,
            corr_listeners,
            topo,
            watermark: i64::MIN,
            stats: CorrelationStats::default(),
            scratch: Scratch::default(),
        })
    }

    /// The correlations, indexed by [`CorrelationHit::correlation`].
    pub fn rules(&self) -> &[ResolvedCorrelation] {
        &self.rules
    }

    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    pub fn stats(&self) -> &CorrelationStats {
        &self.stats
    }

    /// The newest event time seen (or given to `flush`), `None` before any.
    pub fn watermark(&self) -> Option<i64> {
        (self.watermark != i64::MIN).then_some(self.watermark)
    }

    /// Groups currently held, over all rules.
    pub fn group_count(&self) -> usize {
        self.states.iter().map(|s| s.groups.len()).sum()
    }

    /// True when some correlation consumes matches of `base_rule` (callers may skip the call
    /// otherwise; `on_match` returns at once anyway).
    pub fn wants(&self, base_rule: u32) -> bool {
        self.base_listeners
            .get(base_rule as usize)
            .is_some_and(|l| !l.is_empty())
    }

    /// Feeds one match of detection rule `base_rule` on `event`. `event_ref` is the caller's
    /// opaque reference to the event, returned in hits. Hits (of this and of any correlation
    /// it feeds, and of windows that closed because time advanced) are appended to `out`.
    pub fn on_match(
        &mut self,
        base_rule: u32,
        event: &dyn EventFields,
        event_ref: u64,
        out: &mut Vec<CorrelationHit>,
    ) {
        let Some(n_listeners) = self.base_listeners.get(base_rule as usize).map(Vec::len) else {
            return;
        };
        if n_listeners == 0 {
            return;
        }
        let ts = match event.timestamp_millis() {
            Some(t) => t,
            None => {
                self.stats.missing_timestamp += 1;
                match self.config.missing_timestamp {
                    MissingTimestamp::Drop => return,
                    MissingTimestamp::UseNewest => self.watermark().unwrap_or(0),
                }
            }
        };
        if ts
            < self
                .watermark
                .saturating_sub(self.config.max_lateness_millis.max(0))
        {
            self.stats.dropped_late += 1;
            return;
        }
        self.watermark = self.watermark.max(ts);
        for k in 0..n_listeners {
            let (c, slot) = self.base_listeners[base_rule as usize][k];
            self.feed(
                c,
                slot,
                ts,
                Source::Event(event),
                RefsIn::One(event_ref),
                out,
            );
        }
    }

    /// Advances time to `now_millis` (if it is ahead of the newest event) and evaluates every
    /// window that ended more than `max_lateness_millis` ago; frees expired groups. Call it
    /// periodically in a live pipeline so that "fewer than" conditions are decided without
    /// waiting for more events. Events older than `now_millis - max_lateness_millis` are late
    /// afterwards.
    pub fn flush(&mut self, now_millis: i64, out: &mut Vec<CorrelationHit>) {
        self.watermark = self.watermark.max(now_millis);
        let topo = self.topo.clone();
        for c in topo {
            let mut hits = Vec::new();
            let limit = self.close_limit();
            let dead = self.dead_before(c);
            let retain = self.retain_from(c);
            let state = &mut self.states[c];
            for gi in state.groups.live_indices() {
                let g = &mut state.groups.nodes[gi as usize];
                if state.plan.eager {
                    purge_front(g, retain);
                } else {
                    close_windows(
                        c,
                        &state.plan,
                        &self.rules[c],
                        &self.config,
                        g,
                        Some(limit),
                        &mut hits,
                    );
                }
                if g.newest < dead || g.entries.is_empty() {
                    state.groups.remove(gi);
                    self.stats.expired_groups += 1;
                }
            }
            for h in hits {
                self.emit(c, h, None, out);
            }
        }
    }

    /// End of input: evaluates every open window regardless of time (so "fewer than"
    /// conditions are decided on what was seen) and clears all state, the newest timestamp
    /// included: the engine can then take an unrelated input (statistics are kept).
    pub fn finish(&mut self, out: &mut Vec<CorrelationHit>) {
        let topo = self.topo.clone();
        for c in topo {
            let mut hits = Vec::new();
            let state = &mut self.states[c];
            if !state.plan.eager {
                for gi in state.groups.live_indices() {
                    let g = &mut state.groups.nodes[gi as usize];
                    close_windows(
                        c,
                        &state.plan,
                        &self.rules[c],
                        &self.config,
                        g,
                        None,
                        &mut hits,
                    );
                }
            }
            state.groups.clear();
            for h in hits {
                self.emit(c, h, None, out);
            }
        }
        self.watermark = i64::MIN;
    }

    /// Windows ending before this are closed.
    fn close_limit(&self) -> i64 {
        self.watermark
            .saturating_sub(self.config.max_lateness_millis.max(0))
    }

    /// Entries older than this can no longer share a window with an event that is not late.
    fn retain_from(&self, c: usize) -> i64 {
        self.close_limit()
            .saturating_sub(self.states[c].plan.timespan)
    }

    /// A group whose newest entry is older than this holds nothing useful any more.
    fn dead_before(&self, c: usize) -> i64 {
        self.retain_from(c)
    }

    fn feed(
        &mut self,
        c: usize,
        slot: u32,
        ts: i64,
        src: Source<'_>,
        refs: RefsIn<'_>,
        out: &mut Vec<CorrelationHit>,
    ) {
        // 1. Field values.
        let rule = &self.rules[c];
        let gspecs = &rule.group_fields[slot as usize];
        let vspecs = &rule.value_fields[slot as usize];
        if !extract(&mut self.scratch, gspecs, vspecs, src) {
            self.stats.missing_field += 1;
            return;
        }
        let plan = &self.states[c].plan;
        let ngroup = gspecs.len();
        let value = if plan.numeric_value {
            match self.scratch.values[ngroup].trim().parse::<f64>() {
                Ok(x) if x.is_finite() => EntryValue::Num(x),
                _ => {
                    self.stats.missing_field += 1;
                    return;
                }
            }
        } else if plan.text_value {
            let mut t = String::new();
            for v in &self.scratch.values[ngroup..ngroup + vspecs.len()] {
                encode_part(&mut t, v);
            }
            EntryValue::Text(t.into_boxed_str())
        } else {
            EntryValue::None
        };
        let key = &mut self.scratch.key;
        key.clear();
        for v in &self.scratch.values[..ngroup] {
            encode_part(key, v);
        }
        let entry = Entry {
            ts,
            slot,
            value,
            refs: match refs {
                RefsIn::One(r) => StoredRefs::One(r),
                RefsIn::Many(v) => StoredRefs::Many(v.into()),
            },
        };
        self.stats.inputs += 1;

        // 2. Windows.
        let limit = self.close_limit();
        let retain = self.retain_from(c);
        let dead = self.dead_before(c);
        let mut swept: Vec<CorrelationHit> = Vec::new();
        let mut own: Option<CorrelationHit> = None;
        {
            let rule = &self.rules[c];
            let state = &mut self.states[c];
            let plan = &state.plan;
            let groups = &mut state.groups;

            // Expire stale groups from the LRU end (amortized O(1)).
            while groups.tail != NIL {
                let t = groups.tail;
                let g = &mut groups.nodes[t as usize];
                if g.newest >= dead || g.key.as_ref() == self.scratch.key.as_str() {
                    break;
                }
                if !plan.eager {
                    close_windows(c, plan, rule, &self.config, g, None, &mut swept);
                }
                groups.remove(t);
                self.stats.expired_groups += 1;
            }

            let gi = match groups.map.get(self.scratch.key.as_str()) {
                Some(&i) => {
                    groups.touch(i);
                    i
                }
                None => {
                    if groups.len() >= self.config.max_groups_per_rule.max(1) && groups.tail != NIL
                    {
                        let t = groups.tail;
                        groups.remove(t);
                        self.stats.evicted_groups += 1;
                    }
                    let key: Box<str> = self.scratch.key.as_str().into();
                    let values = self.scratch.values[..ngroup].to_vec();
                    let group = Group {
                        key: key.clone(),
                        values,
                        entries: VecDeque::new(),
                        win_start: 0,
                        newest: ts,
                        agg: Agg::new(plan.nslots, plan.kind),
                        prev: NIL,
                        next: NIL,
                        live: true,
                    };
                    let i = match groups.free.pop() {
                        Some(i) => {
                            groups.nodes[i as usize] = group;
                            i
                        }
                        None => {
                            groups.nodes.push(group);
                            (groups.nodes.len() - 1) as u32
                        }
                    };
                    groups.map.insert(key, i);
                    groups.push_front(i);
                    i
                }
            };
            let g = &mut groups.nodes[gi as usize];
            let cap = self.config.max_events_per_group.max(1);
            if plan.eager {
                purge_front(g, retain);
                let (fired, truncated) = eager_insert(plan, g, entry, cap);
                self.stats.truncated_events += truncated;
                if let Some(f) = fired {
                    own = Some(make_hit(
                        c,
                        rule,
                        &g.values,
                        g.entries.range(f.range.clone()),
                        f.value,
                        &self.config,
                    ));
                    consume(plan, g, f.range.end);
                }
            } else {
                close_windows(c, plan, rule, &self.config, g, Some(limit), &mut swept);
                self.stats.truncated_events += close_insert(g, entry, cap);
            }
        }

        // 3. Report and chain.
        for h in swept {
            self.emit(c, h, None, out);
        }
        if let Some(h) = own {
            self.emit(c, h, src.event(), out);
        }
    }

    /// Reports a hit (when its correlation is reported) and feeds it to the correlations that
    /// reference this one. A reported hit precedes the hits it causes downstream.
    fn emit(
        &mut self,
        c: usize,
        hit: CorrelationHit,
        trigger: Option<&dyn EventFields>,
        out: &mut Vec<CorrelationHit>,
    ) {
        self.stats.hits += 1;
        let report = self.rules[c].output || self.config.emit_intermediate;
        if self.corr_listeners[c].is_empty() {
            if report {
                out.push(hit);
            }
            return;
        }
        if report {
            out.push(hit.clone());
        }
        for k in 0..self.corr_listeners[c].len() {
            let (d, slot) = self.corr_listeners[c][k];
            let src = Source::Chained {
                group: &hit.group,
                event: trigger,
            };
            self.feed(
                d,
                slot,
                hit.last_millis,
                src,
                RefsIn::Many(&hit.event_refs),
                out,
            );
        }
    }
}

/// Reads the group-by and condition fields of one input into `scratch.values` (group-by
/// first). False when one is absent. Lists: the first value counts. Null counts as absent.
fn extract(
    scratch: &mut Scratch,
    gspecs: &[FieldSpec],
    vspecs: &[FieldSpec],
    src: Source<'_>,
) -> bool {
    let total = gspecs.len() + vspecs.len();
    if scratch.values.len() < total {
        scratch.values.resize_with(total, String::new);
    }
    scratch.found.clear();
    scratch.found.resize(total, false);
    for v in &mut scratch.values[..total] {
        v.clear();
    }
    let spec = |k: usize| {
        if k < gspecs.len() {
            &gspecs[k]
        } else {
            &vspecs[k - gspecs.len()]
        }
    };
    let mut missing = total;
    if let Source::Chained { group, .. } = src {
        for k in 0..total {
            if let Some(label) = &spec(k).upstream_label
                && let Some((_, v)) = group.iter().find(|(name, _)| name == label)
            {
                scratch.values[k].push_str(v);
                scratch.found[k] = true;
                missing -= 1;
            }
        }
    }
    if missing > 0
        && let Some(event) = src.event()
    {
        let Scratch { values, found, .. } = scratch;
        event.visit_fields(&mut |name, value| {
            if matches!(value, FieldValue::Null) {
                return;
            }
            for k in 0..total {
                if !found[k] && spec(k).event_field == name {
                    found[k] = true;
                    let _ = write!(values[k], "{value}");
                }
            }
        });
        missing = found.iter().filter(|f| !**f).count();
    }
    missing == 0
}

/// Appends one length-prefixed part to a key (no two different value lists share a key).
fn encode_part(out: &mut String, part: &str) {
    let _ = write!(out, "{}:", part.len());
    out.push_str(part);
}

fn decode_parts(mut s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    while let Some(colon) = s.find(':') {
        let Ok(len) = s[..colon].parse::<usize>() else {
            break;
        };
        let rest = &s[colon + 1..];
        let Some(part) = rest.get(..len) else { break };
        parts.push(part);
        s = &rest[len..];
    }
    parts
}

/// Drops entries older than `from` (no longer in reach of any window).
fn purge_front(g: &mut Group, from: i64) {
    while g.entries.front().is_some_and(|e| e.ts < from) {
        if let Some(e) = g.entries.pop_front() {
            if g.win_start > 0 {
                g.win_start -= 1;
            } else {
                g.agg.remove(&e);
            }
        }
    }
}

/// Enforces `max_events_per_group` by forgetting the oldest entries; returns how many.
fn enforce_cap(g: &mut Group, cap: usize, eager: bool) -> u64 {
    let mut n = 0;
    while g.entries.len() > cap {
        if let Some(e) = g.entries.pop_front() {
            if eager {
                if g.win_start > 0 {
                    g.win_start -= 1;
                } else {
                    g.agg.remove(&e);
                }
            }
            n += 1;
        }
    }
    n
}

/// The aggregate of an eager rule over `agg` (which covers `window` of `g.entries`).
fn eager_value(plan: &RulePlan, agg: &Agg, entries: &VecDeque<Entry>, window: Range<usize>) -> f64 {
    match plan.kind {
        CorrelationType::EventCount => agg.count as f64,
        CorrelationType::ValueCount => agg.distinct.len() as f64,
        CorrelationType::Temporal => agg.slots_present as f64,
        CorrelationType::TemporalOrdered => {
            // The ordered prefix cannot be longer than the run of leading rules present.
            let leading = agg.slots.iter().take_while(|c| **c > 0).count();
            if leading == 0 || !plan.condition.holds(leading as f64) {
                return leading as f64;
            }
            ordered_prefix(entries.range(window), plan.nslots) as f64
        }
        CorrelationType::ValueSum => agg.sum,
        // Not eager types.
        CorrelationType::ValueAvg
        | CorrelationType::ValuePercentile
        | CorrelationType::ValueMedian => f64::NAN,
    }
}

/// Length of the longest prefix of the rule order found as a subsequence (greedy).
fn ordered_prefix<'a>(entries: impl Iterator<Item = &'a Entry>, nslots: usize) -> usize {
    let mut need = 0usize;
    for e in entries {
        if need < nslots && e.slot as usize == need {
            need += 1;
        }
    }
    need
}

/// Inserts an entry into an eager group and checks the windows it can complete. Returns the
/// earliest-ending window that satisfies the condition, and the number of entries truncated.
fn eager_insert(plan: &RulePlan, g: &mut Group, e: Entry, cap: usize) -> (Option<Fired>, u64) {
    let t = plan.timespan;
    let ts = e.ts;
    if g.entries.is_empty() || ts >= g.newest {
        // In order: slide the current window to end at `ts`.
        g.newest = ts;
        g.agg.add(&e);
        g.entries.push_back(e);
        let from = ts.saturating_sub(t);
        while g.win_start < g.entries.len() && g.entries[g.win_start].ts < from {
            let old = &g.entries[g.win_start];
            g.agg.remove(old);
            g.win_start += 1;
        }
        let truncated = enforce_cap(g, cap, true);
        let window = g.win_start..g.entries.len();
        let v = eager_value(plan, &g.agg, &g.entries, window.clone());
        let fired = plan.condition.holds(v).then_some(Fired {
            range: window,
            value: v,
        });
        return (fired, truncated);
    }

    // Out of order: insert in place, keep the current window's aggregate right, then check
    // every window [end - t, end] that contains `ts`, i.e. ends in [ts, ts + t].
    let pos = g.entries.partition_point(|x| x.ts <= ts);
    let current_from = g.newest.saturating_sub(t);
    if ts >= current_from {
        g.agg.add(&e);
    } else {
        g.win_start += 1;
    }
    g.entries.insert(pos, e);
    let truncated = enforce_cap(g, cap, true);

    let hi_end = ts.saturating_add(t).min(g.newest);
    let mut agg = Agg::new(plan.nslots, plan.kind);
    let mut i = g.entries.partition_point(|x| x.ts < ts.saturating_sub(t));
    let mut j = i;
    let first_end = g.entries.partition_point(|x| x.ts < ts);
    let last_end = g.entries.partition_point(|x| x.ts <= hi_end);
    for k in first_end..last_end {
        let end = g.entries[k].ts;
        if k + 1 < last_end && g.entries[k + 1].ts == end {
            continue; // evaluate once per distinct end time, with all its entries
        }
        while j <= k {
            agg.add(&g.entries[j]);
            j += 1;
        }
        let from = end.saturating_sub(t);
        while i < j && g.entries[i].ts < from {
            agg.remove(&g.entries[i]);
            i += 1;
        }
        let v = eager_value(plan, &agg, &g.entries, i..j);
        if plan.condition.holds(v) {
            return (
                Some(Fired {
                    range: i..j,
                    value: v,
                }),
                truncated,
            );
        }
    }
    (None, truncated)
}

/// After an eager window fired: its events and everything before them are consumed (the
/// group starts over), and the current window's aggregate is rebuilt from what remains.
fn consume(plan: &RulePlan, g: &mut Group, end: usize) {
    g.entries.drain(..end.min(g.entries.len()));
    g.agg.clear();
    let from = g.newest.saturating_sub(plan.timespan);
    g.win_start = g.entries.partition_point(|x| x.ts < from);
    for e in g.entries.range(g.win_start..) {
        g.agg.add(e);
    }
}

/// Inserts an entry into a close-evaluated group; returns the number truncated.
fn close_insert(g: &mut Group, e: Entry, cap: usize) -> u64 {
    if g.entries.is_empty() || e.ts >= g.newest {
        g.newest = e.ts;
        g.entries.push_back(e);
    } else {
        let pos = g.entries.partition_point(|x| x.ts <= e.ts);
        g.entries.insert(pos, e);
    }
    enforce_cap(g, cap, false)
}

/// Closes the windows of a group that ended before `limit` (all windows when `None`). A window
/// starts at the group's earliest entry and covers `[start, start + timespan]`.
fn close_windows(
    c: usize,
    plan: &RulePlan,
    rule: &ResolvedCorrelation,
    config: &CorrelationConfig,
    g: &mut Group,
    limit: Option<i64>,
    hits: &mut Vec<CorrelationHit>,
) {
    while let Some(front) = g.entries.front() {
        let end = front.ts.saturating_add(plan.timespan);
        if let Some(limit) = limit
            && limit <= end
        {
            break;
        }
        let k = g.entries.partition_point(|x| x.ts <= end);
        evaluate_closed(c, plan, rule, config, g, k, hits);
        g.entries.drain(..k);
    }
}

/// Evaluates the closed window `g.entries[..k]`.
fn evaluate_closed(
    corr: usize,
    plan: &RulePlan,
    rule: &ResolvedCorrelation,
    config: &CorrelationConfig,
    g: &Group,
    k: usize,
    hits: &mut Vec<CorrelationHit>,
) {
    let window = || g.entries.range(..k);
    if plan.share_mode {
        // Share (in %) of each distinct value among the window's events.
        let mut order: Vec<&str> = Vec::new();
        let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
        for e in window() {
            if let EntryValue::Text(t) = &e.value {
                let c = counts.entry(t).or_insert(0);
                if *c == 0 {
                    order.push(t);
                }
                *c += 1;
            }
        }
        for value in order {
            let n = counts.get(value).copied().unwrap_or(0);
            let share = 100.0 * n as f64 / k as f64;
            if !plan.condition.holds(share) {
                continue;
            }
            let matching =
                window().filter(|e| matches!(&e.value, EntryValue::Text(t) if &**t == value));
            let mut hit = make_hit(corr, rule, &g.values, matching, share, config);
            for (name, part) in rule.rule.condition.fields.iter().zip(decode_parts(value)) {
                hit.group.push((name.clone(), part.to_owned()));
            }
            hits.push(hit);
        }
        return;
    }
    let nums = || {
        window().filter_map(|e| match e.value {
            EntryValue::Num(x) => Some(x),
            _ => None,
        })
    };
    let value = match plan.kind {
        CorrelationType::EventCount => k as f64,
        CorrelationType::ValueCount => {
            let set: FxHashSet<&str> = window()
                .filter_map(|e| match &e.value {
                    EntryValue::Text(t) => Some(&**t),
                    _ => None,
                })
                .collect();
            set.len() as f64
        }
        CorrelationType::Temporal => {
            let set: FxHashSet<u32> = window().map(|e| e.slot).collect();
            set.len() as f64
        }
        CorrelationType::TemporalOrdered => ordered_prefix(window(), plan.nslots) as f64,
        CorrelationType::ValueSum => nums().sum(),
        CorrelationType::ValueAvg => nums().sum::<f64>() / k as f64,
        CorrelationType::ValueMedian => percentile(nums().collect(), 50.0),
        CorrelationType::ValuePercentile => {
            percentile(nums().collect(), plan.condition.percentile.unwrap_or(50.0))
        }
    };
    if plan.condition.holds(value) {
        hits.push(make_hit(corr, rule, &g.values, window(), value, config));
    }
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (a, b) = (v[lo.min(v.len() - 1)], v[hi.min(v.len() - 1)]);
    a + (b - a) * (rank - lo as f64)
}

fn make_hit<'a>(
    correlation: usize,
    rule: &ResolvedCorrelation,
    values: &[String],
    entries: impl Iterator<Item = &'a Entry>,
    value: f64,
    config: &CorrelationConfig,
) -> CorrelationHit {
    let mut hit = CorrelationHit {
        correlation,
        group: rule
            .rule
            .group_by
            .iter()
            .cloned()
            .zip(values.iter().cloned())
            .collect(),
        first_millis: i64::MAX,
        last_millis: i64::MIN,
        value,
        event_count: 0,
        event_refs: Vec::new(),
    };
    for e in entries {
        hit.first_millis = hit.first_millis.min(e.ts);
        hit.last_millis = hit.last_millis.max(e.ts);
        hit.event_count += 1;
        for r in e.refs.as_slice() {
            if hit.event_refs.len() < config.max_event_refs {
                hit.event_refs.push(*r);
            }
        }
    }
    hit
}
