//! The check-sync table: which SIP NOTIFY `Event` header makes each vendor's phones re-fetch
//! their configuration, and which makes them reboot.
//!
//! Data only, so vendors without a template module are covered too. Sources are the project's
//! `sip-protocol.md` §A (which cites each vendor document or PBX table) and the seeds.

/// The two events of one vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CheckSyncEvents {
    /// Vendor id and accepted aliases, lower case; the first is the [`Vendor::id`](crate::Vendor::id).
    pub ids: &'static [&'static str],
    /// Event that re-fetches the configuration without forcing a reboot.
    pub resync: &'static str,
    /// Event that forces a reboot (for vendors where only phone config decides, the same as `resync`).
    pub reboot: &'static str,
    /// Where the entry comes from.
    pub source: &'static str,
}

const fn row(
    ids: &'static [&'static str],
    resync: &'static str,
    reboot: &'static str,
    source: &'static str,
) -> CheckSyncEvents {
    CheckSyncEvents { ids, resync, reboot, source }
}

const CS_FALSE: &str = "check-sync;reboot=false";
const CS_TRUE: &str = "check-sync;reboot=true";

/// Every vendor's check-sync events.
pub const CHECK_SYNC_EVENTS: &[CheckSyncEvents] = &[
    // With sip.notify_reboot_enable = 0 (what our templates write by default) the phone only
    // reboots when the header says reboot=true (Yealink admin guide, sip-protocol.md §A.2; seed 001).
    row(&["yealink"], CS_FALSE, CS_TRUE, "Yealink admin guide; FusionPBX event_notify"),
    // reboot=true needs firmware >= 2.52 and CheckSyncRebootEnabled=1 (Gigaset wiki, seed 000).
    row(&["gigaset"], CS_FALSE, CS_TRUE, "Gigaset wiki 'Check-sync with reboot' (seed 000)"),
    // "AudioCodes proprietary value" check-sync;reboot=false, needs EnableSIPRemoteReset=1 (seed 004).
    row(&["audiocodes"], CS_FALSE, CS_TRUE, "MP-11x user manual 33.2 (seed 004); Mediant 1000B manual"),
    row(&["snom"], CS_FALSE, CS_TRUE, "asterisk pjsip_notify.conf.sample snom-check-cfg / snom-reboot"),
    // Polycom has no reboot parameter: voIpProt.SIP.specialEvent.checkSync.alwaysReboot decides.
    row(&["polycom", "poly"], "check-sync", "check-sync", "asterisk polycom-check-cfg; sip-notify gem"),
    row(
        &["cisco", "cisco-spa", "cisco-mpp"],
        "resync",
        "reboot",
        "Cisco MPP 6800 guide (Resync_From_SIP); sip-notify gem",
    ),
    row(&["linksys", "sipura"], "resync", "reboot_now", "asterisk sipura-check-cfg / linksys-cold-restart"),
    // FusionPBX PR #3014 moved Grandstream re-fetch to `resync` to avoid reboots.
    row(&["grandstream"], "resync", CS_TRUE, "FusionPBX event_notify (PR #3014)"),
    row(&["fanvil"], "resync", CS_TRUE, "FusionPBX event_notify"),
    row(&["htek"], "resync", CS_TRUE, "FusionPBX event_notify"),
    row(&["panasonic"], "check-sync", CS_TRUE, "Panasonic KX-UTG guide (CFG_RESYNC_FROM_SIP); FusionPBX"),
    row(&["aastra", "mitel"], "check-sync", CS_TRUE, "asterisk aastra-check-cfg; FusionPBX"),
    row(&["technicolor", "thomson"], "check-sync", CS_TRUE, "Technicolor TB30 manual"),
    row(&["digium"], "check-sync", "check-sync", "asterisk digium-check-cfg"),
    row(&["obihai"], "resync", "resync", "Obihai OBi1062 manual (X_AcceptResync)"),
];

/// The NOTIFY `Event` header value for a vendor (id or alias, any case), or `None` when the
/// vendor is unknown.
///
/// ```
/// use sipprov_vendors::check_sync_event;
/// assert_eq!(check_sync_event("Yealink", true), Some("check-sync;reboot=true"));
/// assert_eq!(check_sync_event("cisco", false), Some("resync"));
/// assert_eq!(check_sync_event("acme", false), None);
/// ```
pub fn check_sync_event(vendor_id: &str, reboot: bool) -> Option<&'static str> {
    let id = vendor_id.trim();
    let row = CHECK_SYNC_EVENTS.iter().find(|r| r.ids.iter().any(|i| i.eq_ignore_ascii_case(id)))?;
    Some(if reboot { row.reboot } else { row.resync })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_vendor_has_events() {
        for v in crate::registry().vendors() {
            assert!(check_sync_event(v.id(), false).is_some(), "{}", v.id());
        }
    }

    #[test]
    fn vendor_specific_events() {
        assert_eq!(check_sync_event("snom", false), Some("check-sync;reboot=false"));
        assert_eq!(check_sync_event("snom", true), Some("check-sync;reboot=true"));
        assert_eq!(check_sync_event("polycom", true), Some("check-sync"));
        assert_eq!(check_sync_event("cisco", true), Some("reboot"));
        assert_eq!(check_sync_event("gigaset", false), Some("check-sync;reboot=false"));
        assert_eq!(check_sync_event("AUDIOCODES", true), Some("check-sync;reboot=true"));
        assert_eq!(check_sync_event("grandstream", false), Some("resync"));
        assert_eq!(check_sync_event("mitel", false), Some("check-sync"));
    }

    #[test]
    fn ids_are_unique_and_lower_case() {
        let mut all: Vec<&str> = CHECK_SYNC_EVENTS.iter().flat_map(|r| r.ids.iter().copied()).collect();
        assert!(all.iter().all(|i| *i == i.to_ascii_lowercase()));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
