//! Per-entity models in the style of Elastic ML jobs: each keeps a small baseline per entity
//! (host, user, host+process ...) and judges new observations against it.
//!
//! Usage is the same for all three: `score(...)` judges an observation against what was seen
//! so far without changing the model; `observe(...)` adds it to the baseline. Online
//! detection scores first, then observes (`process` does both). Nothing reads a clock: time
//! is the caller's unix seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{Baseline, Finding, format_utc};
use crate::stats::{erfc, format_number, median_in_place};

const DAY: i64 = 86_400;

/// Activity record of one entity: when it was seen, how often, on how many days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
struct History {
    first_seen: i64,
    last_seen: i64,
    observations: u64,
    distinct_days: u32,
    last_day: i64,
}

impl History {
    /// Distinct days are counted as time moves forward; an observation from a day before the
    /// latest one counts toward observations but not days (inputs are near-ordered streams).
    fn record(&mut self, time: i64, count: u64) {
        let day = time.div_euclid(DAY);
        if self.distinct_days == 0 {
            *self = Self {
                first_seen: time,
                last_seen: time,
                observations: count,
                distinct_days: 1,
                last_day: day,
            };
            return;
        }
        self.first_seen = self.first_seen.min(time);
        self.last_seen = self.last_seen.max(time);
        self.observations += count;
        if day > self.last_day {
            self.distinct_days += 1;
            self.last_day = day;
        }
    }

    fn is_warm(&self, min_observations: u64, min_days: u32) -> bool {
        self.observations >= min_observations && self.distinct_days >= min_days
    }

    fn baseline(&self) -> Baseline {
        Baseline {
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            observations: self.observations,
            distinct_days: self.distinct_days,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} observations over {} days ({} to {})",
            self.observations,
            self.distinct_days,
            format_utc(self.first_seen),
            format_utc(self.last_seen)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Rare value
// ---------------------------------------------------------------------------------------------

/// Settings of a [`RareValueModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RareValueConfig {
    /// Finding kind, e.g. `rare_process`.
    pub kind: String,
    /// Field naming the entity (`host.name`) and the value (`process.name`), for findings.
    pub entity_field: String,
    pub value_field: String,
    /// Warm-up: the entity alerts only after this many observations on this many days.
    pub min_observations: u64,
    pub min_days: u32,
    /// Alert when the score reaches this.
    pub threshold: f64,
    /// Values seen at most this often for the entity can alert (0: first-seen only).
    pub max_rare_count: u64,
    /// The population share divides by at least this many entities, so that in a small
    /// fleet one other holder does not pass for "common elsewhere".
    pub population_min_entities: u32,
    /// Values held by fewer other entities get no population discount: an attacker's tool
    /// copied to a couple of hosts must stay rare on each of them.
    pub population_min_holders: u32,
    /// Distinct values remembered per entity. Beyond it new values are only counted (as
    /// seen-once values, which keeps the novelty estimate high), so a browser's endless
    /// destinations cannot grow the model without bound.
    pub max_values_per_entity: usize,
}

impl RareValueConfig {
    pub fn new(kind: &str, entity_field: &str, value_field: &str) -> Self {
        Self {
            kind: kind.into(),
            entity_field: entity_field.into(),
            value_field: value_field.into(),
            min_observations: 15,
            min_days: 3,
            threshold: 0.95,
            max_rare_count: 0,
            population_min_entities: 20,
            population_min_holders: 3,
            max_values_per_entity: 10_000,
        }
    }
}

/// What an entity of a [`RareValueModel`] knew just before an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The value was new to the entity.
    pub new: bool,
    /// The entity's observations and distinct values remembered so far.
    pub observations: u64,
    pub distinct: usize,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct EntityValues {
    history: History,
    counts: BTreeMap<String, u64>,
    /// Values seen exactly once (the Good-Turing estimate of how often novelty is normal).
    singletons: u64,
}

/// Rare or never-seen values per entity: a new process on a host, a new parent→child pair,
/// a new source address for a user, a new destination for a process, a new listening port.
///
/// Score of value v for entity e with N observations:
/// - p = max(n1, 1) / (N + 1) for a never-seen value, where n1 counts the entity's values seen
///   exactly once (the Good-Turing estimate of the unseen mass: an entity that keeps meeting
///   new values, like a browser's destinations, makes novelty unremarkable; the floor of 1
///   keeps a single one-off from doubling it); p = (count + 1) / (N + 2) for a seen value;
/// - share = fraction of the other entities that have seen v, dividing by at least
///   `population_min_entities`, and 0 below `population_min_holders` holders (a value common
///   elsewhere, like a fleet-wide update tool, is less suspicious; one an attacker copied to
///   two hosts is not);
/// - score = (1 - p) * (1 - share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RareValueModel {
    config: RareValueConfig,
    entities: BTreeMap<String, EntityValues>,
    /// Per value: how many entities have seen it.
    population: BTreeMap<String, u32>,
}

