//! The matcher index: every active indicator in compact, kind-specific tables.
//!
//! - Hashes are fixed-size byte arrays in hash sets (an MD5 is 16 bytes, not a 32-char String).
//! - Addresses and networks are integers (`u32`, `u128`) in one hash map per prefix length
//!   present. A lookup masks the address once per length present — a handful in real feeds
//!   (/32, /24, a few others) — and probes that map: a few cache misses in all, where a binary
//!   trie would chase up to 32 (128) pointers, and no node overhead per network.
//! - Domains match by suffix at label boundaries: `a.b.evil.com` probes `a.b.evil.com`,
//!   `b.evil.com`, `evil.com`, `com`; `notevil.com` never probes `evil.com`.
//! - Host names, URLs, file names, e-mail addresses, user agents match exactly (normalized);
//!   registry keys match the key and every key above it.

use std::hash::Hash;
use std::net::IpAddr;

use dozor_event::EventFields;
use rustc_hash::FxHashMap;

use crate::extract::{Observable, observables};
use crate::normalize::{
    Net, address, decode_hex, mask_v4, mask_v6, normalize, normalize_registry, normalize_url,
    parse_net, strip_scheme, with_lowercase,
};
use crate::{IntelError, Ioc, IocKind};

/// The caller's number for an indicator (a position in its list, a row id below 2^31).
pub type IocId = u32;

/// A map slot: an id, or (high bit set) the index of a list of ids in `Ids`.
const MULTI: u32 = 1 << 31;

/// Per-prefix-length maps of masked addresses, longest prefix first.
#[derive(Debug)]
pub(crate) struct PrefixTable<A> {
    lens: Vec<u8>,
    maps: Vec<FxHashMap<A, u32>>,
}

impl<A> Default for PrefixTable<A> {
    fn default() -> Self {
        PrefixTable {
            lens: Vec::new(),
            maps: Vec::new(),
        }
    }
}

pub(crate) trait Addr: Copy + Hash + Eq {
    fn mask(self, len: u8) -> Self;
}
impl Addr for u32 {
    fn mask(self, len: u8) -> Self {
        mask_v4(self, len)
    }
}
impl Addr for u128 {
    fn mask(self, len: u8) -> Self {
        mask_v6(self, len)
    }
}

impl<A: Addr> PrefixTable<A> {
    fn map_for(&mut self, len: u8) -> &mut FxHashMap<A, u32> {
        let at = match self.lens.iter().position(|l| *l <= len) {
            Some(i) if self.lens[i] == len => i,
            Some(i) => {
                self.lens.insert(i, len);
                self.maps.insert(i, FxHashMap::default());
                i
            }
            None => {
                self.lens.push(len);
                self.maps.push(FxHashMap::default());
                self.lens.len() - 1
            }
        };
        &mut self.maps[at]
    }

    /// Every network containing `addr` with a prefix no longer than `max_len`.
    pub(crate) fn lookup(&self, addr: A, max_len: u8, mut found: impl FnMut(u8, u32)) {
        for (len, map) in self.lens.iter().zip(&self.maps) {
            if *len > max_len {
                continue;
            }
            if let Some(slot) = map.get(&addr.mask(*len)) {
                found(*len, *slot);
            }
        }
    }

    fn shrink(&mut self) {
        self.maps.iter_mut().for_each(FxHashMap::shrink_to_fit);
    }

    fn len(&self) -> usize {
        self.maps.iter().map(FxHashMap::len).sum()
    }
}

/// IPv4 and IPv6 networks (single addresses are full-length prefixes).
#[derive(Debug, Default)]
pub(crate) struct NetTable {
    v4: PrefixTable<u32>,
    v6: PrefixTable<u128>,
}

impl NetTable {
    pub(crate) fn insert(&mut self, multi: &mut Ids, net: Net, id: u32) {
        match net {
            Net::V4(a, len) => multi.add(self.v4.map_for(len), a, id),
            Net::V6(a, len) => multi.add(self.v6.map_for(len), a, id),
        }
    }

    /// Slots of every network containing `net` (whole, when `net` is a network).
    pub(crate) fn lookup(&self, net: Net, mut found: impl FnMut(bool, u32)) {
        match net {
            Net::V4(a, max) => self.v4.lookup(a, max, |len, slot| found(len == 32, slot)),
            Net::V6(a, max) => self.v6.lookup(a, max, |len, slot| found(len == 128, slot)),
        }
    }

