//! Per-entity models: they fire on the anomaly, stay quiet on the routine and in warm-up.

use dozor_anomaly::{
    CountBurstConfig, CountBurstModel, RareValueConfig, RareValueModel, SplitMix64,
    UnusualHourConfig, UnusualHourModel,
};

/// Monday 2026-01-05 00:00 UTC.
const MONDAY: i64 = 1_767_571_200;
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

fn rare_process_model() -> RareValueModel {
    RareValueModel::new(RareValueConfig::new(
        "rare_process",
        "host.name",
        "process.name",
    ))
}

/// `days` days of a host starting the same four processes at 10:00-10:03.
fn routine(model: &mut RareValueModel, host: &str, days: i64) {
    for day in 0..days {
        for (minute, process) in ["svchost.exe", "chrome.exe", "outlook.exe", "cmd.exe"]
            .iter()
            .enumerate()
        {
            model.observe(
                host,
                process,
                MONDAY + day * DAY + 10 * HOUR + minute as i64 * 60,
            );
        }
    }
}

#[test]
fn rare_value_fires_on_a_new_value_after_warm_up_only() {
    let mut model = rare_process_model();
    routine(&mut model, "ws-1", 2);
    let during_warm_up = MONDAY + 2 * DAY + 12 * HOUR;
    // 8 observations on 2 days: below both warm-up limits.
    assert!(
        model
            .score("ws-1", "mimikatz.exe", during_warm_up)
            .is_none()
    );

    routine(&mut model, "ws-1", 6);
    let time = MONDAY + 6 * DAY + 12 * HOUR;
    let finding = model
        .score("ws-1", "mimikatz.exe", time)
        .expect("a never-seen process on a warmed-up host");
    assert_eq!(finding.kind, "rare_process");
    assert_eq!(finding.entity, "ws-1");
    assert_eq!(finding.observed, "mimikatz.exe");
    assert_eq!(finding.features, vec!["process.name".to_string()]);
    assert!(
        finding.score >= 0.95 && finding.score <= 1.0,
        "{}",
        finding.score
    );
    assert_eq!(finding.baseline.observations, 32);
    assert_eq!(finding.baseline.first_seen, MONDAY + 10 * HOUR);
    assert_eq!(finding.baseline.distinct_days, 6);
    assert_eq!(finding.details["value_count"], "0");
    assert!(
        finding.message.contains("was never seen before"),
        "{}",
        finding.message
    );
    assert!(
        finding.expected.contains("svchost.exe"),
        "{}",
        finding.expected
    );
    // Known values are not rare; scoring does not learn, `process` does.
    assert!(model.score("ws-1", "chrome.exe", time).is_none());
    assert!(model.process("ws-1", "mimikatz.exe", time).is_some());
    assert!(model.score("ws-1", "mimikatz.exe", time + 60).is_none());
    // Unknown entities are in warm-up by definition.
    assert!(model.score("ws-unknown", "mimikatz.exe", time).is_none());
}

#[test]
fn rare_value_discounts_fleet_wide_values_and_novelty_prone_entities() {
    let mut model = rare_process_model();
    for host in 0..10 {
        routine(&mut model, &format!("ws-{host}"), 6);
    }
    let time = MONDAY + 6 * DAY + 12 * HOUR;
    // An updater most other hosts already ran is not suspicious on the last one.
    for host in 1..10 {
        model.observe(&format!("ws-{host}"), "MpCmdRun.exe", time - HOUR);
    }
    assert!(model.score("ws-0", "MpCmdRun.exe", time).is_none());
    assert!(model.score("ws-0", "rclone.exe", time).is_some());

    // A browser's destinations: new values all the time, so a new one is unremarkable.
    let mut destinations = RareValueModel::new(RareValueConfig::new(
        "new_destination",
        "host.name|process.name",
        "destination.ip",
    ));
    for index in 0..200 {
        let address = format!("151.101.{}.{}", index / 100, index % 100);
        destinations.observe("ws-0|chrome.exe", &address, MONDAY + index * 3000);
        destinations.observe("ws-0|outlook.exe", "10.0.0.20", MONDAY + index * 3000);
    }
    let time = MONDAY + 8 * DAY;
    assert!(
        destinations
            .score("ws-0|chrome.exe", "198.51.100.7", time)
            .is_none()
    );
    assert!(
        destinations
            .score("ws-0|outlook.exe", "198.51.100.7", time)
            .is_some()
    );
}

#[test]
fn rare_value_memory_is_bounded_per_entity() {
    let mut config = RareValueConfig::new(
        "new_destination",
        "host.name|process.name",
        "destination.ip",
    );
    config.max_values_per_entity = 50;
    let mut model = RareValueModel::new(config);
    for index in 0..5000 {
        model.observe(
            "ws-0|chrome.exe",
            &format!("198.18.{}.{}", index / 250, index % 250),
            MONDAY + index * 60,
        );
    }
    let bytes = serde_json::to_vec(&model).unwrap();
    assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
    // Novelty stays unremarkable for this entity.
    assert!(
        model
            .score("ws-0|chrome.exe", "203.0.113.9", MONDAY + 10 * DAY)
            .is_none()
    );
}

