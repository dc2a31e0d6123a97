//! When a play runs by itself (Dozor's extension to the Ansible shape): on alerts that match
//! a filter, on request, on a schedule.

use std::fmt;
use std::time::Duration;

use dozor_model::{Alert, AlertChange, AlertStatus, Level};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A play's trigger.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Run on alerts that match.
    #[serde(default)]
    pub alert: Option<AlertTrigger>,
    /// May be run by hand on an alert or an agent (dashboard, CLI, API).
    #[serde(default)]
    pub manual: bool,
    /// Run on a schedule.
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

/// Which alerts start the play. Every given field must match; a list matches when any of
/// its entries does. Texts may hold `*` wildcards.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTrigger {
    /// Alert changes that count (default: `created`).
    #[serde(default = "created_only", deserialize_with = "one_or_many")]
    pub on: Vec<AlertChange>,
    /// Rule ids.
    #[serde(default, deserialize_with = "one_or_many")]
    pub rule_id: Vec<String>,
    /// Rule tags: the alert must carry one of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// The lowest level (`high` matches high and critical).
    #[serde(default)]
    pub level: Option<Level>,
    /// Agent ids.
    #[serde(default, deserialize_with = "one_or_many")]
    pub agent: Vec<String>,
    /// Host names (case-insensitive).
    #[serde(default, deserialize_with = "one_or_many")]
    pub host: Vec<String>,
    /// Alert statuses.
    #[serde(default, deserialize_with = "one_or_many")]
    pub status: Vec<AlertStatus>,
}

fn created_only() -> Vec<AlertChange> {
    vec![AlertChange::Created]
}

fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::<T>::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

impl AlertTrigger {
    /// Whether this alert change starts the play. `host` is the alert's agent's host name.
    pub fn matches(&self, change: AlertChange, alert: &Alert, host: Option<&str>) -> bool {
        let any = |patterns: &[String], value: Option<&str>| {
            patterns.is_empty() || value.is_some_and(|v| patterns.iter().any(|p| glob_match(p, v)))
        };
        self.on.contains(&change)
            && any(&self.rule_id, Some(&alert.rule_id))
            && (self.tags.is_empty() || alert.tags.iter().any(|tag| any(&self.tags, Some(tag))))
            && self.level.is_none_or(|lowest| alert.level >= lowest)
            && any(&self.agent, alert.agent_id.as_deref())
            && (self.host.is_empty()
                || host.is_some_and(|h| {
                    let h = h.to_ascii_lowercase();
                    self.host
                        .iter()
                        .any(|p| glob_match(&p.to_ascii_lowercase(), &h))
                }))
            && (self.status.is_empty() || self.status.contains(&alert.status))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A schedule: a fixed interval (`every 15m`, `30s`, `2h`, `1d`) or a five-field cron
/// expression (`*/5 * * * *`, `@hourly`, `@daily`), minutes and hours in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every so often.
    Every(Duration),
    /// Cron fields.
    Cron(Cron),
}

impl Schedule {
    /// Parses a schedule string.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "@hourly" => return Cron::parse("0 * * * *").map(Schedule::Cron),
            "@daily" | "@midnight" => return Cron::parse("0 0 * * *").map(Schedule::Cron),
            "@weekly" => return Cron::parse("0 0 * * 0").map(Schedule::Cron),
            _ => {}
        }
        let interval = text
            .strip_prefix("@every ")
            .or_else(|| text.strip_prefix("every "))
            .unwrap_or(text)
            .trim();
        if text.split_whitespace().count() == 5 {
            return Cron::parse(text).map(Schedule::Cron);
        }
        parse_interval(interval).map(Schedule::Every).ok_or_else(|| {
            format!(
                "invalid schedule `{text}`: expected an interval (`every 15m`, `30s`, `2h`, `1d`) or five cron fields (`*/5 * * * *`)"
            )
        })
    }
}

fn parse_interval(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "seconds" => n,
        "m" | "min" | "mins" | "minutes" => n.checked_mul(60)?,
        "h" | "hour" | "hours" => n.checked_mul(3600)?,
        "d" | "day" | "days" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScheduleVisitor;
        impl Visitor<'_> for ScheduleVisitor {
            type Value = Schedule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a schedule string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Schedule, E> {
                Schedule::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ScheduleVisitor)
    }
}

/// Five cron fields as sets: minute, hour, day of month, month, day of week (0 = Sunday).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
}

impl Cron {
    /// Parses `min hour dom month dow`; each field `*`, `n`, `a-b`, `*/s`, `a-b/s` or a
    /// comma list of those.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("invalid cron `{text}`: expected five fields"));
        };
        let field = |spec: &str, min: u32, max: u32, what: &str| {
            cron_field(spec, min, max).ok_or_else(|| {
                format!("invalid cron `{text}`: bad {what} field `{spec}` ({min}-{max})")
            })
        };
        let mut weekdays = field(weekday, 0, 7, "day-of-week")?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day-of-month")?,
            months: field(month, 1, 12, "month")?,
            weekdays: weekdays & 0x7f,
        })
    }

    /// Whether the schedule fires at this minute (UTC fields; `weekday` 0 = Sunday).
    pub fn matches(&self, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let has = |set: u64, v: u32| v < 64 && set & (1 << v) != 0;
        has(self.minutes, minute)
            && has(self.hours, hour)
            && has(self.days, day)
            && has(self.months, month)
            && has(self.weekdays, weekday % 7)
    }
}

fn cron_field(spec: &str, min: u32, max: u32) -> Option<u64> {
    let mut set = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().ok()?, b.parse().ok()?)
        } else {
            let n: u32 = range.parse().ok()?;
            (n, if part.contains('/') { max } else { n })
        };
        if from < min || to > max || from > to {
            return None;
        }
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v += step;
        }
    }
    Some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_prefixes_suffixes_and_middles() {
        assert!(glob_match("proc-*", "proc-creation"));
        assert!(glob_match("*-whoami", "proc-creation-whoami"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*c", "ab"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn schedules_parse_intervals_and_cron() {
        assert_eq!(
            Schedule::parse("every 15m"),
            Ok(Schedule::Every(Duration::from_secs(900)))
        );
        assert_eq!(
            Schedule::parse("@every 2h"),
            Ok(Schedule::Every(Duration::from_secs(7200)))
        );
        assert!(Schedule::parse("0s").is_err());
        assert!(Schedule::parse("soon").is_err());
        let Ok(Schedule::Cron(cron)) = Schedule::parse("*/15 8-17 * * 1-5") else {
            panic!("cron");
        };
        assert!(cron.matches(30, 9, 12, 6, 3));
        assert!(!cron.matches(31, 9, 12, 6, 3));
        assert!(!cron.matches(30, 18, 12, 6, 3));
        assert!(!cron.matches(30, 9, 12, 6, 0));
        let Ok(Schedule::Cron(sunday)) = Schedule::parse("0 0 * * 7") else {
            panic!("cron");
        };
        assert!(sunday.matches(0, 0, 1, 1, 0));
        assert!(Schedule::parse("* * * *").is_err());
        assert!(Schedule::parse("0 24 * * *").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
    }
}
