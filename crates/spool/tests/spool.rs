use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use dozor_spool::{FsyncPolicy, HEADER_LEN, RecordId, Spool, SpoolConfig};

fn cfg(max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        max_bytes,
        segment_bytes,
        fsync: FsyncPolicy::EveryAppend,
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Appends `count` records; record `i` is `len` bytes of value `i`. Returns their ids.
fn append_filled(s: &mut Spool, count: u8, len: usize) -> Vec<RecordId> {
    (0..count)
        .map(|i| s.append(&vec![i; len]).unwrap())
        .collect()
}

/// Changes the newest segment file's bytes in place (to corrupt it).
fn edit_last_segment(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let seg = segments(dir).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    edit(&mut bytes);
    fs::write(&seg, &bytes).unwrap();
}

fn payloads(v: &[(RecordId, Vec<u8>)]) -> Vec<Vec<u8>> {
    v.iter().map(|(_, p)| p.clone()).collect()
}

#[test]
fn append_peek_ack_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert!(s.is_empty());
    let a = s.append(b"one").unwrap();
    let b = s.append(b"two").unwrap();
    let c = s.append(b"").unwrap();
    assert!(a < b && b < c);
    assert_eq!(s.len(), 3);
    assert_eq!(s.bytes(), 3 * HEADER_LEN + 6);
    let got = s.peek(10).unwrap();
    assert_eq!(
        got,
        vec![(a, b"one".to_vec()), (b, b"two".to_vec()), (c, vec![])]
    );
    // peek does not remove
    assert_eq!(s.peek(2).unwrap().len(), 2);
    s.ack(a).unwrap();
    assert_eq!(
        payloads(&s.peek(10).unwrap()),
        vec![b"two".to_vec(), vec![]]
    );
    s.ack(c).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.bytes(), 0);
    assert!(s.peek(10).unwrap().is_empty());
    // acking everything deletes the segments; appends continue with fresh ids
    assert!(segments(dir.path()).is_empty());
    let d = s.append(b"four").unwrap();
    assert!(d > c);
    assert_eq!(s.peek(10).unwrap(), vec![(d, b"four".to_vec())]);
}

#[test]
fn restart_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<RecordId> = {
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        (0..5)
            .map(|i| s.append(format!("rec{i}").as_bytes()).unwrap())
            .collect()
    };
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_eq!(s.len(), 5);
    let got = s.peek(100).unwrap();
    assert_eq!(got.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert_eq!(got[4].1, b"rec4");
    let next = s.append(b"after").unwrap();
    assert!(next > ids[4], "ids are never reused across restarts");
}

#[test]
fn ack_position_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<RecordId> = {
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let ids = append_filled(&mut s, 6, 10);
        s.ack(ids[2]).unwrap();
        ids
    };
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert_eq!(s.acked(), ids[2]);
    assert_eq!(s.len(), 3);
    let got = s.peek(100).unwrap();
    assert_eq!(got.first().unwrap().0, ids[3]);
    assert_eq!(got.first().unwrap().1, vec![3u8; 10]);
    // acking everything then restarting: still empty, ids continue
    s.ack(ids[5]).unwrap();
    drop(s);
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    assert!(s.is_empty());
    assert!(s.append(b"x").unwrap() > ids[5]);
}

#[test]
fn overflow_drops_oldest_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rec = HEADER_LEN + 100;
    // 2 records per segment, at most 3 segments on disk
    let mut s = Spool::open(dir.path(), cfg(6 * rec, 2 * rec)).unwrap();
    let ids = append_filled(&mut s, 10, 100);
    let st = s.stats();
    assert!(st.disk_bytes <= 6 * rec, "{st:?}");
    assert_eq!(st.dropped_records, 4);
    assert_eq!(st.dropped_bytes, 4 * rec);
    assert_eq!(s.len(), 6);
    let got = s.peek(100).unwrap();
    assert_eq!(got.first().unwrap().0, ids[4]);
    assert_eq!(got.last().unwrap().0, ids[9]);
    assert_eq!(got.first().unwrap().1, vec![4u8; 100]);
    assert!(segments(dir.path()).len() <= 3);
    // a record larger than the whole spool is refused
    assert!(s.append(&vec![0u8; 6 * rec as usize]).is_err());
    // the drop is persisted: after restart the dropped records stay gone
    drop(s);
    let mut s = Spool::open(dir.path(), cfg(6 * rec, 2 * rec)).unwrap();
    assert_eq!(s.len(), 6);
    assert_eq!(s.peek(1).unwrap()[0].0, ids[4]);
    assert!(s.append(b"z").unwrap() > ids[9]);
}

#[test]
fn overflow_counts_only_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let rec = HEADER_LEN + 10;
    let mut s = Spool::open(dir.path(), cfg(4 * rec, 2 * rec)).unwrap();
    let ids = append_filled(&mut s, 4, 10);
    s.ack(ids[0]).unwrap(); // segment 1 half acked, still on disk
    s.append(&[9; 10]).unwrap(); // drops segment 1: only ids[1] is lost
    assert_eq!(s.stats().dropped_records, 1);
    assert_eq!(s.stats().dropped_bytes, rec);
    assert_eq!(s.len(), 3);
}

