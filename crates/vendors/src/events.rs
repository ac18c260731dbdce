//! Check-sync: which SIP NOTIFY `Event` header makes a vendor's phones re-fetch their
//! configuration, and which makes them reboot.
//!
//! Each vendor module answers for itself ([`Vendor::check_sync_events`](crate::Vendor::check_sync_events));
//! vendors sipprov recognises but cannot provision yet answer from [`crate::others`].
//! [`check_sync_event`] looks an id up in both, so `sipprov notify --vendor htek` works too.

/// The two events of one vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CheckSyncEvents {
    /// Other ids the vendor is known by in check-sync tables, lower case (`poly` for Polycom).
    pub aliases: &'static [&'static str],
    /// Event that re-fetches the configuration without forcing a reboot.
    pub resync: &'static str,
    /// Event that forces a reboot (for vendors where only phone config decides, the same as `resync`).
    pub reboot: &'static str,
    /// Where the entry comes from.
    pub source: &'static str,
}

/// `check-sync;reboot=false`, the re-fetch event of most vendors (RFC 3265 event package
/// `check-sync` with the de-facto `reboot` parameter).
pub const CHECK_SYNC_NO_REBOOT: &str = "check-sync;reboot=false";
/// `check-sync;reboot=true`.
pub const CHECK_SYNC_REBOOT: &str = "check-sync;reboot=true";

impl CheckSyncEvents {
    /// The `check-sync;reboot=false` / `check-sync;reboot=true` pair most vendors share.
    pub const fn check_sync(source: &'static str) -> CheckSyncEvents {
        CheckSyncEvents { aliases: &[], resync: CHECK_SYNC_NO_REBOOT, reboot: CHECK_SYNC_REBOOT, source }
    }

    /// The event for a re-fetch (`reboot = false`) or a forced reboot.
    pub fn event(&self, reboot: bool) -> &'static str {
        if reboot {
            self.reboot
        } else {
            self.resync
        }
    }
}

/// Every id with check-sync events: each registered vendor's, then those of vendors without a
/// module, as `(id, events)`.
pub fn check_sync_table() -> impl Iterator<Item = (&'static str, CheckSyncEvents)> {
    let modules = crate::registry().vendors().iter().map(|v| (v.id(), v.check_sync_events()));
    modules.chain(crate::others::OTHERS.iter().map(|o| (o.id, o.events)))
}

/// The NOTIFY `Event` header value for a vendor (id or alias, any case), or `None` when the
/// vendor is unknown.
///
/// ```
/// use sipprov_vendors::check_sync_event;
/// assert_eq!(check_sync_event("Yealink", true), Some("check-sync;reboot=true"));
/// assert_eq!(check_sync_event("cisco", false), Some("resync"));
/// assert_eq!(check_sync_event("htek", false), Some("resync"));
/// assert_eq!(check_sync_event("acme", false), None);
/// ```
pub fn check_sync_event(vendor_id: &str, reboot: bool) -> Option<&'static str> {
    let id = vendor_id.trim();
    let named = |(own, e): &(&str, CheckSyncEvents)| {
        own.eq_ignore_ascii_case(id) || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
    };
    check_sync_table().find(named).map(|(_, e)| e.event(reboot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_specific_events() {
        assert_eq!(check_sync_event("snom", false), Some("check-sync;reboot=false"));
        assert_eq!(check_sync_event("snom", true), Some("check-sync;reboot=true"));
        assert_eq!(check_sync_event("polycom", true), Some("check-sync"));
        assert_eq!(check_sync_event("poly", false), Some("check-sync"));
        assert_eq!(check_sync_event("cisco", true), Some("reboot"));
        assert_eq!(check_sync_event("cisco-mpp", false), Some("resync"));
        assert_eq!(check_sync_event("gigaset", false), Some("check-sync;reboot=false"));
        assert_eq!(check_sync_event("AUDIOCODES", true), Some("check-sync;reboot=true"));
        assert_eq!(check_sync_event("grandstream", false), Some("resync"));
        assert_eq!(check_sync_event("mitel", false), Some("check-sync"));
        assert_eq!(check_sync_event("sipura", true), Some("reboot_now"));
    }

    #[test]
    fn ids_are_unique_and_lower_case() {
        let mut all: Vec<&str> =
            check_sync_table().flat_map(|(id, e)| std::iter::once(id).chain(e.aliases.iter().copied())).collect();
        assert!(all.iter().all(|i| *i == i.to_ascii_lowercase()));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
