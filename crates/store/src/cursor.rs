//! Opaque keyset-pagination cursors: base64url of the last row's sort key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::StoreError;

const EVENT_TAG: u8 = b'e';
const ALERT_TAG: u8 = b'a';

/// Cursor after an event: (ts, id).
pub(crate) fn encode_event(ts: i64, id: Uuid) -> String {
    let mut buf = Vec::with_capacity(25);
    buf.push(EVENT_TAG);
    buf.extend_from_slice(&ts.to_be_bytes());
    buf.extend_from_slice(id.as_bytes());
    URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn decode_event(cursor: &str) -> Result<(i64, Uuid), StoreError> {
    let buf = decode(cursor, EVENT_TAG, 24)?;
    let ts = i64::from_be_bytes(buf[..8].try_into().map_err(|_| StoreError::InvalidCursor)?);
    let id = Uuid::from_slice(&buf[8..24]).map_err(|_| StoreError::InvalidCursor)?;
    Ok((ts, id))
}

/// Cursor after an alert: (last_seen, id).
pub(crate) fn encode_alert(last_seen: i64, id: i64) -> String {
    let mut buf = Vec::with_capacity(17);
    buf.push(ALERT_TAG);
    buf.extend_from_slice(&last_seen.to_be_bytes());
    buf.extend_from_slice(&id.to_be_bytes());
    URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn decode_alert(cursor: &str) -> Result<(i64, i64), StoreError> {
    let buf = decode(cursor, ALERT_TAG, 16)?;
    let a = i64::from_be_bytes(buf[..8].try_into().map_err(|_| StoreError::InvalidCursor)?);
    let b = i64::from_be_bytes(
        buf[8..16]
            .try_into()
            .map_err(|_| StoreError::InvalidCursor)?,
    );
    Ok((a, b))
}

fn decode(cursor: &str, tag: u8, len: usize) -> Result<Vec<u8>, StoreError> {
    if cursor.len() > 64 {
        return Err(StoreError::InvalidCursor);
    }
    let buf = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| StoreError::InvalidCursor)?;
    match buf.split_first() {
        Some((t, rest)) if *t == tag && rest.len() == len => Ok(rest.to_vec()),
        _ => Err(StoreError::InvalidCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let id = Uuid::now_v7();
        let c = encode_event(-5, id);
        assert_eq!(decode_event(&c).unwrap(), (-5, id));
        let a = encode_alert(17, 42);
        assert_eq!(decode_alert(&a).unwrap(), (17, 42));
        assert!(decode_event(&a).is_err());
        assert!(decode_alert(&c).is_err());
        for bad in ["", "!!!", "AAAA", &"A".repeat(100), "ZQ"] {
            assert!(decode_event(bad).is_err(), "{bad}");
        }
    }
}