#[test]
fn torn_tail_recovers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        append_filled(&mut s, 5, 50);
    }
    let seg = segments(dir.path()).pop().unwrap();
    for cut in [1u64, 7, 25] {
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - cut).unwrap();
        drop(f);
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        assert_eq!(s.len(), 4, "cut {cut}");
        assert!(s.stats().truncated_tail_bytes > 0);
        let got = s.peek(10).unwrap();
        assert_eq!(got.last().unwrap().1, vec![3u8; 50]);
        // appending after recovery works and survives a restart
        let id = s.append(&[4u8; 50]).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.stats().truncated_tail_bytes, 0);
        assert_eq!(s.peek(10).unwrap().last().unwrap(), &(id, vec![4u8; 50]));
    }
    // a file holding only a partial header
    let dir2 = tempfile::tempdir().unwrap();
    fs::write(dir2.path().join("seg-00000000000000000001.log"), b"DZS").unwrap();
    let mut s = Spool::open(dir2.path(), SpoolConfig::default()).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.append(b"ok").unwrap(), RecordId(1));
}

#[test]
fn corrupted_middle_record_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rec = HEADER_LEN + 40;
    {
        let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        append_filled(&mut s, 5, 40);
    }
    edit_last_segment(dir.path(), |bytes| {
        // flip a payload byte of record #2 (index 1)
        bytes[(rec + HEADER_LEN + 5) as usize] ^= 0xFF;
        // and smash the header magic of record #4 (index 3)
        bytes[(3 * rec) as usize] = b'X';
    });
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let got = s.peek(10).unwrap();
    assert_eq!(
        payloads(&got),
        vec![vec![0u8; 40], vec![2u8; 40], vec![4u8; 40]]
    );
    assert_eq!(s.stats().corrupt_skipped, 2);
    assert_eq!(s.len(), 3);
}

#[test]
fn corruption_after_open_skipped_on_peek() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    append_filled(&mut s, 3, 8);
    edit_last_segment(dir.path(), |bytes| bytes[(HEADER_LEN + 2) as usize] ^= 1);
    assert_eq!(
        payloads(&s.peek(10).unwrap()),
        vec![vec![1u8; 8], vec![2u8; 8]]
    );
    assert_eq!(s.stats().corrupt_skipped, 1);
    assert_eq!(s.len(), 2);
}

#[test]
fn many_small_records_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let c = SpoolConfig {
        max_bytes: 10 * 1024 * 1024,
        segment_bytes: 4096,
        fsync: FsyncPolicy::Never,
    };
    let mut s = Spool::open(dir.path(), c.clone()).unwrap();
    for i in 0..3000u32 {
        s.append(&i.to_le_bytes()).unwrap();
    }
    let nseg = segments(dir.path()).len();
    assert!(nseg > 10, "{nseg} segments");
    let all = s.peek(usize::MAX).unwrap();
    assert_eq!(all.len(), 3000);
    for (i, (_, p)) in all.iter().enumerate() {
        assert_eq!(p, &(i as u32).to_le_bytes());
    }
    s.ack(all[1499].0).unwrap();
    assert!(segments(dir.path()).len() < nseg);
    drop(s);
    let mut s = Spool::open(dir.path(), c).unwrap();
    let rest = s.peek(usize::MAX).unwrap();
    assert_eq!(rest.len(), 1500);
    assert_eq!(rest[0].1, 1500u32.to_le_bytes());
}

#[test]
fn interval_fsync_policy_works() {
    let dir = tempfile::tempdir().unwrap();
    let c = SpoolConfig {
        fsync: FsyncPolicy::Interval(std::time::Duration::from_millis(5)),
        ..SpoolConfig::default()
    };
    let mut s = Spool::open(dir.path(), c.clone()).unwrap();
    for _ in 0..20 {
        s.append(b"batch").unwrap();
    }
    s.flush().unwrap();
    drop(s);
    assert_eq!(Spool::open(dir.path(), c).unwrap().len(), 20);
}

