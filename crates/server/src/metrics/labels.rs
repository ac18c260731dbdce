//! The closed sets metric labels are drawn from.
//!
//! A label value is always one of a fixed list known when the server starts: a vendor id of
//! the vendors crate's registry, or a name of one of the enums here. Nothing a client sends
//! (a User-Agent, a path, a SUBSCRIBE's `vendor` parameter) becomes a label: text from the
//! network is only ever *matched* against these lists, and what matches nothing is counted
//! under `unknown`. That keeps the number of series bounded whatever a scanner sends.

use axum::http::StatusCode;

/// A vendor as a metric label: an index into the vendors crate's registry, or `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorLabel(u8);

impl VendorLabel {
    /// No vendor, or none of the registry's.
    pub const UNKNOWN: VendorLabel = VendorLabel(0);

    /// How many labels there are: `unknown` and every vendor of the registry.
    pub(crate) fn count() -> usize {
        sipprov_vendors::registry().vendors().len() + 1
    }

    /// The label of the vendor whose id is `id`, `unknown` when no vendor has that id.
    ///
    /// A scan of a dozen static ids: no allocation and no hashing on the request path.
    pub fn of(id: &str) -> VendorLabel {
        let vendors = sipprov_vendors::registry().vendors();
        match vendors.iter().position(|v| v.id() == id) {
            Some(i) => VendorLabel(u8::try_from(i + 1).unwrap_or(0)),
            None => VendorLabel::UNKNOWN,
        }
    }

    /// The label of an optional vendor id.
    pub fn of_opt(id: Option<&str>) -> VendorLabel {
        id.map_or(VendorLabel::UNKNOWN, VendorLabel::of)
    }

    /// Its position among [`Self::count`] labels.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The label value: the vendor's id, or `unknown`.
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            0 => "unknown",
            i => sipprov_vendors::registry().vendors().get(usize::from(i) - 1).map_or("unknown", |v| v.id()),
        }
    }
}

/// Declares a label enum: its variants, their label values, `ALL` and `index`.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order (the order of `index`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// Its position in [`Self::ALL`].
            pub(crate) fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum! {
    /// What a provisioning HTTP request came to, from its status code.
    HttpOutcome {
        /// 200, or 206 (a range of a stored file): a file was sent.
        Served = "served",
        /// 304: the phone's copy is current.
        NotModified = "not_modified",
        /// 401 or 403: a challenge or a refusal.
        Refused = "refused",
        /// 429: the source is blocked by the failure throttle.
        Throttled = "throttled",
        /// 404: no such file for this requester.
        NotFound = "not_found",
        /// Any other 4xx (odd path, method, upload refused).
        BadRequest = "bad_request",
        /// 5xx: the server failed (a render error).
        Error = "error",
        /// Anything else (1xx, 2xx other than 200 and 206, 3xx other than 304).
        Other = "other",
    }
}

impl HttpOutcome {
    /// The class of a response status.
    pub fn of(status: StatusCode) -> HttpOutcome {
        match status.as_u16() {
            200 | 206 => HttpOutcome::Served,
            304 => HttpOutcome::NotModified,
            401 | 403 => HttpOutcome::Refused,
            429 => HttpOutcome::Throttled,
            404 => HttpOutcome::NotFound,
            400..=499 => HttpOutcome::BadRequest,
            500..=599 => HttpOutcome::Error,
            _ => HttpOutcome::Other,
        }
    }
}

label_enum! {
    /// Why a provisioning request was refused: the cases the phone-access code tells apart.
    RefusalReason {
        /// The path was not a plain file name (traversal, odd characters, too long).
        BadPath = "bad_path",
        /// The source is blocked by the failure throttle.
        Throttled = "throttled",
        /// The request names a MAC the inventory does not hold.
        UnknownDevice = "unknown_device",
        /// The User-Agent's MAC contradicts the MAC in the path.
        MacMismatch = "mac_mismatch",
        /// No credentials offered (a phone's first try, or a stale or unknown nonce): challenged.
        NoCredentials = "no_credentials",
        /// No credentials offered, and the device has no way in (no credentials of its own and
        /// its first-fetch window closed).
        Locked = "locked",
        /// Credentials offered and wrong (wrong password, replayed or malformed Digest).
        WrongCredentials = "wrong_credentials",
        /// The source address is outside `http.allow_from`.
        SourceNotAllowed = "source_not_allowed",
        /// The client certificate names another device.
        CertificateMismatch = "certificate_mismatch",
        /// Basic authentication over plain HTTP, which is refused by default.
        BasicOverPlainHttp = "basic_over_plain_http",
    }
}

impl RefusalReason {
    /// The reason of an access-policy failure, from its log text (a static sentence of the
    /// `auth` module) and whether credentials were offered.
    pub fn of_failure(reason: &str, unauthenticated: bool, locked: bool) -> RefusalReason {
        if reason == "unknown device" {
            RefusalReason::UnknownDevice
        } else if reason.starts_with("Basic authentication over plain HTTP") {
            RefusalReason::BasicOverPlainHttp
        } else if unauthenticated && locked {
            RefusalReason::Locked
        } else if unauthenticated {
            RefusalReason::NoCredentials
        } else if reason.starts_with("source address outside") {
            RefusalReason::SourceNotAllowed
        } else if reason.starts_with("client certificate") {
            RefusalReason::CertificateMismatch
        } else {
            RefusalReason::WrongCredentials
        }
    }
}

label_enum! {
    /// How a PnP SUBSCRIBE's answer ended: its NOTIFY (carrying the provisioning URL) was
    /// accepted by the phone, or not.
    PnpOutcome {
        /// The phone answered the NOTIFY with a 2xx.
        Delivered = "delivered",
        /// The phone answered with an error, or not at all.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_labels_come_from_the_registry_only() {
        let yealink = VendorLabel::of("yealink");
        assert_ne!(yealink, VendorLabel::UNKNOWN);
        assert_eq!(yealink.name(), "yealink");
        assert_eq!(VendorLabel::of("Yealink\"} evil"), VendorLabel::UNKNOWN);
        assert_eq!(VendorLabel::of_opt(None).name(), "unknown");
        assert!(VendorLabel::count() > 1);
        assert!(yealink.index() < VendorLabel::count());
    }

    #[test]
    fn outcome_classes_and_refusal_reasons() {
        assert_eq!(HttpOutcome::of(StatusCode::OK), HttpOutcome::Served);
        assert_eq!(HttpOutcome::of(StatusCode::UNAUTHORIZED), HttpOutcome::Refused);
        assert_eq!(HttpOutcome::of(StatusCode::TOO_MANY_REQUESTS), HttpOutcome::Throttled);
        assert_eq!(HttpOutcome::of(StatusCode::METHOD_NOT_ALLOWED), HttpOutcome::BadRequest);
        assert_eq!(HttpOutcome::ALL[HttpOutcome::Error.index()], HttpOutcome::Error);
        assert_eq!(RefusalReason::of_failure("no credentials", true, false), RefusalReason::NoCredentials);
        assert_eq!(RefusalReason::of_failure("no credentials", true, true), RefusalReason::Locked);
        assert_eq!(RefusalReason::of_failure("unknown device", false, false), RefusalReason::UnknownDevice);
        assert_eq!(RefusalReason::of_failure("wrong Basic credentials", false, false), RefusalReason::WrongCredentials);
        assert_eq!(
            RefusalReason::of_failure("Basic authentication over plain HTTP is refused", true, false),
            RefusalReason::BasicOverPlainHttp
        );
    }
}
