//! Vendors sipprov recognises but cannot provision yet (no module): what check-sync and PnP
//! need to know about them, so `sipprov notify --vendor htek` and a Panasonic PnP SUBSCRIBE are
//! answered. A vendor that gets a module moves its row into the module's
//! [`Vendor`](crate::Vendor) implementation; a test refuses an id that is both.
//!
//! Sources: Asterisk `pjsip_notify.conf.sample`, FusionPBX `event_notify`, and the vendor
//! manuals named in each row's `source`.

use crate::events::{CheckSyncEvents, CHECK_SYNC_REBOOT};
use crate::pnp::PnpDialect;

/// One vendor without a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherVendor {
    /// Lower-case id, as `sipprov notify --vendor` takes it.
    pub id: &'static str,
    /// Its check-sync events (aliases included).
    pub events: CheckSyncEvents,
    /// How its phones read the URL of a PnP NOTIFY.
    pub pnp: PnpDialect,
}

const fn other(
    id: &'static str,
    aliases: &'static [&'static str],
    resync: &'static str,
    reboot: &'static str,
    source: &'static str,
) -> OtherVendor {
    OtherVendor { id, events: CheckSyncEvents { aliases, resync, reboot, source }, pnp: PnpDialect::DEFAULT }
}

/// The vendors without a module.
pub const OTHERS: &[OtherVendor] = &[
    other("linksys", &["sipura"], "resync", "reboot_now", "asterisk sipura-check-cfg / linksys-cold-restart"),
    // Not documented; treated like Yealink, a base directory (RFC 6080 §8.4 leaves the body's
    // meaning to the vendor).
    OtherVendor {
        pnp: PnpDialect::DIRECTORY,
        ..other("htek", &[], "resync", CHECK_SYNC_REBOOT, "FusionPBX event_notify")
    },
    // A pre-provisioning file; `{MODEL}` is a Panasonic phone-side macro.
    OtherVendor {
        pnp: PnpDialect { path: "{MODEL}.cfg", userinfo: false },
        ..other(
            "panasonic",
            &[],
            "check-sync",
            CHECK_SYNC_REBOOT,
            "Panasonic KX-UTG guide (CFG_RESYNC_FROM_SIP); FusionPBX",
        )
    },
    other("aastra", &["mitel"], "check-sync", CHECK_SYNC_REBOOT, "asterisk aastra-check-cfg; FusionPBX"),
    other("technicolor", &["thomson"], "check-sync", CHECK_SYNC_REBOOT, "Technicolor TB30 manual"),
    other("digium", &[], "check-sync", "check-sync", "asterisk digium-check-cfg"),
    other("obihai", &[], "resync", "resync", "Obihai OBi1062 manual (X_AcceptResync)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_vendor_is_both_a_module_and_an_other() {
        for o in OTHERS {
            assert!(crate::registry().get(o.id).is_none(), "{} has a module: move its row there", o.id);
        }
    }
}
