//! The base of every URL the server derives into a device's settings at render time
//! (`firmware.url`, the resource and directory URLs): the address the device already
//! provisions from, so a derived URL reaches the same listener, through the same NAT and
//! balancer, as the config fetch that names it.

use sipprov_model::{known, Settings};

use super::Files;

impl Files {
    /// The origin and path of the device's merged `provisioning.url`, else of `[pnp] url`,
    /// without query, fragment or trailing `/`; `None` when neither is set, and the caller
    /// then fails the render naming `provisioning.url` (a URL the phone cannot reach would be
    /// worse than none).
    pub(crate) fn derived_base(&self, settings: &Settings) -> Option<String> {
        let url = settings
            .get_key(&known::PROVISIONING_URL)
            .filter(|u| u.contains("://"))
            .map(str::to_string)
            .or_else(|| self.pnp_url.clone())?;
        Some(base_of(&url).to_string())
    }
}

/// `url` without query, fragment or trailing slash, to put a path starting with `/` after.
fn base_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::base_of;

    #[test]
    fn the_base_keeps_origin_and_path_only() {
        assert_eq!(base_of("http://p.example/"), "http://p.example");
        assert_eq!(base_of("https://p.example:8443/prov/?x=1#f"), "https://p.example:8443/prov");
        assert_eq!(base_of("http://p.example"), "http://p.example");
    }
}