/// Logons on weekdays at 08-16, three a day, for `weeks` weeks.
fn office_logons(model: &mut UnusualHourModel, user: &str, days: i64) {
    let mut rng = SplitMix64::new(11);
    for day in 0..days {
        if day % 7 >= 5 {
            continue;
        }
        for _ in 0..3 {
            let hour = 8 + rng.below(9) as i64;
            model.observe(
                user,
                MONDAY + day * DAY + hour * HOUR + rng.below(3600) as i64,
            );
        }
    }
}

#[test]
fn unusual_hour_fires_at_night_not_in_office_hours_nor_in_warm_up() {
    let mut model = UnusualHourModel::new(UnusualHourConfig::new(
        "unusual_logon_hour",
        "user.name",
        "logon",
    ));
    office_logons(&mut model, "alice", 2);
    // Two days, 6 logons: warm-up.
    assert!(model.score("alice", MONDAY + 2 * DAY + 3 * HOUR).is_none());

    office_logons(&mut model, "alice", 14);
    let night = MONDAY + 15 * DAY + 3 * HOUR; // Tuesday 03:00
    let finding = model
        .score("alice", night)
        .expect("a 03:00 logon for an office-hours user");
    assert_eq!(finding.kind, "unusual_logon_hour");
    assert_eq!(finding.observed, "Tue 03:00");
    assert_eq!(finding.details["hour"], "3");
    assert!(finding.score >= 0.95);
    assert!(
        finding.expected.contains("hours 08"),
        "{}",
        finding.expected
    );
    // Office hours on any weekday, and the hour right after, are normal.
    assert!(
        model
            .score("alice", MONDAY + 15 * DAY + 10 * HOUR)
            .is_none()
    );
    assert!(
        model
            .score("alice", MONDAY + 17 * DAY + 17 * HOUR)
            .is_none()
    );
    let day_time = model
        .probability("alice", MONDAY + 15 * DAY + 10 * HOUR)
        .unwrap();
    let night_time = model.probability("alice", night).unwrap();
    assert!(day_time > 100.0 * night_time, "{day_time} vs {night_time}");
}

#[test]
fn unusual_hour_respects_the_entity_offset() {
    let mut config = UnusualHourConfig::new("unusual_logon_hour", "user.name", "logon");
    config.utc_offset_seconds = 3 * HOUR; // Moscow
    let mut model = UnusualHourModel::new(config);
    // Logons at 06-08 UTC are 09-11 local.
    for day in 0..12 {
        if day % 7 < 5 {
            for hour in 6..9 {
                model.observe("ivan", MONDAY + day * DAY + hour * HOUR);
            }
        }
    }
    let finding = model
        .score("ivan", MONDAY + 14 * DAY + 23 * HOUR)
        .expect("02:00 local");
    assert_eq!(finding.observed, "Tue 02:00");
}

fn failed_model() -> CountBurstModel {
    CountBurstModel::new(CountBurstConfig::new(
        "failed_logon_burst",
        "host.name",
        "failed logons",
    ))
}

/// Hourly failed-logon counts: zero most hours, a typo now and then.
fn quiet_failures(model: &mut CountBurstModel, host: &str, days: i64) {
    let mut rng = SplitMix64::new(3);
    for hour in 0..days * 24 {
        let count = u64::from(rng.chance(0.05));
        model.observe_bucket(host, MONDAY + hour * HOUR, count);
    }
}

#[test]
fn count_burst_fires_on_a_burst_not_on_typos_nor_in_warm_up() {
    let mut model = failed_model();
    quiet_failures(&mut model, "ws-1", 2);
    let burst_time = MONDAY + 2 * DAY + 10 * HOUR;
    assert!(
        model.score_bucket("ws-1", burst_time, 80).is_none(),
        "warm-up"
    );

    let mut model = failed_model();
    quiet_failures(&mut model, "ws-1", 7);
    let time = MONDAY + 7 * DAY + 10 * HOUR + 1234;
    let finding = model
        .score_bucket("ws-1", time, 80)
        .expect("80 failed logons in an hour");
    assert_eq!(finding.kind, "failed_logon_burst");
    assert_eq!(finding.time, MONDAY + 7 * DAY + 10 * HOUR, "bucket start");
    assert_eq!(finding.observed, "80");
    assert!(finding.score > 0.9999);
    assert_eq!(finding.features, vec!["failed logons".to_string()]);
    assert!(
        finding.message.contains("expected about"),
        "{}",
        finding.message
    );
    // A couple of typos stay below min_count and the tail threshold.
    assert!(model.score_bucket("ws-1", time, 3).is_none());
    assert!(model.score_bucket("ws-1", time, 9).is_none());
}

#[test]
fn count_burst_follows_the_daily_rhythm() {
    let mut volume = CountBurstConfig::new("volume_spike", "host.name", "events");
    volume.min_count = 50;
    let mut model = CountBurstModel::new(volume);
    let mut rng = SplitMix64::new(5);
    for hour in 0..10 * 24 {
        let office = (8..18).contains(&(hour % 24));
        let count = rng.poisson(if office { 200.0 } else { 10.0 });
        model.observe_bucket("srv-1", MONDAY + hour * HOUR, u64::from(count));
    }
    let day = MONDAY + 10 * DAY;
    // A busy office hour is normal; five times a busy hour is not.
    assert!(model.score_bucket("srv-1", day + 11 * HOUR, 240).is_none());
    assert!(model.score_bucket("srv-1", day + 11 * HOUR, 1000).is_some());
}
