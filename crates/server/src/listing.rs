//! Device lists: filtering, sorting and paging the in-memory inventory with the last-seen index
//! ([`SeenIndex`]), so `GET /api/v1/devices` and the console's list stay fast with 100,000
//! devices (no store read; `bench/devicelist.sh` measures it).
//!
//! Also what "silent for longer than expected" means, shared with the fleet summary: a device
//! that fetched before, whose last fetch is older than its merged
//! `provisioning.interval_minutes` ([`DEFAULT_INTERVAL_MINUTES`] when unset) times
//! [`GRACE_FACTOR`]. A device that never fetched is "never seen", not silent.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use sipprov_api::{DeviceQuery, DeviceSort, SortOrder, DEFAULT_PAGE, MAX_PAGE};
use sipprov_model::known::PROVISIONING_INTERVAL_MINUTES;
use sipprov_store::{DeviceRecord, FetchInfo};

use crate::inventory::Inventory;
use crate::seen::{SeenIndex, SeenRef};

/// The interval assumed for a device whose merged settings name none: once a day, the
/// re-check most vendors ship with when automatic provisioning is on.
pub const DEFAULT_INTERVAL_MINUTES: u64 = 1440;

/// How many intervals a device may miss before it counts as silent (one missed check is
/// routine: a phone rebooting or a network blip).
pub const GRACE_FACTOR: u64 = 2;

/// One page of matching devices with what they fetched last, and the number of matches.
pub struct Listing {
    /// The page, in the requested order.
    pub page: Vec<(Arc<DeviceRecord>, Option<FetchInfo>)>,
    /// Matches over all pages.
    pub total: usize,
    /// The page size applied.
    pub limit: usize,
    /// The offset applied.
    pub offset: usize,
}

/// The expected interval of each device, from its own, its group's and the global setting; the
/// group and global levels are read once per listing, not once per device.
pub struct Intervals {
    global: Option<u64>,
    groups: HashMap<String, Option<u64>>,
}

fn interval_of(settings: &sipprov_model::Settings) -> Option<u64> {
    settings.get(PROVISIONING_INTERVAL_MINUTES.name()).and_then(|v| v.trim().parse().ok())
}

impl Intervals {
    /// Reads the global and group levels of `inventory`.
    pub fn new(inventory: &Inventory) -> Intervals {
        let global = interval_of(&inventory.global_keys(&[PROVISIONING_INTERVAL_MINUTES.name()]));
        Intervals { global, groups: HashMap::new() }
    }

    /// `device`'s expected interval in minutes.
    pub fn minutes(&mut self, inventory: &Inventory, device: &DeviceRecord) -> u64 {
        if let Some(own) = interval_of(&device.settings) {
            return own;
        }
        let group = match &device.group {
            Some(name) => *self
                .groups
                .entry(name.to_string())
                .or_insert_with(|| inventory.group(name).as_ref().and_then(interval_of)),
            None => None,
        };
        group.or(self.global).unwrap_or(DEFAULT_INTERVAL_MINUTES)
    }

    /// Whether a device last seen at `last_seen` is silent at `now`, and its interval.
    pub fn silent(&mut self, inventory: &Inventory, device: &DeviceRecord, last_seen: i64, now: i64) -> (bool, u64) {
        let minutes = self.minutes(inventory, device);
        let allowed = i64::try_from(minutes.saturating_mul(GRACE_FACTOR).saturating_mul(60_000)).unwrap_or(i64::MAX);
        (now.saturating_sub(last_seen) > allowed, minutes)
    }
}

/// What the free-text search looks for: MAC hex digits (separators dropped) and the text itself
/// (matched ignoring ASCII case).
struct Search {
    hex: Option<String>,
    text: String,
}

/// A MAC's 12 hex digits, written without allocating (the search runs once per device).
struct MacHex {
    digits: [u8; 12],
    len: usize,
}