    fn shrink(&mut self) {
        self.v4.shrink();
        self.v6.shrink();
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

/// Id lists of keys held by more than one indicator (or warninglist).
#[derive(Debug, Default)]
pub(crate) struct Ids(Vec<Vec<u32>>);

impl Ids {
    pub(crate) fn add<K: Hash + Eq>(&mut self, map: &mut FxHashMap<K, u32>, key: K, id: u32) {
        debug_assert!(id & MULTI == 0);
        let Some(slot) = map.get_mut(&key) else {
            map.insert(key, id);
            return;
        };
        if *slot & MULTI != 0 {
            let list = &mut self.0[(*slot & !MULTI) as usize];
            if !list.contains(&id) {
                list.push(id);
            }
        } else if *slot != id {
            self.0.push(vec![*slot, id]);
            *slot = MULTI | (self.0.len() as u32 - 1);
        }
    }

    /// The ids behind a slot.
    pub(crate) fn get<'s>(&'s self, slot: &'s u32) -> &'s [u32] {
        if *slot & MULTI != 0 {
            self.0
                .get((*slot & !MULTI) as usize)
                .map_or(&[], Vec::as_slice)
        } else {
            std::slice::from_ref(slot)
        }
    }
}

/// Exact or suffix-matched text keys.
pub(crate) type TextMap = FxHashMap<Box<str>, u32>;

/// Probes `name` and each parent domain (`a.b.c`, `b.c`, `c`) in `map`.
pub(crate) fn lookup_suffixes<'m>(map: &'m TextMap, name: &str, mut found: impl FnMut(&'m u32)) {
    let mut rest = name;
    loop {
        if let Some(slot) = map.get(rest) {
            found(slot);
        }
        match rest.find('.') {
            Some(i) => rest = &rest[i + 1..],
            None => break,
        }
    }
}

/// An IOC found in an event: where, what was seen, what kind of IOC it matched, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'e> {
    /// The event field (its ECS path or Windows name).
    pub field: &'static str,
    /// The observed value: the field's value, or the part of it that matched (a file's base
    /// name, one hash of Sysmon's `Hashes`, a URL's host).
    pub value: &'e str,
    /// The kind of the matching indicators.
    pub kind: IocKind,
    pub ids: Vec<IocId>,
}

/// Builds an [`IocIndex`].
#[derive(Debug, Default)]
pub struct IocIndexBuilder {
    index: IocIndex,
}

/// The matcher index. Immutable once built; share it behind an `Arc` and rebuild to change.
#[derive(Debug, Default)]
pub struct IocIndex {
    ids: Ids,
    nets: NetTable,
    md5: FxHashMap<[u8; 16], u32>,
    sha1: FxHashMap<[u8; 20], u32>,
    sha256: FxHashMap<[u8; 32], u32>,
    sha512: FxHashMap<[u8; 64], u32>,
    imphash: FxHashMap<[u8; 16], u32>,
    ja3: FxHashMap<[u8; 16], u32>,
    domains: TextMap,
    hostnames: TextMap,
    urls: TextMap,
    filenames: TextMap,
    emails: TextMap,
    registry: TextMap,
    user_agents: TextMap,
}

fn hex_key<const N: usize>(kind: IocKind, value: &str) -> Result<[u8; N], IntelError> {
    decode_hex(value).ok_or_else(|| IntelError::InvalidValue {
        kind: kind.as_str().into(),
        value: value.into(),
        reason: format!("not {} hex digits", 2 * N),
    })
}

impl IocIndexBuilder {
    /// Adds an indicator from a raw value (normalized here).
    pub fn add(&mut self, id: IocId, kind: IocKind, raw: &str) -> Result<(), IntelError> {
        let n = normalize(kind, raw)?;
        self.add_normalized(id, n.kind, &n.value)
    }

    /// Adds an [`Ioc`] (its value is canonical already).
    pub fn add_ioc(&mut self, id: IocId, ioc: &Ioc) -> Result<(), IntelError> {
        self.add_normalized(id, ioc.kind, &ioc.value)
    }

