//! The indicator record.

use serde::{Deserialize, Serialize};

use crate::kind::split_misp_value;
use crate::normalize::normalize;
use crate::{IntelError, IocKind};

/// Where an indicator came from: a source's name and the ids of the objects there that carry
/// it (MISP event and attribute uuids, a STIX id, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocSource {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_ids: Vec<String>,
}

/// One indicator. `(kind, value)` identifies it; everything else is context. Times are
/// milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ioc {
    pub kind: IocKind,
    /// The canonical value (see [`normalize`]): what the matcher compares.
    pub value: String,
    /// The value as the source wrote it (for a composite MISP value, the whole of it).
    pub original: String,
    /// The MISP attribute type it came from, when it came from MISP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misp_type: Option<String>,
    /// MISP's "for detection" flag; sources without one set it to true.
    pub to_ids: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// 0–100, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IocSource>,
}

impl Ioc {
    /// An indicator of `kind` from a raw value (normalized; the kind may become `cidr` or
    /// `ip`, see [`normalize`]), detection on, no context yet.
    pub fn new(kind: IocKind, raw: &str) -> Result<Ioc, IntelError> {
        let n = normalize(kind, raw)?;
        Ok(Ioc {
            kind: n.kind,
            value: n.value,
            original: raw.to_owned(),
            misp_type: None,
            to_ids: true,
            tags: Vec::new(),
            confidence: None,
            first_seen: None,
            last_seen: None,
            expires: None,
            sources: Vec::new(),
        })
    }

    /// The indicators of one MISP attribute: one per kept part of a composite type
    /// (`domain|ip` gives a domain and an ip, `ip-dst|port` an ip). An unsupported type is
    /// [`IntelError::UnsupportedMispType`]; a bad part fails the whole attribute, so a caller
    /// reports it rather than importing half of it.
    pub fn from_misp(misp_type: &str, value: &str, to_ids: bool) -> Result<Vec<Ioc>, IntelError> {
        split_misp_value(misp_type, value)?
            .into_iter()
            .map(|(kind, part)| {
                let mut ioc = Ioc::new(kind, part)?;
                ioc.original = value.to_owned();
                ioc.misp_type = Some(misp_type.to_owned());
                ioc.to_ids = to_ids;
                Ok(ioc)
            })
            .collect()
    }
}
