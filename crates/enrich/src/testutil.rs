//! A small MaxMind DB (`.mmdb`) *writer* for building fixture databases in tests.
//!
//! Enabled by the `test-util` feature. Real GeoIP databases cannot be downloaded in CI and must
//! not be committed, so tests build their own files with this module. It follows the
//! "MaxMind DB File Format Specification" v2.0:
//!
//! - a binary search tree, one level per address bit, records of 24, 28 or 32 bits;
//! - IPv6 databases keep IPv4 networks at `::a.b.c.d` (the `::/96` subtree) and, like MaxMind's
//!   own databases, alias `::ffff:0:0/96` (IPv4-mapped) and `2002::/16` (6to4) to that subtree
//!   (see [`MmdbWriter::alias_ipv4`]);
//! - a 16-byte zero separator, then the data section (maps, arrays, UTF-8 strings, doubles,
//!   floats, bytes, uint16/32/64/128, int32, booleans and, optionally, pointers to repeated
//!   strings);
//! - the metadata section after the `\xAB\xCD\xEFMaxMind.com` marker.
//!
//! More specific networks always win over the networks that contain them, whatever the order
//! they were inserted in; inserting the same network twice keeps the last value.
//!
//! It is written for small, hand-made fixtures (and benchmark databases of some hundred thousand
//! networks), not for producing production databases.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

/// The metadata marker that starts the metadata section.
pub const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// The largest payload size a control byte can express (spec: 16,843,036).
const MAX_PAYLOAD: usize = 65_821 + 0xFF_FFFF;

/// A value of the MaxMind DB data section.
#[derive(Debug, Clone, PartialEq)]
pub enum MmdbValue {
    /// A map; keys are always UTF-8 strings. Order is kept as given.
    Map(Vec<(String, MmdbValue)>),
    /// An array.
    Array(Vec<MmdbValue>),
    /// A UTF-8 string.
    String(String),
    /// IEEE-754 binary64.
    Double(f64),
    /// IEEE-754 binary32.
    Float(f32),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Unsigned 16-bit integer.
    U16(u16),
    /// Unsigned 32-bit integer.
    U32(u32),
    /// Unsigned 64-bit integer.
    U64(u64),
    /// Unsigned 128-bit integer.
    U128(u128),
    /// Signed 32-bit integer.
    I32(i32),
    /// Boolean.
    Bool(bool),
}

impl MmdbValue {
    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, MmdbValue)>) -> Self {
        MmdbValue::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A UTF-8 string.
    pub fn string(s: impl Into<String>) -> Self {
        MmdbValue::String(s.into())
    }

    /// A `names` map as GeoIP2 databases have it: `{ "en": "...", "ru": "..." }`.
    pub fn names(pairs: &[(&str, &str)]) -> Self {
        MmdbValue::Map(
            pairs
                .iter()
                .map(|(lang, name)| ((*lang).to_owned(), MmdbValue::string(*name)))
                .collect(),
        )
    }
}

impl From<&str> for MmdbValue {
    fn from(s: &str) -> Self {
        MmdbValue::String(s.to_owned())
    }
}

