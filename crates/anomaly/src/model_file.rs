//! Versioned model files: `DOZORAML` magic, a little-endian `u32` format version, then the
//! models as JSON. The header is read before the payload, so a file from a newer Dozor fails
//! with a clear "unsupported version" instead of a confusing decode error.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::AnomalyError;
use crate::entity::{CountBurstModel, RareValueModel, UnusualHourModel};
use crate::forest::IsolationForest;
use crate::host_hours::HostActivityState;

/// First bytes of every model file.
pub const MAGIC: &[u8; 8] = b"DOZORAML";
/// Version written by this build; it reads this and every older version.
pub const FORMAT_VERSION: u32 = 1;

/// Any model this crate trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "model", rename_all = "snake_case")]
pub enum Model {
    IsolationForest(IsolationForest),
    RareValue(RareValueModel),
    UnusualHour(UnusualHourModel),
    CountBurst(CountBurstModel),
}

/// A model under the caller's name (e.g. `rare_process`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedModel {
    pub name: String,
    pub model: Model,
}

/// What the models were trained on: how many events, from when to when (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrainingSpan {
    pub events: u64,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
}

/// Counts of an hour that was still open when the models were saved (a service saving its
/// state mid-hour), so a restart goes on counting instead of starting the hour at zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCount {
    /// Bucket start, unix seconds.
    pub start: i64,
    pub host: String,
    pub events: u64,
    pub failed_logons: u64,
}

/// A set of models saved and loaded together.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelFile {
    pub models: Vec<NamedModel>,
    /// What they learned from (absent in files that did not record it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingSpan>,
    /// Hours not closed yet (absent when there were none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_counts: Vec<OpenCount>,
    /// The [`crate::Detector`]'s host-activity settings, kept rows and open hours (absent in
    /// older files and in files of other model sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_activity: Option<HostActivityState>,
}

impl ModelFile {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: &str, model: Model) {
        self.models.push(NamedModel {
            name: name.to_string(),
            model,
        });
    }

    pub fn get(&self, name: &str) -> Option<&Model> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .map(|m| &m.model)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, AnomalyError> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes)?;
        Ok(bytes)
    }

    pub fn write_to<W: Write>(&self, mut writer: W) -> Result<(), AnomalyError> {
        let io = |e: std::io::Error| AnomalyError::Io(e.to_string());
        writer.write_all(MAGIC).map_err(io)?;
        writer
            .write_all(&FORMAT_VERSION.to_le_bytes())
            .map_err(io)?;
        serde_json::to_writer(&mut writer, self).map_err(|e| AnomalyError::Io(e.to_string()))?;
        writer.flush().map_err(io)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AnomalyError> {
        let header = MAGIC.len() + 4;
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(AnomalyError::BadMagic);
        }
        let version_bytes: [u8; 4] = bytes
            .get(MAGIC.len()..header)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AnomalyError::Corrupt("the file ends inside the header".into()))?;
        let version = u32::from_le_bytes(version_bytes);
        if version == 0 || version > FORMAT_VERSION {
            return Err(AnomalyError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_slice(&bytes[header..]).map_err(|e| AnomalyError::Corrupt(e.to_string()))
    }

    pub fn read_from<R: Read>(mut reader: R) -> Result<Self, AnomalyError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| AnomalyError::Io(e.to_string()))?;
        Self::from_bytes(&bytes)
    }
}
