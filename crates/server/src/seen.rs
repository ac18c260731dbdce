//! What every device fetched last, in memory: the source of "last seen" and "reported firmware"
//! for device lists and the fleet summary, so neither reads 100,000 rows from the store.
//!
//! Loaded from the store at start (`device_seen`, which the inventory load already joins) and
//! kept current by the fetch log's writer as it takes each fetch record, before the store write:
//! after [`crate::fetchlog::FetchLog::flush`] it holds every fetch recorded so far. It merges
//! like the store does: the latest fetch wins, and a fetch that reports no model or firmware
//! keeps the ones reported before.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use sipprov_model::{Mac, MacMap};
use sipprov_store::FetchInfo;

/// Most devices remembered; fetch records past it for new MACs are not indexed (the store still
/// has them). Far above any inventory this server is sized for.
const MAX_DEVICES: usize = 2_000_000;

/// Most distinct texts (file name patterns, firmware and model names, non-hex hashes) kept
/// once for all devices; an entry needing one more keeps its own copies instead (see
/// [`Table::overflow`]). A fleet has a handful of each.
const MAX_NAMES: usize = 65_536;

/// "No text" in an entry's name fields.
const NONE: u32 = u32::MAX;

/// Where a file name had its device's MAC in lower-case (`001565aabbcc.cfg`) or upper-case hex
/// (`SEP001565AABBCC.cnf.xml`): file names are kept as patterns shared by every device.
const MAC_LOWER: char = '\u{1}';
const MAC_UPPER: char = '\u{2}';

/// The last fetch per device.
#[derive(Default)]
pub struct SeenIndex {
    table: RwLock<Table>,
}

/// The index itself. A million devices that all fetched are a million entries, so each is kept
/// small: a slot of 12 bytes in the map (MAC → position) and 80 bytes in a dense [`Chunked`] (the
/// hash as its 32 bytes, the address as 16, the texts as numbers into a shared list), where a
/// [`FetchInfo`] per map slot cost about 270 bytes and half-empty slots doubled that.
#[derive(Default)]
struct Table {
    slots: MacMap<u32>,
    entries: Chunked<Seen>,
    names: Names,
    /// Entries needing a text [`Names`] has no room for, kept whole (rare: a fleet reporting
    /// more than [`MAX_NAMES`] distinct firmware strings).
    overflow: MacMap<FetchInfo>,
    /// A file name's pattern being built (kept to reuse its buffer).
    scratch: String,
}

/// Entries a device fetching for the first time adds, in fixed chunks rather than one vector.
///
/// A vector grows by doubling: at half a million entries (42 MB) the next push allocated 84 MB
/// and copied the 42 MB into it while the old block was still alive, a step of the resident set
/// in the middle of a million-device campaign (a heap profile found the index's vector at 42 MB
/// of that campaign's peak). Chunks of [`CHUNK_ENTRIES`] (320 KiB) are added one at a time and
/// never move, so the index grows by at most one chunk at a time and holds at most one chunk
/// spare.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

/// Entries per chunk of [`Chunked`].
const CHUNK_ENTRIES: usize = 4096;

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Chunked<T> {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, value: T) {
        let chunk = self.len / CHUNK_ENTRIES;
        if chunk == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK_ENTRIES));
        }
        self.chunks[chunk].push(value);
        self.len += 1;
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK_ENTRIES)?.get(i % CHUNK_ENTRIES)
    }

    /// Removes entry `i`, the last entry taking its place (as `Vec::swap_remove`).
    fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let last_chunk = self.chunks.last_mut()?;
        let last = last_chunk.pop()?;
        if last_chunk.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        if i == self.len {
            return Some(last);
        }
        Some(std::mem::replace(&mut self[i], last))
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK_ENTRIES][i % CHUNK_ENTRIES]
    }
}

impl<T> std::ops::IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK_ENTRIES][i % CHUNK_ENTRIES]
    }
}

/// One device's last fetch, compact.
#[derive(Clone, Copy)]
struct Seen {
    at: i64,
    /// The content hash's 32 bytes when it is 64 lower-case hex digits (what the server
    /// computes); otherwise `hash` names the text.
    digest: [u8; 32],
    /// The source address (an IPv4 one as its IPv6-mapped form, with `v4` set).
    ip: [u8; 16],
    mac: Mac,
    v4: bool,
    file: u32,
    hash: u32,
    model: u32,
    firmware: u32,
}

