//! Vendors sipprov recognises but cannot provision yet: User-Agent parsing only.
//!
//! They have no models, files or templates, so the server can name them in logs and refuse
//! to add them with a clear message; their check-sync events are in [`crate::events`].
//! UA samples and shapes are from research `config-formats.md` §8.3 (Fanvil), which quotes the
//! wazo plugins. Polycom, Snom, Grandstream and Cisco have their own modules,
//! [`crate::polycom`], [`crate::snom`], [`crate::grandstream`] and [`crate::cisco`].

use sipprov_model::Mac;

use crate::ua::{self, is_numeric_version};
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
    /// Fanvil phones (UA only).
    Fanvil, "fanvil", "Fanvil", parse_fanvil,
    // Line passwords, provisioning password, config encryption keys (wazo
    // `wazo-fanvil/common/templates/base.tpl`; fpbx `resources/templates/provision/fanvil/x6u/{$mac}.cfg`).
    &[
        "Register_Pswd",
        "RegisterPswd",
        "DefaultPassword",
        "Config_File_Key",
        "Common_Cfg_File_Key",
        "DeviceCfgFileKey",
        "CommonCfgFileKey",
    ]
);

fn some(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// `Fanvil X6U Pro 0.0.10 0c383e2cd782`: the model may contain a space; the MAC is last.
fn parse_fanvil(ua: &str) -> Option<Parsed> {
    let t: Vec<&str> = ua.trim_end_matches(')').split_whitespace().collect();
    if t.first() != Some(&"Fanvil") || t.len() < 3 {
        return None;
    }
    let mac = ua::plain_mac(t[t.len() - 1]);
    let end = if mac.is_some() { t.len() - 1 } else { t.len() };
    let (firmware, model_end) = match t.get(end - 1) {
        Some(v) if end > 2 && is_numeric_version(v) => (Some(v.to_string()), end - 1),
        _ => (None, end),
    };
    Some((some(&t[1..model_end].join(" ")), firmware, mac))
}