impl RareValueModel {
    pub fn new(config: RareValueConfig) -> Self {
        Self {
            config,
            entities: BTreeMap::new(),
            population: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &RareValueConfig {
        &self.config
    }

    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Adds one observation of `value` for `entity` at `time`.
    pub fn observe(&mut self, entity: &str, value: &str, time: i64) {
        self.observe_seen(entity, value, time);
    }

    /// [`RareValueModel::observe`], saying what the entity knew just before: whether `value`
    /// was new to it (never seen, or not remembered beyond `max_values_per_entity`), its
    /// observations and distinct values. Allocates only for a new entity or value.
    pub(crate) fn observe_seen(&mut self, entity: &str, value: &str, time: i64) -> Seen {
        let state = match self.entities.get_mut(entity) {
            Some(state) => state,
            None => self.entities.entry(entity.to_string()).or_default(),
        };
        let mut seen = Seen {
            new: true,
            observations: state.history.observations,
            distinct: state.counts.len(),
        };
        state.history.record(time, 1);
        let full = seen.distinct >= self.config.max_values_per_entity;
        let count = match state.counts.get_mut(value) {
            Some(count) => {
                seen.new = *count == 0;
                count
            }
            None if full => {
                state.singletons += 1;
                return seen;
            }
            None => {
                *self.population.entry(value.to_string()).or_insert(0) += 1;
                state.counts.entry(value.to_string()).or_insert(0)
            }
        };
        *count += 1;
        match *count {
            1 => state.singletons += 1,
            // Saturating: a hand-edited model file must not be able to underflow this.
            2 => state.singletons = state.singletons.saturating_sub(1),
            _ => {}
        }
        seen
    }

    /// Scores then observes.
    pub fn process(&mut self, entity: &str, value: &str, time: i64) -> Option<Finding> {
        let finding = self.score(entity, value, time);
        self.observe(entity, value, time);
        finding
    }

    /// A finding when `value` is rare for a warmed-up `entity`; `None` otherwise.
    pub fn score(&self, entity: &str, value: &str, time: i64) -> Option<Finding> {
        let state = self.entities.get(entity)?;
        let history = &state.history;
        if !history.is_warm(self.config.min_observations, self.config.min_days) {
            return None;
        }
        let count = state.counts.get(value).copied().unwrap_or(0);
        if count > self.config.max_rare_count {
            return None;
        }
        let observations = history.observations as f64;
        let probability = if count == 0 {
            state.singletons.max(1) as f64 / (observations + 1.0)
        } else {
            (count as f64 + 1.0) / (observations + 2.0)
        };
        let holders = self.population.get(value).copied().unwrap_or(0);
        let other_holders = holders.saturating_sub(u32::from(count > 0));
        let others = self.entities.len().saturating_sub(1);
        let share = if other_holders < self.config.population_min_holders {
            0.0
        } else {
            f64::from(other_holders)
                / (others.max(self.config.population_min_entities.max(1) as usize)) as f64
        };
        let score = (1.0 - probability) * (1.0 - share);
        if score < self.config.threshold {
            return None;
        }

        let config = &self.config;
        let mut usual: Vec<(&String, &u64)> = state.counts.iter().collect();
        usual.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let usual_names: Vec<&str> = usual.iter().take(5).map(|(v, _)| v.as_str()).collect();
        let expected = format!(
            "one of {} known values (most frequent: {})",
            state.counts.len(),
            usual_names.join(", ")
        );
        let seen = if count == 0 {
            "was never seen before".to_string()
        } else {
            format!("was seen only {count} times")
        };
        let message = format!(
            "{} `{value}` {seen} for {} `{entity}` in {}; {other_holders} of {others} other entities have seen it.",
            config.value_field,
            config.entity_field,
            history.describe()
        );
        let details = BTreeMap::from([
            ("usual".to_string(), usual_names.join(", ")),
            ("value".to_string(), value.to_string()),
            ("value_count".to_string(), count.to_string()),
            ("observations".to_string(), history.observations.to_string()),
            (
                "distinct_values".to_string(),
                state.counts.len().to_string(),
            ),
            ("probability".to_string(), format!("{probability:.6}")),
            ("population_share".to_string(), format!("{share:.4}")),
            (
                "other_entities_with_value".to_string(),
                other_holders.to_string(),
            ),
        ]);
        Some(Finding {
            kind: config.kind.clone(),
            entity_field: config.entity_field.clone(),
            entity: entity.to_string(),
            time,
            score,
            observed: value.to_string(),
            expected,
            baseline: history.baseline(),
            features: vec![config.value_field.clone()],
            message,
            details,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Unusual hour
// ---------------------------------------------------------------------------------------------

/// Hour of the week, 0 = Monday 00:00-00:59 ... 167 = Sunday 23:00-23:59 (after the offset).
pub fn hour_of_week(time: i64, utc_offset_seconds: i64) -> usize {
    let local = time.saturating_add(utc_offset_seconds);
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
    let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
    (weekday * 24 + local.rem_euclid(DAY) / 3600) as usize
}

const WEEK_HOURS: usize = 168;
/// Hour-of-day smoothing by distance in hours (0..=3), a little narrower than a Gaussian with
/// sigma 1.5 h, so
/// a logon an hour or two after the usual ones is unremarkable while 03:00 for a 09:00 user is not.
const DAY_KERNEL: [f64; 4] = [1.0, 0.7, 0.3, 0.05];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Settings of an [`UnusualHourModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnusualHourConfig {
    /// Finding kind, e.g. `unusual_logon_hour`.
    pub kind: String,
    pub entity_field: String,
    /// What is counted, for messages (e.g. `logon`).
    pub activity: String,
    pub min_observations: u64,
    pub min_days: u32,
    /// Alert when score = 1 - min(1, 168 p) reaches this (p: smoothed probability of the
    /// hour of the week; 168 p = 1 is what a round-the-clock entity would have).
    pub threshold: f64,
    /// Weight, in observations, of the uniform prior mixed into the profile.
    pub prior_weight: f64,
    /// Local time of the entity relative to UTC.
    pub utc_offset_seconds: i64,
}

impl UnusualHourConfig {
    pub fn new(kind: &str, entity_field: &str, activity: &str) -> Self {
        Self {
            kind: kind.into(),
            entity_field: entity_field.into(),
            activity: activity.into(),
            min_observations: 15,
            min_days: 5,
            threshold: 0.95,
            prior_weight: 0.5,
            utc_offset_seconds: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct HourProfile {
    history: History,
    /// Counts per hour of the week (168).
    counts: Vec<u32>,
}

/// Activity at an unusual hour of the week for the entity (e.g. a user's logons).
///
/// The hour's probability blends two smoothed histograms half and half: the hour of the week
/// with its neighbouring hours at weight 1/2, and the hour of the day over all weekdays with
/// a kernel of about 1.5 hours (so a Tuesday 09:00 logon is normal for a user seen at 09:00
/// on other days, and 18:00 for one usually seen until 17:00). A uniform prior of
/// `prior_weight` observations keeps probabilities above zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnusualHourModel {
    config: UnusualHourConfig,
    entities: BTreeMap<String, HourProfile>,
}

impl UnusualHourModel {
    pub fn new(config: UnusualHourConfig) -> Self {
        Self {
            config,
            entities: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &UnusualHourConfig {
        &self.config
    }

    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    pub fn observe(&mut self, entity: &str, time: i64) {
        let profile = match self.entities.get_mut(entity) {
            Some(profile) => profile,
            None => self.entities.entry(entity.to_string()).or_default(),
        };
        if profile.counts.len() != WEEK_HOURS {
            profile.counts = vec![0; WEEK_HOURS];
        }
        profile.counts[hour_of_week(time, self.config.utc_offset_seconds)] += 1;
        profile.history.record(time, 1);
    }

    pub fn process(&mut self, entity: &str, time: i64) -> Option<Finding> {
        let finding = self.score(entity, time);
        self.observe(entity, time);
        finding
    }

    /// The entity's earlier observations within an hour of `time`'s hour of the day (over
    /// all weekdays), and all its observations: how usual the hour of the day is.
    pub(crate) fn hour_of_day_counts(&self, entity: &str, time: i64) -> (u64, u64) {
        let Some(profile) = self.entities.get(entity) else {
            return (0, 0);
        };
        if profile.counts.len() != WEEK_HOURS {
            return (0, 0);
        }
        let hour = hour_of_week(time, self.config.utc_offset_seconds) % 24;
        let near = (0..7)
            .flat_map(|day| [23, 0, 1].map(|shift| day * 24 + (hour + shift) % 24))
            .map(|index| u64::from(profile.counts[index]))
            .sum();
        let total = profile.counts.iter().map(|&c| u64::from(c)).sum();
        (near, total)
    }

    /// Smoothed probability of `time`'s hour of the week for `entity` (None when unknown).
    pub fn probability(&self, entity: &str, time: i64) -> Option<f64> {
        let profile = self.entities.get(entity)?;
        Some(self.hour_probability(profile, hour_of_week(time, self.config.utc_offset_seconds)))
    }

    fn hour_probability(&self, profile: &HourProfile, hour: usize) -> f64 {
        let counts = &profile.counts;
        let total = profile.history.observations as f64;
        if counts.len() != WEEK_HOURS || total <= 0.0 {
            return 1.0 / WEEK_HOURS as f64;
        }
        let at = |index: usize| f64::from(counts[index % WEEK_HOURS]);
        let week_kernel = (at(hour) + 0.5 * (at(hour + WEEK_HOURS - 1) + at(hour + 1))) / 2.0;
        let hour_of_day_total = |h: usize| (0..7).map(|day| at(day * 24 + h % 24)).sum::<f64>();
        let h = hour % 24;
        let mut day_kernel = DAY_KERNEL[0] * hour_of_day_total(h);
        for (distance, weight) in DAY_KERNEL.iter().enumerate().skip(1) {
            day_kernel +=
                weight * (hour_of_day_total(h + distance) + hour_of_day_total(h + 24 - distance));
        }
        let day_weights: f64 = DAY_KERNEL[0] + 2.0 * DAY_KERNEL[1..].iter().sum::<f64>();
        // Each histogram sums to 1 over the 168 hours; the day part is spread over 7 days.
        let empirical = 0.5 * week_kernel / total + 0.5 * day_kernel / (day_weights * total * 7.0);
        let prior = self.config.prior_weight.max(0.0);
        (total * empirical + prior / WEEK_HOURS as f64) / (total + prior)
    }

    pub fn score(&self, entity: &str, time: i64) -> Option<Finding> {
        let profile = self.entities.get(entity)?;
        let history = &profile.history;
        if !history.is_warm(self.config.min_observations, self.config.min_days) {
            return None;
        }
        let hour = hour_of_week(time, self.config.utc_offset_seconds);
        let probability = self.hour_probability(profile, hour);
        let score = 1.0 - (probability * WEEK_HOURS as f64).min(1.0);
        if score < self.config.threshold {
            return None;
        }
        let config = &self.config;
        let observed = format!("{} {:02}:00", WEEKDAYS[hour / 24], hour % 24);
        let expected = usual_hours(&profile.counts, history.observations);
        let in_hour = profile.counts.get(hour).copied().unwrap_or(0);
        let message = format!(
            "{} `{entity}`: {} at {observed} (UTC{:+}h), an hour of the week with probability {:.4}; {in_hour} earlier {}s in this hour out of {}. Usual: {expected}.",
            config.entity_field,
            config.activity,
            config.utc_offset_seconds / 3600,
            probability,
            config.activity,
            history.describe()
        );
        let (usual_hours_of_day, weekday_percent) =
            usual_hour_parts(&profile.counts, history.observations).unwrap_or_default();
        let details = BTreeMap::from([
            ("usual_hours".to_string(), usual_hours_of_day),
            ("weekday_percent".to_string(), weekday_percent.to_string()),
            ("weekday".to_string(), WEEKDAYS[hour / 24].to_string()),
            ("hour".to_string(), (hour % 24).to_string()),
            ("hour_of_week".to_string(), hour.to_string()),
            ("probability".to_string(), format!("{probability:.6}")),
            ("count_in_hour".to_string(), in_hour.to_string()),
            ("observations".to_string(), history.observations.to_string()),
        ]);
        Some(Finding {
            kind: config.kind.clone(),
            entity_field: config.entity_field.clone(),
            entity: entity.to_string(),
            time,
            score,
            observed,
            expected,
            baseline: history.baseline(),
            features: vec!["hour_of_week".to_string()],
            message,
            details,
        })
    }
}

/// "hours 08-17, 92% on weekdays": the hours of the day holding at least 2% of the activity.
/// The hours of the day holding at least 2% of the observations (`"09,10,11"`) and the
/// weekday share in percent; `None` without history.
fn usual_hour_parts(counts: &[u32], total: u64) -> Option<(String, u64)> {
    if counts.len() != WEEK_HOURS || total == 0 {
        return None;
    }
    let by_hour: Vec<u64> = (0..24)
        .map(|h| (0..7).map(|d| u64::from(counts[d * 24 + h])).sum())
        .collect();
    let busy: Vec<String> = (0..24)
        .filter(|&h| by_hour[h] * 50 >= total)
        .map(|h| format!("{h:02}"))
        .collect();
    let weekday: u64 = counts[..5 * 24].iter().map(|&c| u64::from(c)).sum();
    Some((busy.join(","), weekday * 100 / total))
}

fn usual_hours(counts: &[u32], total: u64) -> String {
    match usual_hour_parts(counts, total) {
        None => "no history".into(),
        Some((busy, weekday)) => format!("hours {busy} ({weekday}% on weekdays)"),
    }
}

// ---------------------------------------------------------------------------------------------
// Count burst
// ---------------------------------------------------------------------------------------------

/// Settings of a [`CountBurstModel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountBurstConfig {
    /// Finding kind, e.g. `failed_logon_burst`.
    pub kind: String,
    pub entity_field: String,
    /// What is counted, for messages and `features` (e.g. `failed logons`).
    pub count_name: String,
    pub bucket_seconds: i64,
    /// Days of buckets kept as the baseline.
    pub history_days: u32,
    /// Warm-up: days with reports before the entity can alert.
    pub min_days: u32,
    /// Alert when P(count or more | baseline) is at most this ...
    pub max_tail_probability: f64,
    /// ... and the count is at least this ...
    pub min_count: u64,
    /// ... and at least this multiple of the expected count.
    pub min_ratio: f64,
    /// Floor of the expected count (sparse counters have a zero median).
    pub min_expected: f64,
}

impl CountBurstConfig {
    pub fn new(kind: &str, entity_field: &str, count_name: &str) -> Self {
        Self {
            kind: kind.into(),
            entity_field: entity_field.into(),
            count_name: count_name.into(),
            bucket_seconds: 3600,
            history_days: 14,
            min_days: 3,
            max_tail_probability: 1e-4,
            min_count: 10,
            min_ratio: 3.0,
            min_expected: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct CountSeries {
    history: History,
    /// Non-zero counts per bucket index; buckets between the first reported one and now that
    /// are missing count as zero.
    buckets: BTreeMap<i64, u64>,
    first_bucket: i64,
}

/// Counts per entity per time bucket (failed logons per host per hour, events per host per
/// hour) against a robust baseline.
///
/// Baseline of bucket b: the same bucket of the day over the last `history_days` days
/// (seasonal, so office hours and nights have their own level). Expected count
/// m = max(median of those, mean of all buckets in the window, `min_expected`) — the mean
/// keeps quiet hours from expecting zero; variance v = m + (1.4826 MAD)^2. The tail
/// probability P(X >= count) comes from a negative binomial with that mean and variance
/// (Poisson when v = m; a normal approximation for large means). Score = 1 - tail.
///
/// Report every bucket the entity was monitored in, zeros included (`observe_bucket(e, t,
/// 0)`), or at least one per day: warm-up counts days with reports, and a burst on an entity
/// the model has never heard of cannot be judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountBurstModel {
    config: CountBurstConfig,
    entities: BTreeMap<String, CountSeries>,
}

impl CountBurstModel {
    pub fn new(config: CountBurstConfig) -> Self {
        Self {
            config,
            entities: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &CountBurstConfig {
        &self.config
    }

    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    fn bucket_seconds(&self) -> i64 {
        self.config.bucket_seconds.max(1)
    }

    fn buckets_per_day(&self) -> i64 {
        let seconds = self.bucket_seconds();
        if seconds <= DAY && DAY.rem_euclid(seconds) == 0 {
            DAY / seconds
        } else {
            1 // no daily season for odd bucket lengths: compare against every bucket
        }
    }

    fn window_buckets(&self) -> i64 {
        (i64::from(self.config.history_days.max(1)) * DAY / self.bucket_seconds()).max(1)
    }

    /// Adds `count` to the bucket holding `time` (0 records that the entity was monitored).
    pub fn observe_bucket(&mut self, entity: &str, time: i64, count: u64) {
        let bucket = time.div_euclid(self.bucket_seconds());
        let keep_from = bucket
            .saturating_sub(self.window_buckets())
            .saturating_sub(self.buckets_per_day());
        let series = match self.entities.get_mut(entity) {
            Some(series) => series,
            None => {
                let series = self.entities.entry(entity.to_string()).or_default();
                series.first_bucket = bucket;
                series
            }
        };
        series.first_bucket = series.first_bucket.min(bucket);
        if count > 0 {
            *series.buckets.entry(bucket).or_insert(0) += count;
        }
        series.history.record(time, count);
        // Drop buckets that fell out of the window (memory stays bounded per entity).
        while let Some((&oldest, _)) = series.buckets.first_key_value() {
            if oldest >= keep_from {
                break;
            }
            series.buckets.pop_first();
        }
    }

    /// One event at `time`.
    pub fn observe(&mut self, entity: &str, time: i64) {
        self.observe_bucket(entity, time, 1);
    }

    /// Scores then observes a whole bucket.
    pub fn process_bucket(&mut self, entity: &str, time: i64, count: u64) -> Option<Finding> {
        let finding = self.score_bucket(entity, time, count);
        self.observe_bucket(entity, time, count);
        finding
    }

    /// Counts of the same bucket of the day on the earlier days of the window (missing
    /// buckets since the entity's first report count as zero).
    fn same_slot(&self, series: &CountSeries, bucket: i64) -> Vec<f64> {
        let per_day = self.buckets_per_day();
        let window = self.window_buckets();
        let count_at = |b: i64| series.buckets.get(&b).copied().unwrap_or(0) as f64;
        (1..=window / per_day)
            .map(|k| bucket.saturating_sub(k.saturating_mul(per_day)))
            .filter(|&b| b >= series.first_bucket)
            .map(count_at)
            .collect()
    }

    /// Median count of `time`'s bucket of the day over the earlier days of the window;
    /// `None` for an unknown entity or before its second day.
    pub(crate) fn usual_count(&self, entity: &str, time: i64) -> Option<f64> {
        let series = self.entities.get(entity)?;
        let mut same_slot = self.same_slot(series, time.div_euclid(self.bucket_seconds()));
        (!same_slot.is_empty()).then(|| median_in_place(&mut same_slot))
    }

    /// Expected count and variance for the bucket holding `time`, from earlier buckets only.
    fn expectation(&self, series: &CountSeries, bucket: i64) -> Option<(f64, f64, usize)> {
        let window = self.window_buckets();
        let mut same_slot = self.same_slot(series, bucket);
        if same_slot.is_empty() {
            return None;
        }
        let start = series.first_bucket.max(bucket.saturating_sub(window));
        let span = (bucket - start).max(1) as f64;
        let window_sum: f64 = series
            .buckets
            .range(start..bucket)
            .map(|(_, &c)| c as f64)
            .sum();
        let window_mean = window_sum / span;
        let slots = same_slot.len();
        let median = median_in_place(&mut same_slot);
        let mut deviations: Vec<f64> = same_slot.iter().map(|c| (c - median).abs()).collect();
        let mad = median_in_place(&mut deviations);
        let mean = median.max(window_mean).max(self.config.min_expected);
        let variance = mean + (1.4826 * mad).powi(2);
        Some((mean, variance, slots))
    }

    pub fn score_bucket(&self, entity: &str, time: i64, count: u64) -> Option<Finding> {
        let series = self.entities.get(entity)?;
        let config = &self.config;
        if series.history.distinct_days < config.min_days || count < config.min_count {
            return None;
        }
        let bucket = time.div_euclid(self.bucket_seconds());
        let (expected, variance, slots) = self.expectation(series, bucket)?;
        if (count as f64) < config.min_ratio * expected {
            return None;
        }
        let tail = upper_tail(count, expected, variance);
        if tail > config.max_tail_probability {
            return None;
        }
        let bucket_start = bucket * self.bucket_seconds();
        let expected_text = format_number((expected * 10.0).round() / 10.0);
        let message = format!(
            "{} for {} `{entity}` in the {} s from {}: {count}, expected about {expected_text} (same time of day over the last {slots} days); chance of {count} or more: {tail:.1e}.",
            config.count_name,
            config.entity_field,
            self.bucket_seconds(),
            format_utc(bucket_start)
        );
        let details = BTreeMap::from([
            ("count".to_string(), count.to_string()),
            ("expected".to_string(), format!("{expected:.3}")),
            ("std_dev".to_string(), format!("{:.3}", variance.sqrt())),
            ("tail_probability".to_string(), format!("{tail:.3e}")),
            ("bucket_start".to_string(), bucket_start.to_string()),
            (
                "bucket_seconds".to_string(),
                self.bucket_seconds().to_string(),
            ),
            ("baseline_buckets".to_string(), slots.to_string()),
        ]);
        Some(Finding {
            kind: config.kind.clone(),
            entity_field: config.entity_field.clone(),
            entity: entity.to_string(),
            time: bucket_start,
            score: 1.0 - tail,
            observed: count.to_string(),
            expected: expected_text,
            baseline: series.history.baseline(),
            features: vec![config.count_name.clone()],
            message,
            details,
        })
    }
}

/// P(X >= count) for a count with the given mean and variance (negative binomial when
/// overdispersed, Poisson otherwise, normal approximation beyond what summing terms handles).
fn upper_tail(count: u64, mean: f64, variance: f64) -> f64 {
    if count == 0 {
        return 1.0;
    }
    if mean > 500.0 {
        // Continuity-corrected normal tail; pmf terms would underflow at the start.
        let z = (count as f64 - 0.5 - mean) / variance.max(mean).sqrt();
        return 0.5 * erfc(z / std::f64::consts::SQRT_2);
    }
    let poisson = variance <= mean * (1.0 + 1e-9);
    // pmf(0) and the ratio pmf(k+1)/pmf(k).
    let (mut term, size, success) = if poisson {
        ((-mean).exp(), 0.0, 0.0)
    } else {
        let size = mean * mean / (variance - mean);
        let success = mean / (size + mean);
        ((size * (-success).ln_1p()).exp(), size, success)
    };
    let mut below = 0.0;
    for k in 0..count {
        below += term;
        if below >= 1.0 - 1e-15 {
            return 0.0; // the tail is below what f64 resolves here
        }
        let k = k as f64;
        term *= if poisson {
            mean / (k + 1.0)
        } else {
            (k + size) / (k + 1.0) * success
        };
    }
    (1.0 - below).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_closed_form() {
        // P(X >= 1 | 2) = 1 - e^-2; P(X >= 3 | 0.5) = 1 - e^-0.5 (1 + 0.5 + 0.125).
        assert!((upper_tail(1, 2.0, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        let expected = 1.0 - (-0.5f64).exp() * 1.625;
        assert!((upper_tail(3, 0.5, 0.5) - expected).abs() < 1e-12);
    }

    #[test]
    fn overdispersion_fattens_the_tail() {
        assert!(upper_tail(20, 5.0, 25.0) > 100.0 * upper_tail(20, 5.0, 5.0));
    }

    #[test]
    fn hour_of_week_starts_monday() {
        // 2026-01-05 is a Monday.
        assert_eq!(hour_of_week(1_767_571_200, 0), 0);
        assert_eq!(hour_of_week(1_767_571_200 + 6 * DAY + 23 * 3600, 0), 167);
        assert_eq!(hour_of_week(1_767_571_200, 3 * 3600), 3);
    }
}