/// Texts shared by entries, each kept once, by number.
#[derive(Default)]
struct Names {
    list: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Names {
    /// The number of `text`, added when new; `None` when the list is full.
    fn id(&mut self, text: &str) -> Option<u32> {
        if let Some(id) = self.ids.get(text) {
            return Some(*id);
        }
        if self.list.len() >= MAX_NAMES {
            return None;
        }
        let id = u32::try_from(self.list.len()).ok()?;
        let text: Arc<str> = Arc::from(text);
        self.list.push(Arc::clone(&text));
        self.ids.insert(text, id);
        Some(id)
    }

    /// An optional text's number (`NONE` for none); `None` when the list is full.
    fn opt_id(&mut self, text: Option<&str>) -> Option<u32> {
        text.map_or(Some(NONE), |t| self.id(t))
    }

    fn text(&self, id: u32) -> Option<&str> {
        self.list.get(usize::try_from(id).ok()?).map(|t| &**t)
    }
}

/// Writes `file` into `out` with `mac`'s hex replaced by a marker, so every device's
/// `<mac>.cfg` is one pattern. Reuses `out`'s buffer: this runs for every fetch recorded.
fn file_pattern(mac: Mac, file: &str, out: &mut String) {
    out.clear();
    let mut hex = [0u8; 12];
    // Infallible: 12 bytes for 6 bytes' hex.
    let _ = hex::encode_to_slice(mac.bytes(), &mut hex);
    for marker in [MAC_LOWER, MAC_UPPER] {
        if marker == MAC_UPPER {
            hex.make_ascii_uppercase();
        }
        let spelled = std::str::from_utf8(&hex).unwrap_or_default();
        if let Some(at) = file.find(spelled) {
            out.push_str(&file[..at]);
            out.push(marker);
            out.push_str(&file[at + 12..]);
            return;
        }
    }
    out.push_str(file);
}

/// The file name a pattern stands for with `mac`.
fn file_of_pattern(mac: Mac, pattern: &str) -> String {
    if pattern.contains(MAC_LOWER) {
        pattern.replacen(MAC_LOWER, &mac.to_string(), 1)
    } else if pattern.contains(MAC_UPPER) {
        pattern.replacen(MAC_UPPER, &mac.upper(), 1)
    } else {
        pattern.to_string()
    }
}

/// Whether `file` is what `pattern` stands for with `mac` (as [`file_of_pattern`] would spell
/// it), compared in place: every fetch recorded asks this. The markers are single bytes (control
/// characters), found by a byte search, and the MAC's digits are compared one by one with the
/// file's (an encoding of the MAC, two substring searches and a split were about 170
/// instructions per fetch).
fn pattern_names(mac: Mac, pattern: &str, file: &str) -> bool {
    let p = pattern.as_bytes();
    // The marker `file_of_pattern` replaces: the first lower-case one, else the first upper-case.
    let marker = |m: char| p.iter().position(|&b| char::from(b) == m);
    let (at, upper) = match marker(MAC_LOWER) {
        Some(at) => (at, false),
        None => match marker(MAC_UPPER) {
            Some(at) => (at, true),
            None => return pattern == file,
        },
    };
    let (before, after) = (&p[..at], &p[at + 1..]);
    let f = file.as_bytes();
    f.len() == before.len() + 12 + after.len()
        && f.starts_with(before)
        && f.ends_with(after)
        && spells_mac(&f[before.len()..before.len() + 12], mac, upper)
}

/// Whether the 12 bytes `hex` are `mac`'s hex digits, in lower or upper case as `upper` says.
fn spells_mac(hex: &[u8], mac: Mac, upper: bool) -> bool {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    hex.len() == 12
        && mac.bytes().iter().zip(hex.chunks_exact(2)).all(|(byte, pair)| {
            pair[0] == digits[usize::from(byte >> 4)] && pair[1] == digits[usize::from(byte & 0x0f)]
        })
}

fn ip_bytes(ip: IpAddr) -> ([u8; 16], bool) {
    match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), true),
        IpAddr::V6(v6) => (v6.octets(), false),
    }
}

