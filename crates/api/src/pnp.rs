//! PnP discoveries: devices `pnp.mode = "any"` added to the discovered group, waiting for an
//! operator to approve them into a group of their own or reject them.

use serde::{Deserialize, Serialize};

use crate::Mac;

/// A device waiting in the discovered group (`GET /api/v1/pnp/discoveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Discovery {
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// Its vendor id.
    pub vendor: String,
    /// Its model.
    pub model: String,
    /// The firmware its latest SUBSCRIBE reported, if any.
    pub firmware: Option<String>,
    /// The source address (`ip:port`) of its latest SUBSCRIBE; absent for a device put into
    /// the discovered group by hand, which PnP never saw.
    pub source: Option<String>,
    /// Its first SUBSCRIBE (ms since the epoch), when PnP saw it.
    pub first_seen: Option<i64>,
    /// Its latest SUBSCRIBE (ms since the epoch), when PnP saw it.
    pub last_seen: Option<i64>,
}

/// `POST /api/v1/pnp/discoveries/{mac}/approve`: the group the device moves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveDiscovery {
    /// An existing group, other than the discovered group itself.
    pub group: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let d = Discovery {
            mac: "001565aabbcc".parse().unwrap(),
            vendor: "yealink".into(),
            model: "T46S".into(),
            firmware: Some("66.86.0.15".into()),
            source: Some("127.0.0.1:5060".into()),
            first_seen: Some(1),
            last_seen: Some(2),
        };
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["mac"], "001565aabbcc");
        assert_eq!(serde_json::from_value::<Discovery>(json).unwrap(), d);
        let err = serde_json::from_str::<ApproveDiscovery>(r#"{"group":"a","grup":"b"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `grup`"), "{err}");
    }
}