    fn add_normalized(&mut self, id: IocId, kind: IocKind, value: &str) -> Result<(), IntelError> {
        if id & MULTI != 0 {
            return Err(IntelError::IdTooLarge(id));
        }
        let ix = &mut self.index;
        let ids = &mut ix.ids;
        let text = |map: &mut TextMap, ids: &mut Ids| ids.add(map, Box::from(value), id);
        match kind {
            IocKind::Ip | IocKind::Cidr => {
                let net = parse_net(value).map_err(|reason| IntelError::InvalidValue {
                    kind: kind.as_str().into(),
                    value: value.into(),
                    reason,
                })?;
                ix.nets.insert(ids, net, id);
            }
            IocKind::Md5 => ids.add(&mut ix.md5, hex_key(kind, value)?, id),
            IocKind::Sha1 => ids.add(&mut ix.sha1, hex_key(kind, value)?, id),
            IocKind::Sha256 => ids.add(&mut ix.sha256, hex_key(kind, value)?, id),
            IocKind::Sha512 => ids.add(&mut ix.sha512, hex_key(kind, value)?, id),
            IocKind::Imphash => ids.add(&mut ix.imphash, hex_key(kind, value)?, id),
            IocKind::Ja3 => ids.add(&mut ix.ja3, hex_key(kind, value)?, id),
            IocKind::Domain => text(&mut ix.domains, ids),
            IocKind::Hostname => text(&mut ix.hostnames, ids),
            IocKind::Url => text(&mut ix.urls, ids),
            IocKind::Filename => text(&mut ix.filenames, ids),
            IocKind::Email => text(&mut ix.emails, ids),
            IocKind::RegistryKey => text(&mut ix.registry, ids),
            IocKind::UserAgent => text(&mut ix.user_agents, ids),
        }
        Ok(())
    }

    pub fn build(mut self) -> IocIndex {
        let ix = &mut self.index;
        ix.nets.shrink();
        ix.md5.shrink_to_fit();
        ix.sha1.shrink_to_fit();
        ix.sha256.shrink_to_fit();
        ix.sha512.shrink_to_fit();
        ix.imphash.shrink_to_fit();
        ix.ja3.shrink_to_fit();
        for map in [
            &mut ix.domains,
            &mut ix.hostnames,
            &mut ix.urls,
            &mut ix.filenames,
            &mut ix.emails,
            &mut ix.registry,
            &mut ix.user_agents,
        ] {
            map.shrink_to_fit();
        }
        self.index
    }
}

impl IocIndex {
    pub fn builder() -> IocIndexBuilder {
        IocIndexBuilder::default()
    }