impl Seen {
    fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.ip);
        match (self.v4, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => IpAddr::V4(v4),
            (true, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (false, _) => IpAddr::V6(v6),
        }
    }
}

/// What a fetch says, borrowed: what the index merges, and what the fetch log's writer keeps of
/// each device's latest fetch in a batch until its last-seen rows are written.
pub(crate) struct Fetch<'a> {
    pub(crate) mac: Mac,
    pub(crate) at: i64,
    pub(crate) ip: IpAddr,
    pub(crate) file: &'a str,
    pub(crate) hash: &'a str,
    /// `hash`'s 32 bytes when it is 64 lower-case hex digits, as [`sipprov_model::sha256_of_hex`] reads it (`None`
    /// for any other text): decoded once per rendering, so that a repeat compares 32 bytes, not
    /// 64 digits.
    pub(crate) digest: Option<[u8; 32]>,
    /// The model reported, if any (in a batch: on the device's latest row only).
    pub(crate) model: Option<&'a str>,
    /// The firmware reported, if any (as `model`).
    pub(crate) firmware: Option<&'a str>,
}

impl Table {
    fn len(&self) -> usize {
        self.entries.len() + self.overflow.len()
    }

    /// The compact entry for `fetch`, or `None` when a text does not fit in [`Names`]. `kept`:
    /// the model and firmware numbers to keep when the fetch names none.
    fn compact(&mut self, fetch: &Fetch<'_>, kept: (u32, u32)) -> Option<Seen> {
        let (ip, v4) = ip_bytes(fetch.ip);
        let (digest, hash) = match fetch.digest {
            Some(digest) => (digest, NONE),
            None => ([0; 32], self.names.id(fetch.hash)?),
        };
        let mut pattern = std::mem::take(&mut self.scratch);
        file_pattern(fetch.mac, fetch.file, &mut pattern);
        let file = self.names.id(&pattern);
        self.scratch = pattern;
        Some(Seen {
            at: fetch.at,
            digest,
            ip,
            mac: fetch.mac,
            v4,
            file: file?,
            hash,
            model: if fetch.model.is_none() { kept.0 } else { self.names.opt_id(fetch.model)? },
            firmware: if fetch.firmware.is_none() { kept.1 } else { self.names.opt_id(fetch.firmware)? },
        })
    }

    /// Sets (or adds) `mac`'s entry: a compact one, or one kept whole in the overflow.
    fn put(&mut self, mac: Mac, entry: Result<Seen, FetchInfo>) {
        match (entry, self.slots.get(&mac).copied()) {
            (Ok(seen), Some(slot)) => self.entries[slot as usize] = seen,
            (Ok(seen), None) => {
                // Positions fit: the table holds at most MAX_DEVICES entries.
                let Ok(slot) = u32::try_from(self.entries.len()) else { return };
                self.overflow.remove(&mac);
                self.slots.insert(mac, slot);
                self.entries.push(seen);
            }
            (Err(info), _) => {
                self.remove(mac);
                self.overflow.insert(mac, info);
            }
        }
    }

    /// Takes `mac` out (the last entry moves into its place, keeping the vector dense).
    fn remove(&mut self, mac: Mac) {
        self.overflow.remove(&mac);
        let Some(slot) = self.slots.remove(&mac) else { return };
        self.entries.swap_remove(slot as usize);
        if let Some(moved) = self.entries.get(slot as usize) {
            self.slots.insert(moved.mac, slot);
        }
    }

