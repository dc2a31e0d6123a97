//! EVTX files, through the `evtx` crate: each record is rendered to JSON by evtx's compiled
//! templates and flattened straight from those bytes (no `serde_json::Value` in between).
//!
//! The file is read chunk by chunk (64 KiB), so memory stays flat whatever its size. A chunk or
//! record that can't be read is reported with where it is and skipped; the rest of the file is
//! still read. With more than one thread, chunks are decoded on a private rayon pool while
//! records are still handed out in file order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use dozor_event::FlatEvent;
use evtx::err::EvtxError;
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxFileHeader, ParserSettings};

use crate::error::{DecodeError, Location, error_chain};
use crate::json::flatten_evtx_json_bytes;

/// The first bytes of every EVTX file.
pub const EVTX_MAGIC: &[u8; 8] = b"ElfFile\0";
const CHUNK_MAGIC: &[u8; 8] = b"ElfChnk\0";
const FILE_HEADER_SIZE: u64 = 4096;
const CHUNK_SIZE: usize = 65536;
const CHUNK_HEADER_SIZE: usize = 512;

type Item = Result<FlatEvent, DecodeError>;

/// A chunk read from the file: its number and data, or why it can't be used.
type RawChunk = (u64, Result<Box<EvtxChunkData>, DecodeError>);

/// Streams the records of an EVTX file as flat events.
pub(crate) struct EvtxRecords {
    path: Arc<PathBuf>,
    chunks: ChunkSource,
    settings: Arc<ParserSettings>,
    ready: std::vec::IntoIter<Item>,
    pool: Option<Pool>,
}

/// Chunks in flight on a private thread pool, put back in file order.
struct Pool {
    pool: rayon::ThreadPool,
    max_in_flight: u64,
    tx: Sender<(u64, Vec<Item>, Vec<u8>)>,
    rx: Receiver<(u64, Vec<Item>, Vec<u8>)>,
    done: BTreeMap<u64, Vec<Item>>,
    next_seq: u64,
    next_yield: u64,
    exhausted: bool,
}

/// Reads the chunks of an EVTX file in record order, as Windows does: from the chunk that holds
/// the oldest records to the end of the file, then from the first chunk up to it (a full log
/// writes new chunks over its oldest ones). Empty (all-zero) chunks are skipped; chunks past the
/// count the file size gives are read while they can be (dirty files).
///
/// This mirrors `evtx::EvtxParser::into_chunks`, with a cheaper test for empty chunks and
/// reused buffers.
struct ChunkSource {
    file: File,
    path: Arc<PathBuf>,
    /// Whole chunks the file holds after its header.
    count: u64,
    next: u64,
    oldest: u64,
    wrapped: bool,
    /// Where the file is positioned, to skip needless seeks.
    position: u64,
    validate_checksums: bool,
    spare: Vec<Vec<u8>>,
}

enum ChunkRead {
    Chunk(Box<EvtxChunkData>),
    Empty,
    Failed(DecodeError),
}

impl ChunkSource {
    fn new(mut file: File, path: Arc<PathBuf>, file_len: u64, validate_checksums: bool) -> Self {
        let count = file_len.saturating_sub(FILE_HEADER_SIZE) / CHUNK_SIZE as u64;
        let oldest = oldest_chunk(&mut file, count);
        ChunkSource {
            file,
            path,
            count,
            next: oldest,
            oldest,
            wrapped: false,
            position: u64::MAX,
            validate_checksums,
            spare: Vec::new(),
        }
    }

    fn read_chunk(&mut self, number: u64) -> ChunkRead {
        let location = Location::Chunk { chunk: number };
        let Some(offset) = number
            .checked_mul(CHUNK_SIZE as u64)
            .and_then(|o| o.checked_add(FILE_HEADER_SIZE))
        else {
            return ChunkRead::Failed(DecodeError::record(
                Some(&self.path),
                location,
                "chunk offset overflows",
            ));
        };
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(CHUNK_SIZE, 0);
        if self.position != offset
            && let Err(e) = self.file.seek(SeekFrom::Start(offset))
        {
            self.position = u64::MAX;
            return ChunkRead::Failed(DecodeError::record(
                Some(&self.path),
                location,
                format!("cannot seek: {e}"),
            ));
        }
        if let Err(e) = self.file.read_exact(&mut buf) {
            self.position = u64::MAX;
            let message = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "incomplete chunk: the file ends inside it".to_owned()
            } else {
                format!("cannot read: {e}")
            };
            return ChunkRead::Failed(DecodeError::record(Some(&self.path), location, message));
        }
        self.position = offset + CHUNK_SIZE as u64;
        if !buf.starts_with(CHUNK_MAGIC) && buf.iter().fold(0u8, |acc, b| acc | b) == 0 {
            self.spare.push(buf);
            return ChunkRead::Empty;
        }
        match EvtxChunkData::new(buf, self.validate_checksums) {
            Ok(mut chunk) => {
                chunk.number = Some(number);
                ChunkRead::Chunk(Box::new(chunk))
            }
            Err(e) => ChunkRead::Failed(DecodeError::record(
                Some(&self.path),
                location,
                error_chain(&e),
            )),
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() >= CHUNK_SIZE && self.spare.len() < 4 {
            self.spare.push(buf);
        }
    }
}