    /// An index of `iocs`, each identified by its position; bad ones are returned with theirs.
    pub fn from_iocs<'i>(
        iocs: impl IntoIterator<Item = &'i Ioc>,
    ) -> (IocIndex, Vec<(IocId, IntelError)>) {
        let mut builder = IocIndex::builder();
        let mut errors = Vec::new();
        for (id, ioc) in iocs.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            if let Err(e) = builder.add_ioc(id, ioc) {
                errors.push((id, e));
            }
        }
        (builder.build(), errors)
    }

    /// Number of distinct keys (indicator values) held.
    pub fn len(&self) -> usize {
        self.nets.len()
            + self.md5.len()
            + self.sha1.len()
            + self.sha256.len()
            + self.sha512.len()
            + self.imphash.len()
            + self.ja3.len()
            + [
                &self.domains,
                &self.hostnames,
                &self.urls,
                &self.filenames,
                &self.emails,
                &self.registry,
                &self.user_agents,
            ]
            .iter()
            .map(|m| m.len())
            .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `found` with the kind and ids of every indicator an observed value of `kind`
    /// matches: an IP hits ip and cidr indicators, a domain or host name hits hostname
    /// indicators exactly and domain indicators by suffix, a URL hits URL indicators with or
    /// without its scheme, a registry key hits it and every key above it. Observed values
    /// need not be normalized; values that cannot be an indicator match nothing.
    pub fn lookup(&self, kind: IocKind, value: &str, found: &mut dyn FnMut(IocKind, &[IocId])) {
        let value = value.trim();
        let ids = &self.ids;
        let mut hex = |map_get: Option<&u32>| {
            if let Some(slot) = map_get {
                found(kind, ids.get(slot));
            }
        };
        match kind {
            IocKind::Ip | IocKind::Cidr => {
                let net = match value.parse::<IpAddr>() {
                    Ok(ip) => address(ip),
                    Err(_) => match parse_net(value) {
                        Ok(net) => net,
                        Err(_) => return,
                    },
                };
                self.nets.lookup(net, |single, slot| {
                    let kind = if single { IocKind::Ip } else { IocKind::Cidr };
                    found(kind, ids.get(&slot));
                });
            }
            IocKind::Md5 => hex(decode_hex(value).and_then(|k| self.md5.get(&k))),
            IocKind::Sha1 => hex(decode_hex(value).and_then(|k| self.sha1.get(&k))),
            IocKind::Sha256 => hex(decode_hex(value).and_then(|k| self.sha256.get(&k))),
            IocKind::Sha512 => hex(decode_hex(value).and_then(|k| self.sha512.get(&k))),
            IocKind::Imphash => hex(decode_hex(value).and_then(|k| self.imphash.get(&k))),
            IocKind::Ja3 => hex(decode_hex(value).and_then(|k| self.ja3.get(&k))),
            IocKind::Domain | IocKind::Hostname => {
                let name = value.strip_suffix('.').unwrap_or(value);
                with_lowercase(name, |name| {
                    if let Some(slot) = self.hostnames.get(name) {
                        found(IocKind::Hostname, ids.get(slot));
                    }
                    lookup_suffixes(&self.domains, name, |slot| {
                        found(IocKind::Domain, ids.get(slot))
                    });
                });
            }
            IocKind::Url => {
                let Ok(url) = normalize_url(value) else {
                    return;
                };
                if let Some(slot) = self.urls.get(url.as_ref()) {
                    found(IocKind::Url, ids.get(slot));
                }
                let bare = strip_scheme(&url);
                if bare.len() != url.len()
                    && let Some(slot) = self.urls.get(bare)
                {
                    found(IocKind::Url, ids.get(slot));
                }
            }
            IocKind::Filename | IocKind::Email => {
                let map = if kind == IocKind::Email {
                    &self.emails
                } else {
                    &self.filenames
                };
                with_lowercase(value, |v| {
                    if let Some(slot) = map.get(v) {
                        found(kind, ids.get(slot));
                    }
                });
            }
            IocKind::UserAgent => {
                if let Some(slot) = self.user_agents.get(value) {
                    found(kind, ids.get(slot));
                }
            }
            IocKind::RegistryKey => {
                if self.registry.is_empty() {
                    return;
                }
                let Ok(key) = normalize_registry(value) else {
                    return;
                };
                let mut rest = key.as_str();
                loop {
                    if let Some(slot) = self.registry.get(rest) {
                        found(kind, ids.get(slot));
                    }
                    match rest.rfind('\\') {
                        Some(i) => rest = &rest[..i],
                        None => break,
                    }
                }
            }
        }
    }

    /// The ids of every indicator an observed value matches (see [`IocIndex::lookup`]).
    pub fn lookup_ids(&self, kind: IocKind, value: &str) -> Vec<IocId> {
        let mut out = Vec::new();
        self.lookup(kind, value, &mut |_, ids| out.extend_from_slice(ids));
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every indicator the event's observables match (see [`observables`] for the fields),
    /// one [`Match`] per field, value and indicator kind; a value seen under several names
    /// (`destination.ip` and Sysmon's `DestinationIp`) is reported once, under the first.
    /// Allocates only for matches.
    pub fn match_event<'e, E: EventFields + ?Sized>(&self, event: &'e E) -> Vec<Match<'e>> {
        let mut out: Vec<Match<'e>> = Vec::new();
        if self.is_empty() {
            return out;
        }
        observables(event, &mut |obs: Observable<'e>| {
            self.lookup(obs.kind, obs.value, &mut |kind, ids| {
                let seen = out
                    .iter()
                    .any(|m| m.kind == kind && m.value == obs.value && m.ids == ids);
                if !seen {
                    out.push(Match {
                        field: obs.field,
                        value: obs.value,
                        kind,
                        ids: ids.to_vec(),
                    });
                }
            });
        });
        out
    }
}