    fn get(&self, mac: Mac) -> Option<SeenRef<'_>> {
        if let Some(slot) = self.slots.get(&mac) {
            return Some(SeenRef(Entry::Compact(&self.entries[*slot as usize], &self.names)));
        }
        self.overflow.get(&mac).map(|info| SeenRef(Entry::Whole(info)))
    }

    /// True when merging `fetch` into `seen` would change only its time and address: the same
    /// file, content, model and firmware (a fetch naming none keeps the ones reported before,
    /// with `keep_reported`). The usual case under load, answered without hashing or allocating.
    fn names_the_same(&self, seen: &Seen, fetch: &Fetch<'_>, keep_reported: bool) -> bool {
        let names = &self.names;
        let same_text = |id: u32, text: Option<&str>| match text {
            None => keep_reported || id == NONE,
            Some(text) => id != NONE && names.text(id) == Some(text),
        };
        let same_hash = match seen.hash {
            NONE => fetch.digest == Some(seen.digest),
            id => names.text(id) == Some(fetch.hash),
        };
        same_hash
            && names.text(seen.file).is_some_and(|pattern| pattern_names(fetch.mac, pattern, fetch.file))
            && same_text(seen.model, fetch.model)
            && same_text(seen.firmware, fetch.firmware)
    }

    /// Merges a fetch the way the store does: the latest wins (`strictly_newer` for another
    /// node's record), and with `keep_reported` a fetch naming no model or firmware keeps those
    /// reported before.
    fn merge(&mut self, fetch: Fetch<'_>, strictly_newer: bool, keep_reported: bool) {
        let mut kept = (NONE, NONE);
        let whole_reported;
        let mut fetch = fetch;
        let too_old = |at: i64| at > fetch.at || (strictly_newer && at == fetch.at);
        // One look-up of the slot serves the usual case: the device fetched the same file
        // before, and only the time and address change.
        if let Some(&slot) = self.slots.get(&fetch.mac) {
            let seen = &self.entries[slot as usize];
            if too_old(seen.at) {
                return;
            }
            if self.names_the_same(seen, &fetch, keep_reported) {
                let (ip, v4) = ip_bytes(fetch.ip);
                let entry = &mut self.entries[slot as usize];
                (entry.at, entry.ip, entry.v4) = (fetch.at, ip, v4);
                return;
            }
            if keep_reported {
                kept = (seen.model, seen.firmware);
            }
        } else {
            match self.overflow.get(&fetch.mac) {
                Some(info) => {
                    if too_old(info.at) {
                        return;
                    }
                    if keep_reported {
                        whole_reported = (info.reported_model.clone(), info.reported_firmware.clone());
                        fetch.model = fetch.model.or(whole_reported.0.as_deref());
                        fetch.firmware = fetch.firmware.or(whole_reported.1.as_deref());
                    }
                }
                None if self.len() >= MAX_DEVICES => return,
                None => {}
            }
        }
        let entry = match self.compact(&fetch, kept) {
            Some(seen) => Ok(seen),
            None => Err(FetchInfo {
                mac: fetch.mac,
                at: fetch.at,
                ip: fetch.ip.to_string(),
                file: fetch.file.to_string(),
                hash: fetch.hash.to_string(),
                reported_model: fetch.model.or(self.names.text(kept.0)).map(String::from),
                reported_firmware: fetch.firmware.or(self.names.text(kept.1)).map(String::from),
            }),
        };
        self.put(fetch.mac, entry);
    }
}

/// One device's last fetch as the index holds it (borrowed from a [`SeenRead`]).
#[derive(Clone, Copy)]
pub struct SeenRef<'a>(Entry<'a>);

#[derive(Clone, Copy)]
enum Entry<'a> {
    /// The usual, compact entry with the shared texts.
    Compact(&'a Seen, &'a Names),
    /// An entry kept whole.
    Whole(&'a FetchInfo),
}

impl<'a> SeenRef<'a> {
    /// When it fetched (ms since the epoch).
    pub fn at(&self) -> i64 {
        match self.0 {
            Entry::Compact(seen, _) => seen.at,
            Entry::Whole(info) => info.at,
        }
    }

    /// The firmware its User-Agent reported, if any.
    pub fn reported_firmware(&self) -> Option<&'a str> {
        match self.0 {
            Entry::Compact(seen, names) => names.text(seen.firmware),
            Entry::Whole(info) => info.reported_firmware.as_deref(),
        }
    }

    /// The whole record.
    pub fn to_info(&self) -> FetchInfo {
        match self.0 {
            Entry::Whole(info) => info.clone(),
            Entry::Compact(seen, names) => FetchInfo {
                mac: seen.mac,
                at: seen.at,
                ip: seen.ip().to_string(),
                file: names.text(seen.file).map(|p| file_of_pattern(seen.mac, p)).unwrap_or_default(),
                hash: match names.text(seen.hash) {
                    Some(text) => text.to_string(),
                    None => hex::encode(seen.digest),
                },
                reported_model: names.text(seen.model).map(String::from),
                reported_firmware: names.text(seen.firmware).map(String::from),
            },
        }
    }
}