/// Why a database could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The record size is not one of 24, 28 or 32.
    #[error("unsupported record size {0} (use 24, 28 or 32)")]
    RecordSize(u16),
    /// The ip_version is not 4 or 6.
    #[error("unsupported ip_version {0} (use 4 or 6)")]
    IpVersion(u16),
    /// An IPv6 network was inserted into an IPv4 database.
    #[error("IPv6 network {0} cannot be stored in an IPv4 database")]
    Ipv6InIpv4Database(IpNet),
    /// The tree or data section is too large for the record size.
    #[error("record value {value} does not fit in {record_size}-bit records")]
    RecordOverflow {
        /// The value that did not fit.
        value: u64,
        /// The record size in bits.
        record_size: u16,
    },
    /// A string, byte string, map or array is longer than the format allows.
    #[error("a field of {0} bytes or elements is larger than the format allows")]
    TooLarge(usize),
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A child of a search-tree node while the tree is being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a MaxMind DB file in memory.
///
/// ```
/// use dozor_enrich::testutil::{MmdbValue, MmdbWriter};
///
/// let mut w = MmdbWriter::new("GeoLite2-ASN");
/// w.insert(
///     "203.0.113.0/24".parse().unwrap(),
///     MmdbValue::map([
///         ("autonomous_system_number", MmdbValue::U32(64500)),
///         ("autonomous_system_organization", MmdbValue::string("Example Net")),
///     ]),
/// );
/// let bytes = w.to_bytes().unwrap();
/// let reader = maxminddb::Reader::from_source(bytes).unwrap();
/// assert_eq!(reader.metadata().database_type, "GeoLite2-ASN");
/// ```
#[derive(Debug, Clone)]
pub struct MmdbWriter {
    database_type: String,
    languages: Vec<String>,
    description: Vec<(String, String)>,
    record_size: u16,
    ip_version: u16,
    build_epoch: u64,
    alias_ipv4: bool,
    pointers: bool,
    networks: Vec<(IpNet, MmdbValue)>,
}

impl MmdbWriter {
    /// A writer for an IPv6 database (with the IPv4 subtree at `::/96` and the usual aliases),
    /// 28-bit records, languages `["en"]`.
    pub fn new(database_type: impl Into<String>) -> Self {
        let database_type = database_type.into();
        MmdbWriter {
            description: vec![(
                "en".to_owned(),
                format!("{database_type} test fixture built by dozor-enrich"),
            )],
            database_type,
            languages: vec!["en".to_owned()],
            record_size: 28,
            ip_version: 6,
            build_epoch: 1_700_000_000,
            alias_ipv4: true,
            pointers: false,
            networks: Vec::new(),
        }
    }

    /// Record size in bits: 24, 28 or 32.
    pub fn record_size(mut self, bits: u16) -> Self {
        self.record_size = bits;
        self
    }

    /// 4 (IPv4-only tree of 32 levels) or 6 (the default).
    pub fn ip_version(mut self, version: u16) -> Self {
        self.ip_version = version;
        self
    }

    /// Whether `::ffff:0:0/96` and `2002::/16` point to the IPv4 subtree (default true; IPv6
    /// databases only).
    pub fn alias_ipv4(mut self, alias: bool) -> Self {
        self.alias_ipv4 = alias;
        self
    }

    /// Whether repeated strings (keys and values) are written once and referred to by pointers,
    /// as MaxMind's databases do (default false).
    pub fn pointers(mut self, pointers: bool) -> Self {
        self.pointers = pointers;
        self
    }

    /// The `languages` metadata entry.
    pub fn languages(mut self, languages: &[&str]) -> Self {
        self.languages = languages.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The `description` metadata entry (language → text).
    pub fn description(mut self, description: &[(&str, &str)]) -> Self {
        self.description = description
            .iter()
            .map(|(l, d)| ((*l).to_owned(), (*d).to_owned()))
            .collect();
        self
    }

    /// The `build_epoch` metadata entry.
    pub fn build_epoch(mut self, epoch: u64) -> Self {
        self.build_epoch = epoch;
        self
    }

    /// Adds a network and its record. The network's host bits are ignored.
    pub fn insert(&mut self, network: IpNet, value: MmdbValue) -> &mut Self {
        self.networks.push((network.trunc(), value));
        self
    }

    /// Number of networks inserted so far.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    /// Whether no network was inserted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Writes the database to `path`.
    pub fn write_to(&self, path: impl AsRef<Path>) -> Result<(), WriteError> {
        let bytes = self.to_bytes()?;
        std::fs::write(path.as_ref(), bytes).map_err(|source| WriteError::Io {
            path: path.as_ref().display().to_string(),
            source,
        })
    }

    /// Builds the whole file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        if !matches!(self.record_size, 24 | 28 | 32) {
            return Err(WriteError::RecordSize(self.record_size));
        }
        if !matches!(self.ip_version, 4 | 6) {
            return Err(WriteError::IpVersion(self.ip_version));
        }
        // Data section: one copy of each distinct record.
        let mut data = DataSection::new(self.pointers);
        let mut record_offsets: Vec<usize> = Vec::new();
        let mut dedup: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut record_of_network = Vec::with_capacity(self.networks.len());
        for (_, value) in &self.networks {
            let mut plain = Vec::new();
            encode_plain(value, &mut plain)?;
            let index = match dedup.get(&plain) {
                Some(&i) => i,
                None => {
                    let offset = data.write_value(value)?;
                    record_offsets.push(offset);
                    dedup.insert(plain, record_offsets.len() - 1);
                    record_offsets.len() - 1
                }
            };
            record_of_network.push(index);
        }

