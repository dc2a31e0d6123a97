//! MISP warninglists: lists of known-benign values (public resolvers, cloud ranges, top
//! domains, empty-file hashes …) that flag an indicator as a likely false positive.
//!
//! The lists are given as JSON text (the `list.json` of each list); reading files is the
//! caller's business. All lists share one matcher per list type: networks in the same
//! per-prefix-length maps as the IOC index, host names by suffix, strings exactly, substrings
//! by one Aho-Corasick automaton, regexes by one `RegexSet`.

use std::net::IpAddr;

use aho_corasick::AhoCorasick;
use regex::RegexSet;
use serde::Deserialize;

use crate::index::{Ids, NetTable, TextMap, lookup_suffixes};
use crate::kind::{misp_parts, split_misp_value};
use crate::normalize::{address, parse_net, url_parts, with_lowercase};
use crate::{IntelError, IocKind, KindSet};

/// How a list's entries match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarninglistType {
    /// Addresses and networks; a value hits when an entry contains it.
    Cidr,
    /// Exact values (case-insensitive); an entry with a leading dot also covers the names
    /// under it (MISP's lists write `.google.com` for "any google.com host").
    String,
    /// Host names; a value hits when it is an entry or a name under one.
    Hostname,
    /// A value hits when it contains an entry (case-insensitive).
    Substring,
    /// PCRE-style `/pattern/flags` entries (flags `i`, `m`, `s`, `x`; `g`, `u` ignored).
    Regex,
}

/// A loaded list, for display.
#[derive(Debug, Clone)]
pub struct Warninglist {
    pub name: String,
    pub description: String,
    pub version: u64,
    pub list_type: WarninglistType,
    /// MISP attribute types the list applies to (empty: all).
    pub matching_attributes: Vec<String>,
    /// Entries loaded (bad entries are reported and left out).
    pub entries: usize,
    kinds: KindSet,
}

impl Warninglist {
    /// Whether the list applies to a value of `kind` (or of the MISP type `misp_type`).
    fn applies(&self, misp_type: &str, kind: Option<IocKind>) -> bool {
        self.matching_attributes.is_empty()
            || kind.is_some_and(|k| self.kinds.contains(k))
            || self.matching_attributes.iter().any(|t| t == misp_type)
    }
}

#[derive(Deserialize)]
struct RawList {
    name: String,
    description: String,
    version: u64,
    #[serde(rename = "type")]
    list_type: WarninglistType,
    #[serde(default)]
    matching_attributes: Vec<String>,
    list: Vec<String>,
}

/// Every loaded warninglist and the matchers over their entries.
#[derive(Debug, Default)]
pub struct Warninglists {
    lists: Vec<Warninglist>,
    ids: Ids,
    nets: NetTable,
    hostnames: TextMap,
    strings: TextMap,
    string_suffixes: TextMap,
    substrings: Option<AhoCorasick>,
    /// Slot (into `ids`) of each substring pattern.
    substring_slots: Vec<u32>,
    regexes: Option<RegexSet>,
    /// List of each regex in `regexes`.
    regex_lists: Vec<u32>,
}

/// A PCRE-style `/pattern/flags` as a Rust regex.
fn convert_regex(entry: &str) -> Result<String, String> {
    let delim = entry
        .chars()
        .next()
        .filter(|c| !c.is_alphanumeric() && *c != '\\' && !c.is_whitespace())
        .ok_or("a regex entry is written /pattern/flags")?;
    let body = &entry[delim.len_utf8()..];
    let end = body
        .rfind(delim)
        .ok_or_else(|| format!("no closing `{delim}`"))?;
    let (pattern, flags) = (&body[..end], &body[end + delim.len_utf8()..]);
    let mut inline = String::new();
    for f in flags.chars() {
        match f {
            'i' | 'm' | 's' | 'x' => inline.push(f),
            'g' | 'u' | 'D' => {}
            other => return Err(format!("unsupported regex flag `{other}`")),
        }
    }
    Ok(if inline.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{inline}){pattern}")
    })
}