/// The index held for reading (hold it briefly: fetch records wait for it).
pub struct SeenRead<'a> {
    table: RwLockReadGuard<'a, Table>,
}

impl SeenRead<'_> {
    /// What `mac` fetched last.
    pub fn get(&self, mac: &Mac) -> Option<SeenRef<'_>> {
        self.table.get(*mac)
    }

    /// How many devices have an entry.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no device has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SeenIndex {
    /// Takes a fetch into account: `mac` fetched `file` (content `hash`) at `at` from `ip`,
    /// reporting `model` and `firmware`. A device's entry is updated in place, without
    /// allocating while what it fetched stays the same (the usual case under load).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        mac: Mac,
        at: i64,
        ip: IpAddr,
        file: &str,
        hash: &str,
        model: Option<&str>,
        firmware: Option<&str>,
    ) {
        let fetch = Fetch { mac, at, ip, file, hash, digest: sipprov_model::sha256_of_hex(hash), model, firmware };
        self.note(fetch);
    }

    /// [`SeenIndex::record`] of a fetch whose hash is already decoded (`Fetch::digest`): what the
    /// fetch log hands over for every fetch it records.
    pub(crate) fn note(&self, fetch: Fetch<'_>) {
        self.write().merge(fetch, false, true);
    }

    /// Takes in a fetch another node recorded (read back from the store): kept when newer
    /// than what this node knows of the device.
    pub fn merge(&self, info: FetchInfo) {
        let Ok(ip) = info.ip.parse::<IpAddr>() else {
            // Not an address this index can hold compactly: kept whole.
            let mut table = self.write();
            let newer = table.get(info.mac).is_none_or(|k| k.at() < info.at);
            if newer && (table.get(info.mac).is_some() || table.len() < MAX_DEVICES) {
                table.put(info.mac, Err(info));
            }
            return;
        };
        let fetch = Fetch {
            mac: info.mac,
            at: info.at,
            ip,
            file: &info.file,
            hash: &info.hash,
            digest: sipprov_model::sha256_of_hex(&info.hash),
            model: info.reported_model.as_deref(),
            firmware: info.reported_firmware.as_deref(),
        };
        self.write().merge(fetch, true, false);
    }

    /// Forgets a removed device, so one added again under its MAC starts unseen (as in the store).
    pub fn forget(&self, mac: Mac) {
        self.write().remove(mac);
    }

    /// What `mac` fetched last.
    pub fn get(&self, mac: Mac) -> Option<FetchInfo> {
        self.read().get(&mac).map(|s| s.to_info())
    }

    /// The whole index, for a scan (hold it briefly: fetch records wait for it).
    pub fn read(&self) -> SeenRead<'_> {
        SeenRead { table: self.table.read().unwrap_or_else(|e| e.into_inner()) }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(index: &SeenIndex, at: i64, firmware: Option<&str>) {
        let ip = "192.0.2.1".parse().unwrap();
        index.record("001565000001".parse().unwrap(), at, ip, "f", "h", None, firmware);
    }

    #[test]
    fn latest_fetch_wins_and_keeps_the_firmware_reported_before() {
        let index = SeenIndex::default();
        fetch(&index, 10, Some("66.86.0.15"));
        fetch(&index, 20, None);
        fetch(&index, 5, Some("old"));
        let seen = index.get("001565000001".parse().unwrap()).unwrap();
        assert_eq!(seen.at, 20);
        assert_eq!(seen.reported_firmware.as_deref(), Some("66.86.0.15"));
    }

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        Mac::from_bytes([0, 0x15, b[0], b[1], b[2], b[3]])
    }

    fn info(mac: Mac, at: i64, ip: &str, file: String, firmware: Option<String>) -> FetchInfo {
        FetchInfo {
            mac,
            at,
            ip: ip.to_string(),
            file,
            hash: format!("{at:064x}"),
            reported_model: Some("T46S".to_string()),
            reported_firmware: firmware,
        }
    }

    #[test]
    fn what_goes_in_comes_out_exactly() {
        let index = SeenIndex::default();
        let m = mac(7);
        let cases = [
            info(m, 1, "192.0.2.7", format!("{m}.cfg"), Some("66.86.0.15".into())),
            info(m, 2, "2001:db8::7", format!("SEP{}.cnf.xml", m.upper()), None),
            info(m, 3, "::ffff:192.0.2.9", "y000000000028.cfg".into(), Some("x".into())),
            FetchInfo { hash: "not hex".into(), reported_model: None, ..info(m, 4, "127.0.0.1", "f".into(), None) },
            FetchInfo { hash: "ABCDEF".repeat(10) + "ABCD", ..info(m, 5, "10.0.0.1", "g".into(), None) },
        ];
        for case in cases {
            index.merge(case.clone());
            assert_eq!(index.get(m).as_ref(), Some(&case));
        }
        // Another device's file pattern is the same text, its name its own.
        index.record(mac(8), 9, "192.0.2.8".parse().unwrap(), &format!("{}.cfg", mac(8)), "h", None, None);
        assert_eq!(index.get(mac(8)).unwrap().file, format!("{}.cfg", mac(8)));
        assert_eq!(index.read().len(), 2);
    }

    #[test]
    fn a_repeat_moves_time_and_address_and_any_other_change_is_taken_in_full() {
        let index = SeenIndex::default();
        let m = mac(3);
        let hash = format!("{:064x}", 7);
        let (file, upper) = (format!("{m}.cfg"), format!("SEP{}.cnf.xml", m.upper()));
        let at = |ip: &str| ip.parse::<IpAddr>().unwrap();
        index.record(m, 1, at("192.0.2.1"), &file, &hash, Some("T46S"), Some("66.86.0.15"));
        // The same texts: only the time and the address move (the in-place path).
        index.record(m, 2, at("2001:db8::1"), &file, &hash, None, None);
        let seen = index.get(m).unwrap();
        assert_eq!(
            (seen.at, seen.ip.as_str(), seen.file.as_str(), seen.hash.as_str()),
            (2, "2001:db8::1", &*file, &*hash)
        );
        assert_eq!(
            (seen.reported_model.as_deref(), seen.reported_firmware.as_deref()),
            (Some("T46S"), Some("66.86.0.15"))
        );
        // Each text changed in turn is taken.
        index.record(m, 3, at("192.0.2.1"), &file, &format!("{:064x}", 8), None, None);
        assert_eq!(index.get(m).unwrap().hash, format!("{:064x}", 8));
        index.record(m, 4, at("192.0.2.1"), &upper, &format!("{:064x}", 8), None, Some("66.86.0.20"));
        let seen = index.get(m).unwrap();
        assert_eq!((seen.file.as_str(), seen.reported_firmware.as_deref()), (&*upper, Some("66.86.0.20")));
        // Another node's record naming no firmware clears it, as the store's merge does.
        index.merge(FetchInfo { reported_firmware: None, ..index.get(m).map(|s| FetchInfo { at: 5, ..s }).unwrap() });
        assert_eq!(index.get(m).unwrap().reported_firmware, None);
        // Another device whose file spells this one's MAC is not this one's pattern.
        assert!(!pattern_names(mac(4), "\u{1}.cfg", &file));
        assert!(pattern_names(m, "\u{1}.cfg", &file) && pattern_names(m, "SEP\u{2}.cnf.xml", &upper));
        assert!(
            sipprov_model::sha256_of_hex(&"ab".repeat(32)) == Some([0xab; 32])
                && sipprov_model::sha256_of_hex(&"AB".repeat(32)).is_none()
        );
    }

    #[test]
    fn a_pattern_names_exactly_the_file_it_stands_for() {
        let (m, other) = (mac(0x0abc), mac(0x0abd));
        for pattern in
            ["\u{1}.cfg", "SEP\u{2}.cnf.xml", "a\u{1}b\u{2}", "x\u{2}y\u{1}z", "\u{1}\u{1}", "plain.cfg", "\u{2}", ""]
        {
            let spelled = file_of_pattern(m, pattern);
            let files = [
                spelled.clone(),
                spelled.to_uppercase(),
                spelled.to_lowercase(),
                format!("{spelled}x"),
                format!("x{spelled}"),
                spelled.get(1..).unwrap_or_default().to_string(),
                file_of_pattern(other, pattern),
                format!("{m}.cfg"),
                format!("SEP{}.cnf.xml", m.upper()),
                "plain.cfg".to_string(),
                String::new(),
            ];
            for file in files {
                assert_eq!(pattern_names(m, pattern, &file), spelled == file, "{pattern:?} {file:?}");
            }
        }
    }

    #[test]
    fn chunked_entries_push_replace_and_swap_remove_like_a_vector() {
        let mut chunked = Chunked::default();
        let mut vector = Vec::new();
        for n in 0..(3 * CHUNK_ENTRIES + 5) {
            chunked.push(n);
            vector.push(n);
        }
        chunked[7] = 70;
        vector[7] = 70;
        // From the middle, the last of a chunk, the very last (twice), the first, and the rest
        // from the end.
        for i in [CHUNK_ENTRIES + 1, 2 * CHUNK_ENTRIES - 1, 3 * CHUNK_ENTRIES + 2, 0, 5, 3 * CHUNK_ENTRIES - 1] {
            assert_eq!(chunked.swap_remove(i), Some(vector.swap_remove(i)));
        }
        assert_eq!(chunked.swap_remove(chunked.len()), None);
        while let Some(last) = vector.len().checked_sub(1) {
            assert_eq!(chunked.swap_remove(last), Some(vector.swap_remove(last)));
        }
        assert_eq!((chunked.len(), chunked.chunks.len(), chunked.get(0)), (0, 0, None));
        chunked.push(1);
        assert_eq!((chunked.len(), chunked.get(0)), (1, Some(&1)));
    }

    #[test]
    fn entries_and_slots_stay_small() {
        assert!(std::mem::size_of::<Seen>() <= 80, "{}", std::mem::size_of::<Seen>());
        assert!(std::mem::size_of::<(Mac, u32)>() <= 12);
    }

    #[test]
    fn forgetting_keeps_every_other_entry_right() {
        let index = SeenIndex::default();
        for n in 0..100 {
            index.merge(info(mac(n), i64::from(n) + 1, "192.0.2.1", format!("{}.cfg", mac(n)), None));
        }
        for n in (0..100).step_by(3) {
            index.forget(mac(n));
        }
        for n in 0..100 {
            let got = index.get(mac(n));
            if n % 3 == 0 {
                assert!(got.is_none(), "{n} forgotten");
            } else {
                assert_eq!(got.unwrap(), info(mac(n), i64::from(n) + 1, "192.0.2.1", format!("{}.cfg", mac(n)), None));
            }
        }
        assert_eq!(index.read().len(), 66);
    }

    #[test]
    fn past_the_shared_texts_bound_entries_are_kept_whole_and_exact() {
        let index = SeenIndex::default();
        let ip = "192.0.2.1".parse().unwrap();
        // Every device reports a firmware string of its own: the shared list fills up.
        let n = u32::try_from(MAX_NAMES).unwrap() + 10;
        for i in 0..n {
            index.record(mac(i), 1, ip, "f", "h", Some("M"), Some(&format!("fw-{i}")));
        }
        assert_eq!(index.read().len(), n as usize);
        for i in [0, n / 2, n - 1] {
            let seen = index.get(mac(i)).unwrap();
            assert_eq!(seen.reported_firmware, Some(format!("fw-{i}")));
            assert_eq!(seen.reported_model.as_deref(), Some("M"));
        }
        // A whole entry updated by a fetch naming no firmware keeps the one reported before.
        index.record(mac(n - 1), 2, ip, "f", "h2", None, None);
        let seen = index.get(mac(n - 1)).unwrap();
        assert_eq!((seen.at, seen.hash.as_str()), (2, "h2"));
        assert_eq!(seen.reported_firmware, Some(format!("fw-{}", n - 1)));
        assert!(index.read().table.names.list.len() <= MAX_NAMES);
    }

    #[test]
    fn another_nodes_record_replaces_only_when_newer() {
        let index = SeenIndex::default();
        let m = mac(1);
        index.merge(info(m, 10, "192.0.2.1", "a".into(), Some("1".into())));
        index.merge(info(m, 10, "192.0.2.2", "b".into(), None));
        assert_eq!(index.get(m).unwrap().file, "a");
        index.merge(info(m, 11, "192.0.2.2", "b".into(), None));
        let seen = index.get(m).unwrap();
        assert_eq!((seen.file.as_str(), seen.reported_firmware), ("b", None));
    }
}
