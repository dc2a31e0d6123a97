//! The agent's disk spool reading a damaged or hostile directory: a segment file of arbitrary
//! bytes (optionally with its records' checksums made right, so the fuzzer gets past them) and
//! an arbitrary acknowledged position, opened, read, acknowledged, appended to and reopened.
//!
//! Input: flags (1 byte: bit 0 fix checksums, bit 1 write `state.json`), the segment's base
//! record id (8 bytes LE), the acknowledged id (8 bytes LE), then the segment's bytes.
#![no_main]

use dozor_fuzz::scratch_dir;
use dozor_spool::{FsyncPolicy, HEADER_LEN, RecordId, Spool, SpoolConfig};
use libfuzzer_sys::fuzz_target;

const MAGIC: &[u8; 4] = b"DZSP";

/// Recomputes the CRC of every record header found (as the spool computes it: over the
/// length, the id and the payload), so records are valid unless their length is wrong.
fn fix_checksums(buf: &mut [u8]) {
    let header = HEADER_LEN as usize;
    let mut pos = 0;
    while pos + header <= buf.len() {
        if &buf[pos..pos + 4] != MAGIC {
            pos += 1;
            continue;
        }
        let len = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let Some(end) = (pos + header)
            .checked_add(len)
            .filter(|&end| end <= buf.len())
        else {
            pos += 1;
            continue;
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&buf[pos + 4..pos + 16]);
        crc.update(&buf[pos + header..end]);
        buf[pos + 16..pos + 20].copy_from_slice(&crc.finalize().to_le_bytes());
        pos = end;
    }
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let flags = data[0];
    let base = le_u64(&data[1..9]);
    let acked = le_u64(&data[9..17]);
    let mut segment = data[17..].to_vec();
    if flags & 1 != 0 {
        fix_checksums(&mut segment);
    }
    let dir = scratch_dir("spool");
    std::fs::write(dir.join(format!("seg-{base:020}.log")), &segment).expect("segment written");
    if flags & 2 != 0 {
        std::fs::write(dir.join("state.json"), format!("{{\"acked\":{acked}}}"))
            .expect("state written");
    }
    let config = SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        fsync: FsyncPolicy::Never,
    };
    let Ok(mut spool) = Spool::open(&dir, config.clone()) else {
        return;
    };
    let _ = spool.stats();
    let records = spool.peek(8).unwrap_or_default();
    if let Some((id, _)) = records.get(records.len() / 2) {
        let _ = spool.ack(*id);
    }
    let _ = spool.append(b"after recovery");
    let _ = spool.ack(RecordId(acked));
    let _ = spool.peek(8);
    drop(spool);
    if let Ok(mut reopened) = Spool::open(&dir, config) {
        let _ = reopened.peek(8);
        let _ = reopened.append(b"after reopen");
    }
});