/// xorshift64*: deterministic PRNG for the model test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn randomized_against_model() {
    for seed in 1..=8u64 {
        let dir = tempfile::tempdir().unwrap();
        let c = SpoolConfig {
            max_bytes: 4000,
            segment_bytes: 600,
            fsync: FsyncPolicy::Never,
        };
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut s = Spool::open(dir.path(), c.clone()).unwrap();
        let mut model: VecDeque<(RecordId, Vec<u8>)> = VecDeque::new();
        let mut last_id = RecordId(0);
        for step in 0..1500 {
            match rng.below(10) {
                0..=4 => {
                    let len = rng.below(120) as usize;
                    let p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    let before = s.stats().dropped_records;
                    let id = s.append(&p).unwrap();
                    assert!(id > last_id);
                    last_id = id;
                    let dropped = s.stats().dropped_records - before;
                    for _ in 0..dropped {
                        model.pop_front();
                    }
                    model.push_back((id, p));
                }
                5..=6 => {
                    if !model.is_empty() {
                        let k = rng.below(model.len() as u64) as usize;
                        let id = model[k].0;
                        s.ack(id).unwrap();
                        model.drain(..=k);
                    }
                }
                7..=8 => {
                    let n = rng.below(20) as usize;
                    let got = s.peek(n).unwrap();
                    let want: Vec<_> = model.iter().take(n).cloned().collect();
                    assert_eq!(got, want, "seed {seed} step {step}");
                }
                _ => {
                    drop(s);
                    s = Spool::open(dir.path(), c.clone()).unwrap();
                }
            }
            assert_eq!(s.len(), model.len() as u64, "seed {seed} step {step}");
            let bytes: u64 = model.iter().map(|(_, p)| HEADER_LEN + p.len() as u64).sum();
            assert_eq!(s.bytes(), bytes);
            assert!(s.stats().disk_bytes <= c.max_bytes);
            let on_disk: u64 = segments(dir.path())
                .iter()
                .map(|p| fs::metadata(p).unwrap().len())
                .sum();
            assert_eq!(on_disk, s.stats().disk_bytes, "seed {seed} step {step}");
        }
        assert_eq!(s.peek(usize::MAX).unwrap(), Vec::from(model));
    }
}

/// A spool directory written by hand: `state.json` and one segment of records `(id, payload)`
/// named after `base` (checksums right).
fn forged_dir(acked: Option<u64>, base: u64, records: &[(u64, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(acked) = acked {
        fs::write(
            dir.path().join("state.json"),
            format!("{{\"acked\":{acked}}}"),
        )
        .unwrap();
    }
    let mut segment = Vec::new();
    for (id, payload) in records {
        let mut checked = (payload.len() as u32).to_le_bytes().to_vec();
        checked.extend_from_slice(&id.to_le_bytes());
        checked.extend_from_slice(payload);
        segment.extend_from_slice(b"DZSP");
        segment.extend_from_slice(&checked[..12]);
        segment.extend_from_slice(&crc32(&checked).to_le_bytes());
        segment.extend_from_slice(payload);
    }
    fs::write(dir.path().join(format!("seg-{base:020}.log")), segment).unwrap();
    dir
}

/// CRC-32 (IEEE), bit by bit: the record checksum, written independently of the crate's table.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn forged_directory_round_trips() {
    let dir = forged_dir(Some(1), 1, &[(1, b"one"), (2, b"two")]);
    let mut s = Spool::open(dir.path(), cfg(1 << 20, 1 << 16)).unwrap();
    assert_eq!(payloads(&s.peek(8).unwrap()), vec![b"two".to_vec()]);
    assert_eq!(s.append(b"three").unwrap(), RecordId(3));
}

/// Found by fuzzing (spool_segment): an acknowledged id of u64::MAX overflowed the next id.
#[test]
fn acked_id_at_the_end_of_the_id_space_is_an_error() {
    let dir = forged_dir(Some(u64::MAX), 1, &[]);
    let err = Spool::open(dir.path(), cfg(1 << 20, 1 << 16)).unwrap_err();
    assert!(err.to_string().contains(&u64::MAX.to_string()), "{err}");
}

/// A record claiming the id u64::MAX is corrupt (no id could follow it); the rest is read.
#[test]
fn record_id_at_the_end_of_the_id_space_is_skipped() {
    let dir = forged_dir(None, 1, &[(1, b"one"), (u64::MAX, b"max")]);
    let mut s = Spool::open(dir.path(), cfg(1 << 20, 1 << 16)).unwrap();
    assert_eq!(payloads(&s.peek(8).unwrap()), vec![b"one".to_vec()]);
    assert_eq!(s.append(b"two").unwrap(), RecordId(2));
}

/// The last usable id is handed out once; after it appends fail instead of overflowing.
#[test]
fn ids_run_out_with_an_error() {
    let dir = forged_dir(Some(u64::MAX - 2), u64::MAX - 1, &[]);
    let mut s = Spool::open(dir.path(), cfg(1 << 20, 1 << 16)).unwrap();
    assert_eq!(s.append(b"last").unwrap(), RecordId(u64::MAX - 1));
    let err = s.append(b"one too many").unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
    assert_eq!(payloads(&s.peek(8).unwrap()), vec![b"last".to_vec()]);
}

/// A segment named after u64::MAX is not one the spool wrote: it is left alone.
#[test]
fn segment_named_at_the_end_of_the_id_space_is_ignored() {
    let dir = forged_dir(None, u64::MAX, &[]);
    let mut s = Spool::open(dir.path(), cfg(1 << 20, 1 << 16)).unwrap();
    assert_eq!(s.append(b"first").unwrap(), RecordId(1));
}
