//! Rendered event XML → normalized event.

use serde_json::Value;

/// Converts one event as `EvtRender(EvtRenderEventXml)` renders it into the normalized
/// (ECS-aligned) event: `winlog.*` keeps the channel, provider, event id and the payload under
/// its own names, well-known fields are mapped to ECS, and `event.id` is the deterministic
/// UUIDv5 of computer + channel + record id (so an event read twice, e.g. after a crash before
/// its bookmark was saved, is deduplicated by the server).
///
/// `Err` says why the XML is not a usable event (malformed XML, no `<Event>`, no time or id).
pub fn xml_to_event(xml: &str) -> Result<Value, String> {
    let flat = dozor_decode::parse_event_xml(xml).map_err(|e| e.to_string())?;
    dozor_decode::winlog::to_event(&flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for xml in [
            "",
            "not xml",
            "<Event>",
            "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'></Event>",
            "<Event><System><EventID>abc</EventID></System></Event>",
            "<Event><System><EventID>1</EventID></System></Event>",
            "<Other/>",
        ] {
            assert!(xml_to_event(xml).is_err(), "{xml:?} should be rejected");
        }
    }
}
