//! Versioned model files: round trip, unknown versions, corrupt input.

use dozor_anomaly::{
    AnomalyError, CountBurstConfig, CountBurstModel, FORMAT_VERSION, ForestParams, IsolationForest,
    MAGIC, Model, ModelFile, RareValueConfig, RareValueModel, SplitMix64, UnusualHourConfig,
    UnusualHourModel,
};

const MONDAY: i64 = 1_767_571_200;

fn sample_file() -> (ModelFile, Vec<Vec<f64>>) {
    let mut rng = SplitMix64::new(1);
    let rows: Vec<Vec<f64>> = (0..1000)
        .map(|_| vec![rng.normal(), 3.0 * rng.normal(), 7.0])
        .collect();
    let params = ForestParams {
        n_trees: 20,
        ..ForestParams::default()
    };
    let forest = IsolationForest::fit_named(&rows, &["a", "b", "constant"], &params).unwrap();

    let mut rare = RareValueModel::new(RareValueConfig::new(
        "rare_process",
        "host.name",
        "process.name",
    ));
    let mut hours = UnusualHourModel::new(UnusualHourConfig::new(
        "unusual_logon_hour",
        "user.name",
        "logon",
    ));
    let mut counts = CountBurstModel::new(CountBurstConfig::new(
        "failed_logon_burst",
        "host.name",
        "failed logons",
    ));
    for step in 0..500 {
        let time = MONDAY + step * 1800;
        rare.observe("ws-1", ["a.exe", "b.exe", "c.exe"][step as usize % 3], time);
        if (8..17).contains(&(step / 2 % 24)) && step / 48 % 7 < 5 {
            hours.observe("alice", time);
        }
        counts.observe_bucket("ws-1", time, (step % 5 == 0) as u64);
    }
    let mut file = ModelFile::new();
    file.push("forest", Model::IsolationForest(forest));
    file.push("rare_process", Model::RareValue(rare));
    file.push("logon_hour", Model::UnusualHour(hours));
    file.push("failed_logons", Model::CountBurst(counts));
    (file, rows)
}

#[test]
fn round_trip_keeps_every_model_and_every_score() {
    let (file, rows) = sample_file();
    let bytes = file.to_bytes().unwrap();
    assert_eq!(&bytes[..8], MAGIC);
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()),
        FORMAT_VERSION
    );
    let loaded = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(loaded, file);

    let (Some(Model::IsolationForest(before)), Some(Model::IsolationForest(after))) =
        (file.get("forest"), loaded.get("forest"))
    else {
        panic!("forest missing");
    };
    assert_eq!(
        before.score_many(&rows).unwrap(),
        after.score_many(&rows).unwrap()
    );
    assert_eq!(
        before.attribution(&[4.0, 0.0, 7.0]).unwrap(),
        after.attribution(&[4.0, 0.0, 7.0]).unwrap()
    );

    let (Some(Model::RareValue(before)), Some(Model::RareValue(after))) =
        (file.get("rare_process"), loaded.get("rare_process"))
    else {
        panic!("rare model missing");
    };
    let time = MONDAY + 20 * 86_400;
    assert!(after.score("ws-1", "evil.exe", time).is_some());
    assert_eq!(
        before.score("ws-1", "evil.exe", time),
        after.score("ws-1", "evil.exe", time)
    );

    // Writer and reader forms agree with the byte forms.
    let mut written = Vec::new();
    file.write_to(&mut written).unwrap();
    assert_eq!(written, bytes);
    assert_eq!(
        ModelFile::read_from(std::io::Cursor::new(written)).unwrap(),
        file
    );
}

#[test]
fn newer_versions_and_foreign_bytes_are_refused_clearly() {
    let (file, _) = sample_file();
    let mut bytes = file.to_bytes().unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let error = ModelFile::from_bytes(&bytes).unwrap_err();
    assert_eq!(
        error,
        AnomalyError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    assert!(
        error.to_string().contains("version 2 is not supported"),
        "{error}"
    );

    assert_eq!(
        ModelFile::from_bytes(b"{\"models\":[]}").unwrap_err(),
        AnomalyError::BadMagic
    );
    assert_eq!(
        ModelFile::from_bytes(b"").unwrap_err(),
        AnomalyError::BadMagic
    );
    assert!(matches!(
        ModelFile::from_bytes(b"DOZORAML\x01\x00"),
        Err(AnomalyError::Corrupt(_))
    ));
    let mut truncated = file.to_bytes().unwrap();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        ModelFile::from_bytes(&truncated),
        Err(AnomalyError::Corrupt(_))
    ));
}

#[test]
fn a_forest_with_broken_links_is_corrupt_not_a_panic() {
    let (file, _) = sample_file();
    let bytes = file.to_bytes().unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&bytes[12..]).unwrap();
    let rights = json["models"][0]["model"]["model"]["node_right"]
        .as_array_mut()
        .unwrap();
    let split = rights.iter().position(|r| r.as_u64() != Some(0)).unwrap();
    rights[split] = serde_json::Value::from(u32::MAX);
    let mut broken = bytes[..12].to_vec();
    broken.extend(serde_json::to_vec(&json).unwrap());
    let error = ModelFile::from_bytes(&broken).unwrap_err();
    assert!(
        matches!(&error, AnomalyError::Corrupt(message) if message.contains("invalid")),
        "{error}"
    );
}