impl Iterator for ChunkSource {
    type Item = RawChunk;

    fn next(&mut self) -> Option<RawChunk> {
        loop {
            let end = if self.wrapped { self.oldest } else { u64::MAX };
            if self.next < end {
                let number = self.next;
                self.next += 1;
                match self.read_chunk(number) {
                    ChunkRead::Empty => continue,
                    ChunkRead::Chunk(chunk) => return Some((number, Ok(chunk))),
                    // Past the chunks the file size counts, a chunk that can't be read is the end.
                    ChunkRead::Failed(e) if number < self.count => return Some((number, Err(e))),
                    ChunkRead::Failed(_) => {}
                }
            }
            if self.wrapped || self.oldest == 0 {
                return None;
            }
            self.wrapped = true;
            self.next = 0;
        }
    }
}

/// The chunk whose header names the lowest record id (see [`ChunkSource`]).
fn oldest_chunk(file: &mut File, count: u64) -> u64 {
    let mut oldest = (u64::MAX, 0);
    let mut header = [0u8; CHUNK_HEADER_SIZE];
    for number in 0..count {
        let offset = FILE_HEADER_SIZE + number * CHUNK_SIZE as u64;
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut header).is_err() {
            break;
        }
        if let Ok(chunk) = EvtxChunkHeader::from_bytes(&header)
            && chunk.first_event_record_id <= chunk.last_event_record_id
            && chunk.first_event_record_id < oldest.0
        {
            oldest = (chunk.first_event_record_id, number);
        }
    }
    oldest.1
}

impl EvtxRecords {
    /// Opens an EVTX file; fails when it isn't one.
    pub(crate) fn open(
        path: &Path,
        threads: usize,
        validate_checksums: bool,
    ) -> Result<Self, DecodeError> {
        let mut file = File::open(path).map_err(|e| DecodeError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| DecodeError::io(path, e))?.len();
        let mut header = vec![0u8; FILE_HEADER_SIZE as usize];
        let got =
            crate::read_up_to(&mut file, &mut header).map_err(|e| DecodeError::io(path, e))?;
        if got == 0 {
            return Err(DecodeError::unreadable(
                path,
                "not an EVTX file: the file is empty",
            ));
        }
        if !header[..got].starts_with(EVTX_MAGIC) {
            return Err(DecodeError::unreadable(
                path,
                "not an EVTX file: it does not start with the \"ElfFile\" signature",
            ));
        }
        if got < header.len() {
            return Err(DecodeError::unreadable(
                path,
                format!(
                    "not a readable EVTX file: the file header is cut short ({got} of 4096 bytes)"
                ),
            ));
        }
        let file_header = EvtxFileHeader::from_bytes(&header).map_err(|e| {
            DecodeError::unreadable(
                path,
                format!("not a readable EVTX file: {}", error_chain(&e)),
            )
        })?;
        if !file_header.validate_checksum() {
            tracing::debug!(path = %path.display(), "EVTX file header checksum is wrong; reading the chunks anyway");
        }
        let settings = ParserSettings::new()
            .indent(false)
            .separate_json_attributes(false)
            .validate_checksums(validate_checksums);
        let settings = Arc::new(settings);
        let path = Arc::new(path.to_path_buf());
        let chunks = ChunkSource::new(file, Arc::clone(&path), file_len, validate_checksums);
        let threads = threads.max(1);
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("dozor-evtx-{i}"))
                .build()
                .map_err(|e| {
                    DecodeError::unreadable(&path, format!("cannot start decoding threads: {e}"))
                })?;
            let (tx, rx) = channel();
            Some(Pool {
                pool,
                max_in_flight: threads as u64 * 2,
                tx,
                rx,
                done: BTreeMap::new(),
                next_seq: 0,
                next_yield: 0,
                exhausted: false,
            })
        } else {
            None
        };
        Ok(EvtxRecords {
            path,
            chunks,
            settings,
            ready: Vec::new().into_iter(),
            pool,
        })
    }

    /// The next chunk's records, decoded here or on the pool; `None` at the end of the file.
    fn next_batch(&mut self) -> Option<Vec<Item>> {
        let Some(pool) = self.pool.as_mut() else {
            let (number, chunk) = self.chunks.next()?;
            let (batch, buf) = decode_chunk(number, chunk, &self.settings, &self.path);
            self.chunks.recycle(buf);
            return Some(batch);
        };
        loop {
            while !pool.exhausted && pool.next_seq - pool.next_yield < pool.max_in_flight {
                let Some((number, chunk)) = self.chunks.next() else {
                    pool.exhausted = true;
                    break;
                };
                let seq = pool.next_seq;
                pool.next_seq += 1;
                let tx = pool.tx.clone();
                let settings = Arc::clone(&self.settings);
                let path = Arc::clone(&self.path);
                pool.pool.spawn(move || {
                    let (batch, buf) = decode_chunk(number, chunk, &settings, &path);
                    // The receiver is gone when the reader was dropped: nothing to do.
                    let _ = tx.send((seq, batch, buf));
                });
            }
            if let Some(batch) = pool.done.remove(&pool.next_yield) {
                pool.next_yield += 1;
                return Some(batch);
            }
            if pool.exhausted && pool.next_yield == pool.next_seq {
                return None;
            }
            match pool.rx.recv() {
                Ok((seq, batch, buf)) => {
                    pool.done.insert(seq, batch);
                    self.chunks.recycle(buf);
                }
                Err(_) => return None,
            }
        }
    }
}