impl Warninglists {
    /// Loads lists from `(origin, list.json text)` pairs. A list that does not parse is
    /// reported (an error naming its origin and why) and the others load; a bad entry is
    /// reported and the rest of its list loads.
    pub fn load<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> (Warninglists, Vec<IntelError>) {
        let mut wl = Warninglists::default();
        let mut errors = Vec::new();
        let mut substrings: Vec<String> = Vec::new();
        let mut substring_index: TextMap = TextMap::default();
        let mut regexes: Vec<String> = Vec::new();
        for (origin, text) in sources {
            let error = |reason: String| IntelError::Warninglist {
                origin: origin.to_owned(),
                reason,
            };
            let raw: RawList = match serde_json::from_slice(text) {
                Ok(raw) => raw,
                Err(e) => {
                    errors.push(error(e.to_string()));
                    continue;
                }
            };
            let id = wl.lists.len() as u32;
            let mut kinds = KindSet::default();
            for t in &raw.matching_attributes {
                for kind in misp_parts(t).into_iter().flatten().flatten() {
                    kinds.insert(*kind);
                    if *kind == IocKind::Ip {
                        kinds.insert(IocKind::Cidr);
                    }
                }
            }
            let mut entries = 0;
            for entry in &raw.list {
                let entry = entry.trim();
                if entry.is_empty() {
                    continue;
                }
                let added = match raw.list_type {
                    WarninglistType::Cidr => parse_net(entry)
                        .map(|net| wl.nets.insert(&mut wl.ids, net, id))
                        .map_err(|e| format!("entry `{entry}`: {e}")),
                    WarninglistType::Hostname => {
                        let name = entry.trim_matches('.').to_lowercase();
                        if name.is_empty() {
                            Err(format!("entry `{entry}` is no host name"))
                        } else {
                            wl.ids.add(&mut wl.hostnames, name.into_boxed_str(), id);
                            Ok(())
                        }
                    }
                    WarninglistType::String => {
                        let lower = entry.to_lowercase();
                        match lower.strip_prefix('.') {
                            Some(parent) => {
                                let parent = parent.trim_end_matches('.');
                                wl.ids.add(&mut wl.string_suffixes, parent.into(), id)
                            }
                            None => wl.ids.add(&mut wl.strings, lower.into_boxed_str(), id),
                        }
                        Ok(())
                    }
                    WarninglistType::Substring => {
                        let lower = entry.to_lowercase();
                        if !substring_index.contains_key(lower.as_str()) {
                            substrings.push(lower.clone());
                        }
                        wl.ids.add(&mut substring_index, lower.into_boxed_str(), id);
                        Ok(())
                    }
                    WarninglistType::Regex => convert_regex(entry)
                        .and_then(|re| {
                            regex::Regex::new(&re).map_err(|e| e.to_string())?;
                            regexes.push(re);
                            wl.regex_lists.push(id);
                            Ok(())
                        })
                        .map_err(|e| format!("entry `{entry}`: {e}")),
                };
                match added {
                    Ok(()) => entries += 1,
                    Err(reason) => errors.push(error(reason)),
                }
            }
            wl.lists.push(Warninglist {
                name: raw.name,
                description: raw.description,
                version: raw.version,
                list_type: raw.list_type,
                matching_attributes: raw.matching_attributes,
                entries,
                kinds,
            });
        }
        if !substrings.is_empty() {
            match AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&substrings)
            {
                Ok(ac) => {
                    wl.substring_slots = substrings
                        .iter()
                        .map(|p| substring_index.get(p.as_str()).copied().unwrap_or(0))
                        .collect();
                    wl.substrings = Some(ac);
                }
                Err(e) => errors.push(IntelError::Warninglist {
                    origin: "substring lists".into(),
                    reason: e.to_string(),
                }),
            }
        }
        if !regexes.is_empty() {
            match RegexSet::new(&regexes) {
                Ok(set) => wl.regexes = Some(set),
                Err(e) => errors.push(IntelError::Warninglist {
                    origin: "regex lists".into(),
                    reason: e.to_string(),
                }),
            }
        }
        (wl, errors)
    }

    pub fn lists(&self) -> &[Warninglist] {
        &self.lists
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Names of the lists `value` is on. `misp_type_or_kind` is a MISP attribute type
    /// (composite values are split and each part checked, as MISP does) or a Dozor kind
    /// name (`ip`, `domain`, `sha256`, …). A list applies when its `matching_attributes`
    /// name the MISP type or a type of the same kind (`ip-src` and `ip-dst` lists both cover
    /// an `ip`), or name nothing.
    pub fn hits(&self, misp_type_or_kind: &str, value: &str) -> Vec<&str> {
        let parts: Vec<(Option<IocKind>, &str)> = match split_misp_value(misp_type_or_kind, value) {
            Ok(parts) => parts.into_iter().map(|(k, v)| (Some(k), v)).collect(),
            Err(_) => vec![(IocKind::from_name(misp_type_or_kind), value)],
        };
        let mut hit: Vec<u32> = Vec::new();
        for (kind, part) in parts {
            let part = part.trim();
            let mut candidates: Vec<u32> = Vec::new();
            self.candidates(kind, part, &mut |slot| {
                candidates.extend_from_slice(self.ids.get(slot))
            });
            hit.extend(candidates.into_iter().filter(|&id| {
                self.lists
                    .get(id as usize)
                    .is_some_and(|l| l.applies(misp_type_or_kind, kind))
            }));
        }
        hit.sort_unstable();
        hit.dedup();
        hit.iter()
            .filter_map(|&id| self.lists.get(id as usize).map(|l| l.name.as_str()))
            .collect()
    }

    /// Slots of every entry `value` hits, whatever the lists apply to.
    fn candidates(&self, kind: Option<IocKind>, value: &str, found: &mut dyn FnMut(&u32)) {
        match kind {
            Some(IocKind::Ip | IocKind::Cidr) => {
                let net = match value.parse::<IpAddr>() {
                    Ok(ip) => Some(address(ip)),
                    Err(_) => parse_net(value).ok(),
                };
                if let Some(net) = net {
                    self.nets.lookup(net, |_, slot| found(&slot));
                }
            }
            Some(IocKind::Domain | IocKind::Hostname) => self.names(value, found),
            Some(IocKind::Url) => {
                if let Some(parts) = url_parts(value) {
                    self.names(parts.host, found);
                }
                self.exact(value, found);
            }
            _ => self.exact(value, found),
        }
        if let Some(ac) = &self.substrings {
            for m in ac.find_overlapping_iter(value) {
                if let Some(slot) = self.substring_slots.get(m.pattern().as_usize()) {
                    found(slot);
                }
            }
        }
        if let Some(set) = &self.regexes {
            for i in set.matches(value).iter() {
                if let Some(list) = self.regex_lists.get(i) {
                    found(list);
                }
            }
        }
    }

    fn names(&self, name: &str, found: &mut dyn FnMut(&u32)) {
        let name = name.strip_suffix('.').unwrap_or(name);
        with_lowercase(name, |name| {
            lookup_suffixes(&self.hostnames, name, &mut *found);
            lookup_suffixes(&self.string_suffixes, name, &mut *found);
            if let Some(slot) = self.strings.get(name) {
                found(slot);
            }
        });
    }

    fn exact(&self, value: &str, found: &mut dyn FnMut(&u32)) {
        with_lowercase(value, |v| {
            if let Some(slot) = self.strings.get(v) {
                found(slot);
            }
        });
    }
}