        // Search tree: less specific networks first so that more specific ones win.
        let mut order: Vec<usize> = (0..self.networks.len()).collect();
        order.sort_by_key(|&i| self.networks[i].0.prefix_len());
        let mut tree = Tree::new();
        for i in order {
            let (bits, len) = self.key_of(&self.networks[i].0)?;
            tree.insert(bits, len, Child::Data(record_of_network[i]));
        }
        if self.alias_ipv4 && self.ip_version == 6 {
            tree.alias_ipv4();
        }

        // Number the nodes reachable from the root (breadth first; root is 0).
        let mut number: HashMap<usize, usize> = HashMap::new();
        let mut order = Vec::new();
        let mut queue = VecDeque::from([0usize]);
        number.insert(0, 0);
        while let Some(n) = queue.pop_front() {
            order.push(n);
            for child in tree.nodes[n] {
                if let Child::Node(c) = child
                    && !number.contains_key(&c)
                {
                    number.insert(c, number.len());
                    queue.push_back(c);
                }
            }
        }
        let node_count = order.len();

        let record_value = |child: Child| -> u64 {
            match child {
                Child::Empty => node_count as u64,
                Child::Node(n) => number[&n] as u64,
                Child::Data(r) => (node_count + 16 + record_offsets[r]) as u64,
            }
        };
        let max = (1u64 << self.record_size) - 1;
        let node_bytes = usize::from(self.record_size) / 4;
        let mut out = Vec::with_capacity(node_count * node_bytes + 16 + data.bytes.len() + 512);
        for &n in &order {
            let [l, r] = tree.nodes[n];
            let (l, r) = (record_value(l), record_value(r));
            for v in [l, r] {
                if v > max {
                    return Err(WriteError::RecordOverflow {
                        value: v,
                        record_size: self.record_size,
                    });
                }
            }
            write_node(&mut out, self.record_size, l, r);
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&data.bytes);
        out.extend_from_slice(METADATA_MARKER);
        let metadata = MmdbValue::map([
            ("node_count", MmdbValue::U32(node_count as u32)),
            ("record_size", MmdbValue::U16(self.record_size)),
            ("ip_version", MmdbValue::U16(self.ip_version)),
            ("database_type", MmdbValue::string(&self.database_type)),
            (
                "languages",
                MmdbValue::Array(self.languages.iter().map(MmdbValue::string).collect()),
            ),
            ("binary_format_major_version", MmdbValue::U16(2)),
            ("binary_format_minor_version", MmdbValue::U16(0)),
            ("build_epoch", MmdbValue::U64(self.build_epoch)),
            (
                "description",
                MmdbValue::Map(
                    self.description
                        .iter()
                        .map(|(l, d)| (l.clone(), MmdbValue::string(d)))
                        .collect(),
                ),
            ),
        ]);
        encode_plain(&metadata, &mut out)?;
        Ok(out)
    }

    /// The network as a 128-bit key (left aligned for IPv4 databases) and its depth in the tree.
    fn key_of(&self, net: &IpNet) -> Result<(u128, u8), WriteError> {
        match (net, self.ip_version) {
            (IpNet::V4(n), 4) => Ok(((u128::from(u32::from(n.network()))) << 96, n.prefix_len())),
            (IpNet::V4(n), _) => Ok((u128::from(u32::from(n.network())), 96 + n.prefix_len())),
            (IpNet::V6(_), 4) => Err(WriteError::Ipv6InIpv4Database(*net)),
            (IpNet::V6(n), _) => Ok((u128::from(n.network()), n.prefix_len())),
        }
    }
}

