//! Vendors sipprov recognises but cannot provision yet: User-Agent parsing only.
//!
//! They have no models, files or templates, so the server can name them in logs and refuse
//! to add them with a clear message; their check-sync events are in [`crate::events`].
//! UA samples and shapes are from research `config-formats.md` §4.3 (Polycom), which quotes the
//! wazo plugins. Snom, Grandstream and Cisco have their own modules,
//! [`crate::snom`], [`crate::grandstream`] and [`crate::cisco`], and so has Fanvil ([`crate::fanvil`]).

use sipprov_model::Mac;

use crate::ua;
use crate::{FileSpec, ModelInfo, UserAgentInfo, Vendor};

macro_rules! ua_only_vendor {
    ($(#[$doc:meta])* $ty:ident, $id:literal, $name:literal, $parse:ident, $secrets:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl Vendor for $ty {
            fn id(&self) -> &'static str {
                $id
            }
            fn display_name(&self) -> &'static str {
                $name
            }
            fn models(&self) -> &'static [ModelInfo] {
                &[]
            }
            fn secret_params(&self) -> &'static [&'static str] {
                $secrets
            }
            fn parse_user_agent(&self, ua: &str) -> Option<UserAgentInfo> {
                let (model, firmware, mac) = $parse(ua::unquote(ua))?;
                Some(UserAgentInfo { vendor: $id, model, firmware, mac })
            }
            fn device_files(&self, _model: &'static ModelInfo, _mac: Mac) -> Vec<FileSpec> {
                Vec::new()
            }
            fn mac_in_file_name(&self, _file_name: &str) -> Option<Mac> {
                None
            }
            fn model_file(&self, _file_name: &str, _ua_model: Option<&str>) -> Option<(&'static ModelInfo, FileSpec)> {
                None
            }
        }
    };
}

type Parsed = (Option<String>, Option<String>, Option<Mac>);

ua_only_vendor!(
    /// Polycom / Poly UC phones (UA only).
    Polycom, "polycom", "Polycom", parse_polycom,
    // Account and provisioning passwords, the config encryption key (Poly UC Software
    // administrator's guide; documents.polycom.com/bundle/ucs-ag-5-8-1).
    &["reg.{n}.auth.password", "device.prov.password", "device.sec.configEncryption.key"]
);

fn some(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// `FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application`; newer Poly firmware adds
/// `(SN:482567b5313f)`, which carries the MAC.
fn parse_polycom(ua: &str) -> Option<Parsed> {
    let rest = ua.strip_prefix("FileTransport ")?;
    let (head, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    if !head.starts_with("Poly") {
        return None;
    }
    let (product, version) = head.split_once("-UA/")?;
    let model = product.split_once('-').map_or("", |(_, m)| m);
    let mac = tail.split_once("(SN:").and_then(|(_, s)| s.split_once(')')).and_then(|(m, _)| ua::plain_mac(m));
    Some((some(model), some(version), mac))
}
