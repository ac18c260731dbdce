//! "Adding a vendor is one module": everything the rest of sipprov asks a vendor is answered by
//! its module through [`Vendor`], for every vendor in the registry. A module that leaves a piece
//! out fails here (or does not compile: the trait has no default for events, PnP dialect or
//! templates) instead of silently getting another vendor's or a generic answer.

use sipprov_model::Settings;
use sipprov_vendors::pnp::{self, provisioning_url};
use sipprov_vendors::{check_sync_event, registry, FileSpec, RenderContext, Renderer, Vendor};

/// Every file a vendor hands out for `model`: its device files and, where the model has one,
/// its common file.
fn files(v: &dyn Vendor, model: &'static sipprov_vendors::ModelInfo) -> Vec<FileSpec> {
    let mut files = v.device_files(model, "001565aabbcc".parse().unwrap());
    if let Some(common) = model.common_file {
        let (m, spec) = v.model_file(common, Some(model.name)).expect("the model's own common file resolves");
        assert_eq!(m.name, model.name, "{}: {common} resolves to another model", v.id());
        files.push(spec);
    }
    files
}

#[test]
fn ids_are_lower_case_and_unique() {
    let mut ids: Vec<&str> = registry().vendors().iter().map(|v| v.id()).collect();
    assert!(ids.iter().all(|id| !id.is_empty() && *id == id.to_ascii_lowercase()), "{ids:?}");
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "two modules share an id");
}

#[test]
fn every_vendor_answers_check_sync_from_its_module() {
    for v in registry().vendors() {
        let own = v.check_sync_events();
        assert!(!own.resync.is_empty() && !own.reboot.is_empty() && !own.source.is_empty(), "{}", v.id());
        // The lookup by id finds the module's own events, not a row of another vendor's.
        assert_eq!(check_sync_event(v.id(), false), Some(own.resync), "{}", v.id());
        assert_eq!(check_sync_event(v.id(), true), Some(own.reboot), "{}", v.id());
        for alias in own.aliases {
            assert_eq!(check_sync_event(alias, true), Some(own.reboot), "{} alias {alias}", v.id());
        }
    }
}

#[test]
fn every_vendor_answers_pnp_from_its_module() {
    let mac = "001565aabbcc".parse().ok();
    for v in registry().vendors() {
        let own = v.pnp_dialect();
        assert_eq!(pnp::dialect(v.id()), own, "{}", v.id());
        // Only the placeholders provisioning_url knows: anything else would reach the phone as is.
        let rest = own.path.replace("{MAC}", "").replace("{mac}", "");
        assert!(!rest.contains('{') && !rest.contains('}') && !rest.starts_with('/'), "{}: {}", v.id(), own.path);
        let url = provisioning_url(v.id(), "http://prov.example/", mac, None);
        assert!(url.starts_with("http://prov.example/") && !url.contains('{'), "{}: {url}", v.id());
    }
}

#[test]
fn every_template_a_vendor_names_is_its_own_and_renders_for_every_model() {
    let renderer = Renderer::new(None);
    let settings = Settings::parse_assignments(["line.1.username=1001", "line.1.registrar=pbx.example.com"]).unwrap();
    let mut all_names = Vec::new();
    for v in registry().vendors() {
        let own: Vec<&str> = v.templates().iter().map(|(name, _)| *name).collect();
        assert!(!own.is_empty(), "{} has no templates", v.id());
        for name in &own {
            assert!(name.starts_with(&format!("{}/", v.id())), "{}: {name} is outside its directory", v.id());
        }
        all_names.extend(own.iter().copied());
        assert!(!v.models().is_empty(), "{} lists no model", v.id());
        for model in v.models() {
            for file in files(*v, model) {
                assert!(
                    own.contains(&file.template),
                    "{} {}: {} is not in its templates()",
                    v.id(),
                    model.name,
                    file.template
                );
                let mac = (file.scope == sipprov_vendors::FileScope::Device).then(|| "001565aabbcc".parse().unwrap());
                let ctx = RenderContext { vendor: *v, model, mac, settings: &settings, firmware: None };
                let out = renderer.render(&ctx, &file);
                assert!(out.is_ok_and(|b| !b.is_empty()), "{} {}: {} does not render", v.id(), model.name, file.name);
            }
        }
    }
    let n = all_names.len();
    all_names.sort_unstable();
    all_names.dedup();
    assert_eq!(all_names.len(), n, "two vendors list the same template name");
}

#[test]
fn every_setting_key_a_vendor_reads_is_declared_by_it() {
    for v in registry().vendors() {
        for key in v.setting_keys() {
            assert!(key.key.starts_with(&format!("{}.", v.id())), "{}: {} is outside its namespace", v.id(), key.key);
            assert!(sipprov_vendors::vendor_key(key.key).is_some_and(|k| std::ptr::eq(k, key)), "{}", key.key);
        }
        // A vendor with dialects hands the choice to its templates as `<id>.dialect`, a key it owns.
        for model in v.models() {
            if let Some(dialect) = v.dialect(model, &Settings::new(), None) {
                let key = format!("{}.dialect", v.id());
                let declared = sipprov_vendors::vendor_key(&key).unwrap_or_else(|| panic!("{key} is not declared"));
                assert_eq!((declared.check)(dialect).as_deref(), Ok(dialect), "{key}");
            }
        }
    }
}