/// The search tree while it is being built. Node 0 is the root; nodes replaced by a shorter
/// network become unreachable and are dropped when the file is numbered.
struct Tree {
    nodes: Vec<[Child; 2]>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![[Child::Empty; 2]],
        }
    }

    /// Bit `depth` (0 = most significant) of a 128-bit key.
    fn bit(key: u128, depth: u8) -> usize {
        ((key >> (127 - u32::from(depth))) & 1) as usize
    }

    /// Walks to the node that holds the record for the first `len` bits of `key`, creating
    /// nodes (and splitting data records that covered a larger network) on the way. Returns
    /// that node; the record is its child `bit(key, len - 1)`.
    fn parent_of(&mut self, key: u128, len: u8) -> usize {
        let mut node = 0;
        for depth in 0..len.saturating_sub(1) {
            let b = Self::bit(key, depth);
            node = match self.nodes[node][b] {
                Child::Node(n) => n,
                other => {
                    // Empty, or a record for a larger network: push it one level down.
                    self.nodes.push([other, other]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][b] = Child::Node(n);
                    n
                }
            };
        }
        node
    }

    fn insert(&mut self, key: u128, len: u8, child: Child) {
        if len == 0 {
            self.nodes[0] = [child, child];
            return;
        }
        let node = self.parent_of(key, len);
        self.nodes[node][Self::bit(key, len - 1)] = child;
    }

    /// Points `::ffff:0:0/96` and `2002::/16` at the IPv4 subtree (`::/96`), as MaxMind does.
    fn alias_ipv4(&mut self) {
        let mut node = 0;
        for _ in 0..96 {
            match self.nodes[node][0] {
                Child::Node(n) => node = n,
                // No IPv4 subtree (nothing below ::/96 other than one record): nothing to alias.
                _ => return,
            }
        }
        let ipv4_root = Child::Node(node);
        for (key, len) in [(0xffffu128 << 32, 96u8), (0x2002u128 << 112, 16u8)] {
            self.insert(key, len, ipv4_root);
        }
    }
}

fn write_node(out: &mut Vec<u8>, record_size: u16, left: u64, right: u64) {
    match record_size {
        24 => {
            out.extend_from_slice(&left.to_be_bytes()[5..]);
            out.extend_from_slice(&right.to_be_bytes()[5..]);
        }
        28 => {
            out.extend_from_slice(&left.to_be_bytes()[5..]);
            out.push((((left >> 24) & 0x0F) << 4) as u8 | ((right >> 24) & 0x0F) as u8);
            out.extend_from_slice(&right.to_be_bytes()[5..]);
        }
        _ => {
            out.extend_from_slice(&left.to_be_bytes()[4..]);
            out.extend_from_slice(&right.to_be_bytes()[4..]);
        }
    }
}

// Type numbers of the data section.
const T_POINTER: u8 = 1;
const T_STRING: u8 = 2;
const T_DOUBLE: u8 = 3;
const T_BYTES: u8 = 4;
const T_U16: u8 = 5;
const T_U32: u8 = 6;
const T_MAP: u8 = 7;
const T_I32: u8 = 8;
const T_U64: u8 = 9;
const T_U128: u8 = 10;
const T_ARRAY: u8 = 11;
const T_BOOL: u8 = 14;
const T_FLOAT: u8 = 15;

/// Writes a control byte (and the extended-type byte and size bytes it needs).
fn write_control(out: &mut Vec<u8>, type_num: u8, size: usize) -> Result<(), WriteError> {
    let five: u8 = if size < 29 {
        size as u8
    } else if size < 285 {
        29
    } else if size < 65_821 {
        30
    } else if size <= MAX_PAYLOAD {
        31
    } else {
        return Err(WriteError::TooLarge(size));
    };
    if type_num <= 7 {
        out.push((type_num << 5) | five);
    } else {
        out.push(five);
        out.push(type_num - 7);
    }
    match five {
        29 => out.push((size - 29) as u8),
        30 => out.extend_from_slice(&((size - 285) as u16).to_be_bytes()),
        31 => out.extend_from_slice(&((size - 65_821) as u32).to_be_bytes()[1..]),
        _ => {}
    }
    Ok(())
}