impl Iterator for EvtxRecords {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.ready.next() {
                return Some(item);
            }
            self.ready = self.next_batch()?.into_iter();
        }
    }
}

/// Decodes the records of one chunk; never panics (a panic inside evtx becomes an error).
/// Gives the chunk's buffer back for reuse.
fn decode_chunk(
    number: u64,
    chunk: Result<Box<EvtxChunkData>, DecodeError>,
    settings: &Arc<ParserSettings>,
    path: &Path,
) -> (Vec<Item>, Vec<u8>) {
    let mut data = match chunk {
        Ok(data) => data,
        Err(e) => return (vec![Err(e)], Vec::new()),
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut out = Vec::new();
        let mut chunk = match data.parse(Arc::clone(settings)) {
            Ok(chunk) => chunk,
            Err(e) => {
                out.push(Err(DecodeError::record(
                    Some(path),
                    Location::Chunk { chunk: number },
                    error_chain(&e),
                )));
                return out;
            }
        };
        let header = chunk.header;
        let expected = header
            .last_event_record_id
            .saturating_sub(header.first_event_record_id);
        out.reserve(expected.min(1024) as usize + 1);
        // Room for as many fields as the last record had, plus a few.
        let mut capacity = 32;
        for record in chunk.iter() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    out.push(Err(evtx_error(path, number, &e)));
                    continue;
                }
            };
            let record_id = record.event_record_id;
            let location = Location::Record {
                chunk: Some(number),
                record_id,
            };
            let item = match record.into_json_bytes() {
                Ok(rendered) => flatten_evtx_json_bytes(&rendered.data, capacity)
                    .inspect(|event| capacity = event.fields.len() + 4)
                    .map_err(|message| DecodeError::record(Some(path), location, message)),
                Err(e) => Err(DecodeError::record(Some(path), location, error_chain(&e))),
            };
            out.push(item);
        }
        out
    }));
    let batch = result.unwrap_or_else(|_| {
        vec![Err(DecodeError::record(
            Some(path),
            Location::Chunk { chunk: number },
            "the EVTX parser panicked on this chunk; its remaining records are skipped",
        ))]
    });
    (batch, std::mem::take(&mut data.data))
}

/// An evtx error, with the location it names.
fn evtx_error(path: &Path, chunk: u64, e: &EvtxError) -> DecodeError {
    let location = match e {
        EvtxError::FailedToParseChunk { chunk_id, .. } => Location::Chunk { chunk: *chunk_id },
        EvtxError::FailedToParseRecord { record_id, .. } => Location::Record {
            chunk: Some(chunk),
            record_id: *record_id,
        },
        EvtxError::FailedToReadRecordAt {
            chunk: at, offset, ..
        } => Location::ChunkOffset {
            chunk: Some(at.unwrap_or(chunk)),
            offset: *offset,
        },
        _ => Location::Chunk { chunk },
    };
    // The location says what the outer message says: keep the cause.
    let cause = match e {
        EvtxError::FailedToParseChunk { .. }
        | EvtxError::FailedToParseRecord { .. }
        | EvtxError::FailedToReadRecordAt { .. } => std::error::Error::source(e),
        _ => None,
    };
    DecodeError::record(Some(path), location, error_chain(cause.unwrap_or(e)))
}