impl std::fmt::Write for MacHex {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.digits.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Whether `needle` (lower case) occurs in `hay`, ignoring ASCII case.
fn contains_ignoring_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Search {
    fn new(q: &str) -> Option<Search> {
        let text = q.trim().to_ascii_lowercase();
        if text.is_empty() {
            return None;
        }
        // `00:15:65`, `0015.65aa`, `00-15-65-AA`: hex digits and separators make a MAC fragment.
        let mac_like = text.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.' | ' '));
        let hex: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        Some(Search { hex: (mac_like && !hex.is_empty() && hex.len() <= 12).then_some(hex), text })
    }

    fn matches(&self, device: &DeviceRecord) -> bool {
        if let Some(hex) = &self.hex {
            let mut written = MacHex { digits: [0; 12], len: 0 };
            if std::fmt::Write::write_fmt(&mut written, format_args!("{}", device.mac)).is_ok()
                && written.digits[..written.len].windows(hex.len()).any(|w| w == hex.as_bytes())
            {
                return true;
            }
        }
        device.settings.iter().any(|(k, v)| k.ends_with("display_name") && contains_ignoring_case(v, &self.text))
    }
}

/// Filters, sorts and pages the devices of `inventory` as `query` asks; `now` is the time
/// "silent" is judged at.
///
/// Only the devices up to the end of the page are put in order (a selection, then a sort of
/// that prefix), and the last-seen index is consulted per device only when a filter or the sort
/// order needs it; otherwise just for the page.
pub fn list(inventory: &Inventory, seen: &SeenIndex, query: &DeviceQuery, now: i64) -> Listing {
    let devices = inventory.devices();
    let search = query.q.as_deref().and_then(Search::new);
    let mut intervals = Intervals::new(inventory);
    let sort = query.sort.unwrap_or_default();
    let needs_seen = query.firmware.is_some()
        || query.seen_before.is_some()
        || query.seen_after.is_some()
        || query.never_seen.is_some()
        || query.silent.is_some()
        || matches!(sort, DeviceSort::LastSeen | DeviceSort::Firmware);
    let last = seen.read();
    let mut matched: Vec<Row<'_>> = devices
        .iter()
        .filter(|d| query.vendor.as_ref().is_none_or(|v| &d.vendor == v))
        .filter(|d| query.model.as_ref().is_none_or(|m| d.model.eq_ignore_ascii_case(m)))
        .filter(|d| query.group.as_ref().is_none_or(|g| d.group.as_deref().unwrap_or("") == g))
        .filter(|d| search.as_ref().is_none_or(|s| s.matches(d)))
        .map(|d| (d, if needs_seen { last.get(&d.mac) } else { None }))
        .filter(|(d, f)| seen_filters(query, *f) && silent_filter(query, &mut intervals, inventory, d, *f, now))
        .collect();
    let total = matched.len();
    let descending = query.order.unwrap_or_default() == SortOrder::Desc;
    let order = |a: &Row<'_>, b: &Row<'_>| {
        let o = compare(sort, a, b).then_with(|| a.0.mac.cmp(&b.0.mac));
        if descending {
            o.reverse()
        } else {
            o
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let offset = query.offset.unwrap_or(0);
    let end = offset.saturating_add(limit).min(total);
    if end > 0 && end < total {
        matched.select_nth_unstable_by(end - 1, order);
    }
    let prefix = &mut matched[..end];
    prefix.sort_unstable_by(order);
    let page = prefix
        .iter()
        .skip(offset)
        .map(|(d, f)| (Arc::clone(d), f.or_else(|| last.get(&d.mac)).map(|f| f.to_info())))
        .collect();
    Listing { page, total, limit, offset }
}

fn seen_filters(query: &DeviceQuery, last: Option<SeenRef<'_>>) -> bool {
    let at = last.map(|f| f.at());
    let firmware = last.and_then(|f| f.reported_firmware());
    query.never_seen.is_none_or(|never| never == at.is_none())
        && query.seen_before.is_none_or(|t| at.is_some_and(|at| at < t))
        && query.seen_after.is_none_or(|t| at.is_some_and(|at| at >= t))
        && query.firmware.as_ref().is_none_or(|f| firmware == Some(f.as_str()))
}

fn silent_filter(
    query: &DeviceQuery,
    intervals: &mut Intervals,
    inventory: &Inventory,
    device: &DeviceRecord,
    last: Option<SeenRef<'_>>,
    now: i64,
) -> bool {
    let Some(wanted) = query.silent else { return true };
    let silent = last.is_some_and(|f| intervals.silent(inventory, device, f.at(), now).0);
    silent == wanted
}

type Row<'a> = (&'a Arc<DeviceRecord>, Option<SeenRef<'a>>);

fn compare(sort: DeviceSort, a: &Row<'_>, b: &Row<'_>) -> Ordering {
    match sort {
        DeviceSort::Mac => Ordering::Equal,
        DeviceSort::Vendor => a.0.vendor.cmp(&b.0.vendor),
        DeviceSort::Model => a.0.model.cmp(&b.0.model),
        DeviceSort::Group => a.0.group.cmp(&b.0.group),
        DeviceSort::LastSeen => a.1.map(|f| f.at()).cmp(&b.1.map(|f| f.at())),
        DeviceSort::Firmware => a.1.and_then(|f| f.reported_firmware()).cmp(&b.1.and_then(|f| f.reported_firmware())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(mac: &str, name: &str) -> DeviceRecord {
        let mut settings = sipprov_model::Settings::new();
        settings.set("line.1.display_name", name).unwrap();
        DeviceRecord {
            mac: mac.parse().unwrap(),
            vendor: "yealink".into(),
            model: "T46S".into(),
            group: None,
            contact: None,
            settings,
            created_at: 0,
            updated_at: 0,
            last_fetch: None,
        }
    }

    #[test]
    fn free_text_matches_a_mac_in_any_spelling_or_a_display_name() {
        let d = device("001565aabbcc", "Front Desk");
        for q in ["00:15:65:AA:BB:CC", "0015.65aa.bbcc", "aa-bb", "BBCC", "front", "DESK"] {
            assert!(Search::new(q).unwrap().matches(&d), "{q}");
        }
        for q in ["00:15:65:aa:bb:cd", "back office", "0015 65ab"] {
            assert!(!Search::new(q).unwrap().matches(&d), "{q}");
        }
        assert!(Search::new("  ").is_none());
    }
}