/// Big-endian bytes without leading zeros (zero is written with no payload).
fn trimmed(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn write_uint(out: &mut Vec<u8>, type_num: u8, be: &[u8]) -> Result<(), WriteError> {
    let payload = trimmed(be);
    write_control(out, type_num, payload.len())?;
    out.extend_from_slice(payload);
    Ok(())
}

/// Called for each string: may write a pointer instead and return true.
type StringHook<'h> = dyn FnMut(&str, &mut Vec<u8>) -> Result<bool, WriteError> + 'h;

/// Encodes a value with no pointers (used for the metadata and as the dedup key).
fn encode_plain(value: &MmdbValue, out: &mut Vec<u8>) -> Result<(), WriteError> {
    encode(value, out, &mut |_, _| Ok(false))
}

/// Encodes `value`; `string_hook(text, out)` may write a pointer instead of a string and return
/// true.
fn encode(
    value: &MmdbValue,
    out: &mut Vec<u8>,
    string_hook: &mut StringHook<'_>,
) -> Result<(), WriteError> {
    match value {
        MmdbValue::String(s) => write_string(s, out, string_hook)?,
        MmdbValue::Map(pairs) => {
            write_control(out, T_MAP, pairs.len())?;
            for (k, v) in pairs {
                write_string(k, out, string_hook)?;
                encode(v, out, string_hook)?;
            }
        }
        MmdbValue::Array(items) => {
            write_control(out, T_ARRAY, items.len())?;
            for v in items {
                encode(v, out, string_hook)?;
            }
        }
        MmdbValue::Double(d) => {
            write_control(out, T_DOUBLE, 8)?;
            out.extend_from_slice(&d.to_be_bytes());
        }
        MmdbValue::Float(f) => {
            write_control(out, T_FLOAT, 4)?;
            out.extend_from_slice(&f.to_be_bytes());
        }
        MmdbValue::Bytes(b) => {
            write_control(out, T_BYTES, b.len())?;
            out.extend_from_slice(b);
        }
        MmdbValue::U16(v) => write_uint(out, T_U16, &v.to_be_bytes())?,
        MmdbValue::U32(v) => write_uint(out, T_U32, &v.to_be_bytes())?,
        MmdbValue::U64(v) => write_uint(out, T_U64, &v.to_be_bytes())?,
        MmdbValue::U128(v) => write_uint(out, T_U128, &v.to_be_bytes())?,
        MmdbValue::I32(v) => {
            if *v >= 0 {
                write_uint(out, T_I32, &v.to_be_bytes())?;
            } else {
                // Two's complement needs the sign bit: always four bytes.
                write_control(out, T_I32, 4)?;
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        MmdbValue::Bool(b) => write_control(out, T_BOOL, usize::from(*b))?,
    }
    Ok(())
}

fn write_string(
    s: &str,
    out: &mut Vec<u8>,
    string_hook: &mut StringHook<'_>,
) -> Result<(), WriteError> {
    if string_hook(s, out)? {
        return Ok(());
    }
    write_control(out, T_STRING, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Writes a pointer to `offset` (from the start of the data section), in its shortest form.
fn write_pointer(out: &mut Vec<u8>, offset: usize) {
    let base = T_POINTER << 5;
    if offset < 2048 {
        out.push(base | ((offset >> 8) & 0x07) as u8);
        out.push(offset as u8);
    } else if offset < 2048 + (1 << 19) {
        let v = offset - 2048;
        out.push(base | (1 << 3) | ((v >> 16) & 0x07) as u8);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if offset < 526_336 + (1 << 27) {
        let v = offset - 526_336;
        out.push(base | (2 << 3) | ((v >> 24) & 0x07) as u8);
        out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
    } else {
        out.push(base | (3 << 3));
        out.extend_from_slice(&(offset as u32).to_be_bytes());
    }
}

/// The data section being written.
struct DataSection {
    bytes: Vec<u8>,
    /// Offsets of strings already written, when pointers are used.
    strings: Option<HashMap<String, usize>>,
}

impl DataSection {
    fn new(pointers: bool) -> Self {
        DataSection {
            bytes: Vec::new(),
            strings: pointers.then(HashMap::new),
        }
    }

    /// Appends a record; returns its offset in the data section.
    fn write_value(&mut self, value: &MmdbValue) -> Result<usize, WriteError> {
        let offset = self.bytes.len();
        let mut out = std::mem::take(&mut self.bytes);
        let result = match &mut self.strings {
            None => encode_plain(value, &mut out),
            Some(strings) => encode(value, &mut out, &mut |s, out| {
                // Only strings long enough to save space are shared (a pointer is 2-5 bytes).
                if s.len() < 3 {
                    return Ok(false);
                }
                if let Some(&at) = strings.get(s) {
                    write_pointer(out, at);
                    return Ok(true);
                }
                strings.insert(s.to_owned(), out.len());
                Ok(false)
            }),
        };
        self.bytes = out;
        result.map(|()| offset)
    }
}

/// Builds a GeoLite2-City style record (the layout of GeoLite2-City, GeoIP2-City and DB-IP
/// "lite" city databases; also valid for the Country databases when `city`/`location` are empty).
#[derive(Debug, Clone, Default)]
pub struct CityRecord<'a> {
    /// `continent.code`, e.g. `"EU"`.
    pub continent_code: Option<&'a str>,
    /// `continent.names` as `(language, name)` pairs.
    pub continent_names: &'a [(&'a str, &'a str)],
    /// `country.iso_code`, e.g. `"DE"`.
    pub country_iso_code: Option<&'a str>,
    /// `country.names`.
    pub country_names: &'a [(&'a str, &'a str)],
    /// `registered_country.iso_code` (written with the country's names).
    pub registered_country_iso_code: Option<&'a str>,
    /// `subdivisions[0].iso_code`, e.g. `"BE"`.
    pub subdivision_iso_code: Option<&'a str>,
    /// `subdivisions[0].names`.
    pub subdivision_names: &'a [(&'a str, &'a str)],
    /// `city.names`.
    pub city_names: &'a [(&'a str, &'a str)],
    /// `postal.code`.
    pub postal_code: Option<&'a str>,
    /// `location.latitude`, `location.longitude`.
    pub location: Option<(f64, f64)>,
    /// `location.time_zone`.
    pub time_zone: Option<&'a str>,
    /// Whether `country.is_in_european_union` is written as true.
    pub in_eu: bool,
}

impl CityRecord<'_> {
    /// The record as a data-section value, with the extra fields real databases carry
    /// (`geoname_id`, `accuracy_radius`, ...) so that readers must skip them.
    pub fn to_value(&self) -> MmdbValue {
        let mut top = Vec::new();
        if !self.city_names.is_empty() {
            top.push((
                "city".to_owned(),
                MmdbValue::map([
                    ("geoname_id", MmdbValue::U32(2_950_159)),
                    ("names", MmdbValue::names(self.city_names)),
                ]),
            ));
        }
        if let Some(code) = self.continent_code {
            top.push((
                "continent".to_owned(),
                MmdbValue::map([
                    ("code", MmdbValue::string(code)),
                    ("geoname_id", MmdbValue::U32(6_255_148)),
                    ("names", MmdbValue::names(self.continent_names)),
                ]),
            ));
        }
        let country = |iso: &str| {
            let mut c = vec![("geoname_id".to_owned(), MmdbValue::U32(2_921_044))];
            if self.in_eu {
                c.push(("is_in_european_union".to_owned(), MmdbValue::Bool(true)));
            }
            c.push(("iso_code".to_owned(), MmdbValue::string(iso)));
            c.push(("names".to_owned(), MmdbValue::names(self.country_names)));
            MmdbValue::Map(c)
        };
        if let Some(iso) = self.country_iso_code {
            top.push(("country".to_owned(), country(iso)));
        }
        if self.location.is_some() || self.time_zone.is_some() {
            let mut loc = vec![("accuracy_radius".to_owned(), MmdbValue::U16(200))];
            if let Some((lat, lon)) = self.location {
                loc.push(("latitude".to_owned(), MmdbValue::Double(lat)));
                loc.push(("longitude".to_owned(), MmdbValue::Double(lon)));
            }
            if let Some(tz) = self.time_zone {
                loc.push(("time_zone".to_owned(), MmdbValue::string(tz)));
            }
            top.push(("location".to_owned(), MmdbValue::Map(loc)));
        }
        if let Some(code) = self.postal_code {
            top.push((
                "postal".to_owned(),
                MmdbValue::map([("code", MmdbValue::string(code))]),
            ));
        }
        if let Some(iso) = self.registered_country_iso_code {
            top.push(("registered_country".to_owned(), country(iso)));
        }
        if let Some(iso) = self.subdivision_iso_code {
            top.push((
                "subdivisions".to_owned(),
                MmdbValue::Array(vec![MmdbValue::map([
                    ("geoname_id", MmdbValue::U32(2_950_157)),
                    ("iso_code", MmdbValue::string(iso)),
                    ("names", MmdbValue::names(self.subdivision_names)),
                ])]),
            ));
        }
        MmdbValue::Map(top)
    }
}

/// A GeoLite2-ASN style record.
pub fn asn_record(number: u32, organization: &str) -> MmdbValue {
    MmdbValue::map([
        ("autonomous_system_number", MmdbValue::U32(number)),
        (
            "autonomous_system_organization",
            MmdbValue::string(organization),
        ),
    ])
}

/// Parses a network for fixtures; panics on a typo (test code only).
pub fn net(text: &str) -> IpNet {
    match text.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match text.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(e) => panic!("bad fixture network {text:?}: {e}"),
        },
    }
}

/// A tiny deterministic generator (xorshift64*) for random fixtures: the same seed gives the
/// same networks and addresses on every run, and tests need no extra crate.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0; slightly biased, which fixtures do not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(type_num: u8, size: usize) -> Vec<u8> {
        let mut v = Vec::new();
        write_control(&mut v, type_num, size).unwrap();
        v
    }

    #[test]
    fn control_bytes_follow_the_spec_examples() {
        assert_eq!(control(T_STRING, 2), [0b0100_0010]);
        assert_eq!(control(T_STRING, 28), [0b0101_1100]);
        assert_eq!(control(T_STRING, 80), [0b0101_1101, 51]);
        assert_eq!(control(T_STRING, 13_392), [0b0101_1110, 0x33, 0x33]);
        assert_eq!(
            control(T_STRING, 3_421_264),
            [0b0101_1111, 0x33, 0x33, 0x33]
        );
        assert_eq!(control(T_U128, 3), [0b0000_0011, 0b0000_0011]);
        assert_eq!(control(T_ARRAY, 0), [0, 4]);
        assert!(matches!(
            write_control(&mut Vec::new(), T_STRING, MAX_PAYLOAD + 1),
            Err(WriteError::TooLarge(_))
        ));
    }

    #[test]
    fn pointers_use_the_shortest_form() {
        let p = |o| {
            let mut v = Vec::new();
            write_pointer(&mut v, o);
            v
        };
        assert_eq!(p(0x123), [0x21, 0x23]);
        assert_eq!(p(2048), [0x28, 0, 0]);
        assert_eq!(p(526_336), [0x30, 0, 0, 0]);
        assert_eq!(p(526_336 + (1 << 27)), [0x38, 0x08, 0x08, 0x08, 0x00]);
    }

    #[test]
    fn node_layouts() {
        let mut v = Vec::new();
        write_node(&mut v, 24, 0x010203, 0x040506);
        assert_eq!(v, [1, 2, 3, 4, 5, 6]);
        v.clear();
        write_node(&mut v, 28, 0x0A01_0203, 0x0B04_0506);
        assert_eq!(v, [1, 2, 3, 0xAB, 4, 5, 6]);
        v.clear();
        write_node(&mut v, 32, 0x0102_0304, 0x0506_0708);
        assert_eq!(v, [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
