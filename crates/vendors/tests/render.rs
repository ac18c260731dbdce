//! Rendering: mapping, escaping, errors, overrides and byte stability.

use std::path::Path;

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, FileScope, FileSpec, RenderContext, RenderError, Renderer, Vendor};

fn settings(items: &[&str]) -> Settings {
    Settings::parse_assignments(items.iter().copied()).unwrap()
}

/// Renders the device's file `index` with `renderer`.
fn render_with(r: &Renderer, vendor: &str, model: &str, index: usize, st: &Settings) -> Result<String, RenderError> {
    let v: &'static dyn Vendor = registry().get(vendor).unwrap();
    let model = v.model(model).unwrap();
    let mac: Mac = "001565aabbcc".parse().unwrap();
    let file = &v.device_files(model, mac)[index];
    let ctx = RenderContext { vendor: v, model, mac: Some(mac), settings: st, firmware: None };
    r.render(&ctx, file).map(|b| String::from_utf8(b).unwrap())
}

fn render(vendor: &str, model: &str, index: usize, items: &[&str]) -> String {
    render_with(&Renderer::new(None), vendor, model, index, &settings(items)).unwrap()
}

fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Per vendor, what the file says about check-sync reboots: by default the NOTIFY decides
/// (`reboot=true` reboots, `reboot=false` re-provisions); `sip.notify_reboot = 0` stops reboots
/// where the vendor can say so, and the server refuses to ask for one ([`Vendor::reboot_refusal`]).
#[test]
fn check_sync_reboot_follows_the_notify_by_default() {
    let cases: [(&str, &str, usize, &str, &str); 3] = [
        ("yealink", "T46S", 1, "sip.notify_reboot_enable = 0\n", "sip.notify_reboot_enable = 0\n"),
        (
            "gigaset",
            "N870",
            0,
            r#"<param name="SystemSettings.global.CheckSyncRebootEnabled" value="1"/>"#,
            r#"<param name="SystemSettings.global.CheckSyncRebootEnabled" value="0"/>"#,
        ),
        (
            "snom",
            "D345",
            0,
            r#"<checksync_action perm="R"></checksync_action>"#,
            r#"<checksync_action perm="R">sync</checksync_action>"#,
        ),
    ];
    for (vendor, model, index, allowed, disabled) in cases {
        let v = registry().get(vendor).unwrap();
        let m = v.model(model).unwrap();
        for on in [&[][..], &["sip.notify_reboot=1"][..]] {
            assert!(render(vendor, model, index, on).contains(allowed), "{vendor} {on:?}");
            assert_eq!(v.reboot_refusal(m, &settings(on)), None, "{vendor} {on:?}");
        }
        assert!(render(vendor, model, index, &["sip.notify_reboot=off"]).contains(disabled), "{vendor}");
        let refusal = v.reboot_refusal(m, &settings(&["sip.notify_reboot=0"])).expect(vendor);
        assert!(refusal.contains("sip.notify_reboot"), "{vendor}: {refusal}");
    }
    // A raw override that stops reboots is read from the file too.
    let snom = registry().get("snom").unwrap();
    let refusal = snom.reboot_refusal(snom.model("D345").unwrap(), &settings(&["vendor.checksync_action=reregister"]));
    assert!(refusal.unwrap().contains("checksync_action = \"reregister\""));
    // Polycom does not read reboot=true: its file decides, and rebooting on every check-sync is
    // an explicit choice, so a reboot is refused until sip.notify_reboot=1 says so.
    let polycom = registry().get("polycom").unwrap();
    let vvx = polycom.model("VVX410").unwrap();
    assert!(polycom.reboot_refusal(vvx, &Settings::new()).unwrap().contains("alwaysReboot"));
    assert_eq!(polycom.reboot_refusal(vvx, &settings(&["sip.notify_reboot=1"])), None);
    // Every other provisionable vendor: reboots allowed by default, refused with sip.notify_reboot=0.
    for v in registry().vendors().iter().filter(|v| !v.models().is_empty() && v.id() != "polycom") {
        for m in v.models() {
            assert_eq!(v.reboot_refusal(m, &Settings::new()), None, "{} {}", v.id(), m.name);
            assert!(v.reboot_refusal(m, &settings(&["sip.notify_reboot=0"])).is_some(), "{} {}", v.id(), m.name);
        }
    }
    // The event pair of each vendor whose NOTIFY says which it wants (Polycom's config decides).
    for (id, resync, reboot) in [
        ("yealink", "check-sync;reboot=false", "check-sync;reboot=true"),
        ("gigaset", "check-sync;reboot=false", "check-sync;reboot=true"),
        ("audiocodes", "check-sync;reboot=false", "check-sync;reboot=true"),
        ("snom", "check-sync;reboot=false", "check-sync;reboot=true"),
        ("grandstream", "resync", "check-sync;reboot=true"),
        ("cisco", "resync", "reboot"),
    ] {
        let got = (sipprov_vendors::check_sync_event(id, false), sipprov_vendors::check_sync_event(id, true));
        assert_eq!(got, (Some(resync), Some(reboot)), "{id}");
    }
    let audiocodes = registry().get("audiocodes").unwrap();
    let off = settings(&["vendor.EnableSIPRemoteReset=0"]);
    assert!(audiocodes
        .reboot_refusal(audiocodes.model("MP-118").unwrap(), &off)
        .unwrap()
        .contains("EnableSIPRemoteReset"));
    let yealink = registry().get("yealink").unwrap();
    let ignore = settings(&["vendor.sip.notify_reboot_enable=2"]);
    assert!(yealink.reboot_refusal(yealink.model("T46S").unwrap(), &ignore).unwrap().contains("notify_reboot_enable"));
}

#[test]
fn yealink_first_line_and_admin_password() {
    let out = render("yealink", "T46S", 1, &["admin.password=pw", "line.1.username=1001"]);
    assert!(out.starts_with("#!version:1.0.0.1\n"), "{out}");
    assert!(out.contains("static.security.user_password = admin:pw\n"));
    assert!(out.contains("account.1.auth_name = 1001\n") && out.contains("account.1.label = 1001\n"));
}

#[test]
fn transports_map_per_vendor() {
    let lines = |t: &str| {
        ["line.1.username=1".to_string(), "line.1.registrar=pbx".to_string(), format!("line.1.transport={t}")]
    };
    for (t, yealink, gigaset, mp) in [("udp", "0", "1", "0"), ("tcp", "1", "2", "1"), ("tls", "2", "3", "2")] {
        let l = lines(t);
        let l: Vec<&str> = l.iter().map(String::as_str).collect();
        assert!(
            render("yealink", "T46S", 1, &l).contains(&format!("account.1.sip_server.1.transport_type = {yealink}\n"))
        );
        assert!(render("yealink", "W80DM", 1, &l)
            .contains(&format!("template.1.sip_server.1.transport_type = {yealink}\n")));
        assert!(render("gigaset", "N670", 0, &l).contains(&format!(r#"TransportProtocol" value="{gigaset}""#)));
        assert!(render("audiocodes", "MP-112", 0, &l).contains(&format!("SIPTransportType = {mp}\n")));
    }
}

#[test]
fn time_zone_offsets_and_names_convert() {
    assert!(render("yealink", "T46S", 1, &["time.zone=-05:30"]).contains("local_time.time_zone = -5:30\n"));
    let paris = render("yealink", "T46S", 1, &["time.zone=Europe/Paris"]);
    assert!(paris.contains("local_time.time_zone = +1\nlocal_time.summer_time = 1\n"), "{paris}");
    assert!(!render("yealink", "T46S", 1, &["time.zone=+1"]).contains("summer_time"), "offsets keep the phone's DST");
    assert!(render("yealink", "T46S", 1, &["time.zone=Asia/Tokyo"]).contains("local_time.summer_time = 0\n"));
    assert!(render("audiocodes", "440HD", 0, &["time.zone=+10"]).contains("system/ntp/gmt_offset=+10:00\n"));
    assert!(render("audiocodes", "MP-118", 0, &["time.zone=-3"]).contains("NTPServerUTCOffset = -10800\n"));
    // A zone without daylight saving time is its offset; one with it is refused on AudioCodes.
    assert!(render("audiocodes", "440HD", 0, &["time.zone=Asia/Kolkata"]).contains("gmt_offset=+05:30\n"));
    let err = sipprov_vendors::validate_device("audiocodes", "440HD", &settings(&["time.zone=Europe/Paris"]));
    assert!(err.unwrap_err().to_string().contains("time.zone"));
    let gs = render("grandstream", "GXP1628", 0, &["time.zone=America/New_York"]);
    assert!(gs.contains("<P64>EST5EDT,M3.2.0,M11.1.0</P64>"), "{gs}");
}

#[test]
fn audiocodes_periods_and_remote_reset() {
    let hd = render("audiocodes", "450HD", 0, &["provisioning.interval_minutes=120"]);
    assert!(hd.contains("provisioning/period/type=hourly\nprovisioning/period/hourly/hours_interval=2\n"), "{hd}");
    assert!(render("audiocodes", "450HD", 0, &["provisioning.interval_minutes=5"]).contains("type=every5minutes\n"));
    let mp = render("audiocodes", "MP-124", 0, &["provisioning.interval_minutes=30"]);
    assert!(mp.contains("EnableSIPRemoteReset = 1\n") && mp.contains("AutoUpdateFrequency = 30\n"));
    assert!(mp.ends_with('\n'), "an ini file must end with a newline");
}

#[test]
fn vendor_override_replaces_instead_of_duplicating() {
    let out = render(
        "yealink",
        "T46S",
        1,
        &["line.1.username=1001", "vendor.account.1.user_name=2002", "vendor.custom.key=x"],
    );
    assert_eq!(out.matches("account.1.user_name").count(), 1, "{out}");
    assert!(out.contains("account.1.user_name = 2002\n") && out.ends_with("custom.key = x\n"));
    let mp = render("audiocodes", "MP-118", 0, &["vendor.enablesipremotereset=0"]);
    assert_eq!(mp.to_ascii_lowercase().matches("enablesipremotereset").count(), 1, "{mp}");
    assert!(mp.contains("EnableSIPRemoteReset = 0\n"), "ini names are case-insensitive: {mp}");
}

#[test]
fn common_file_holds_no_device_data_or_secrets() {
    let secrets = ["line.1.username=1001", "line.1.password=hunter2", "admin.password=adminpw", "vendor.x.token=tok3n"];
    let mut items = vec!["provisioning.url=https://p.example/", "vendor.features.a=1"];
    items.extend(secrets);
    let out = render("yealink", "T46S", 0, &items);
    for leak in ["1001", "hunter2", "adminpw", "tok3n", "account."] {
        assert!(!out.contains(leak), "{leak} leaked into the common file:\n{out}");
    }
    assert!(
        out.contains("static.auto_provision.server.url = https://p.example/\n") && out.contains("features.a = 1\n")
    );

    // Even an override template that dumps everything sees no secrets.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "yealink/common.cfg.j2", "{{ settings }} {{ lines }} {{ mac }}\n");
    let dump = render_with(&Renderer::new(Some(dir.path().into())), "yealink", "T46S", 0, &settings(&items)).unwrap();
    assert!(!dump.contains("hunter2") && !dump.contains("adminpw") && !dump.contains("1001"), "{dump}");
}

#[test]
fn xml_values_are_escaped() {
    let out = render("gigaset", "N870", 0, &["line.1.username=1001", r#"line.1.display_name=A "B" <C> & D's"#]);
    assert!(out.contains(r#"value="A &quot;B&quot; &lt;C&gt; &amp; D&apos;s""#), "{out}");
    assert!(!out.contains("<C>"));
}

#[test]
fn snom_values_are_escaped_and_raw_names_checked() {
    let out = render(
        "snom",
        "D345",
        0,
        &["line.1.username=1001", "line.1.display_name=A <B> & C", "line.1.password=p&<w>\"'"],
    );
    assert!(out.contains(r#"<user_realname idx="1" perm="R">A &lt;B&gt; &amp; C</user_realname>"#), "{out}");
    assert!(out.contains(r#"<user_pass idx="1" perm="R">p&amp;&lt;w&gt;&quot;&apos;</user_pass>"#), "{out}");
    assert!(!out.contains("<B>") && !out.contains("p&<"));
    // A raw name that cannot be an element name (another vendor's, inherited) is left out.
    let out = render("snom", "D345", 0, &["vendor.personal_settings/language=English", "vendor.a<b=1", "vendor.ok=1"]);
    assert!(!out.contains("personal_settings") && !out.contains("a<b") && !out.contains("a&lt;b"), "{out}");
    assert!(out.contains(r#"<ok perm="R">1</ok>"#), "{out}");
}

#[test]
fn snom_overrides_and_outbound() {
    let base = ["line.1.username=1001", "line.1.registrar=pbx.example.com"];
    // No port or transport: no user_outbound, since only the full example shape is verified.
    let out = render("snom", "D345", 0, &base);
    assert!(
        !out.contains("user_outbound") && out.contains(r#"<user_host idx="1" perm="R">pbx.example.com</user_host>"#)
    );
    assert!(out.contains(r#"<checksync_action perm="R"></checksync_action>"#), "the NOTIFY decides: {out}");
    assert!(!out.contains("prov_polling"), "{out}");
    let mut items = base.to_vec();
    items.extend([
        "line.1.port=5061",
        "line.1.transport=tls",
        "vendor.user_host.1=sbc.example.com",
        "vendor.user_dtmf_info.1=sip_info_only",
        "vendor.language=Deutsch",
        "vendor.user_pname.1=",
        "provisioning.interval_minutes=30",
        "sip.notify_reboot=1",
    ]);
    let out = render("snom", "D345", 0, &items);
    assert_eq!(out.matches("<user_host ").count(), 1, "{out}");
    assert!(out.contains(r#"<user_host idx="1" perm="R">sbc.example.com</user_host>"#), "{out}");
    assert!(out.contains(r#"<user_outbound idx="1" perm="R">pbx.example.com:5061;transport=tls</user_outbound>"#));
    assert!(out.contains(r#"<user_dtmf_info idx="1" perm="R">sip_info_only</user_dtmf_info>"#), "{out}");
    assert!(out.contains(r#"<language perm="R">Deutsch</language>"#) && !out.contains("user_pname"), "{out}");
    assert!(out.contains(r#"<prov_polling_period perm="R">1800</prov_polling_period>"#), "{out}");
    assert!(out.contains(r#"<checksync_action perm="R"></checksync_action>"#), "{out}");
    items.push("vendor.user_outbound.1=");
    assert!(!render("snom", "D345", 0, &items).contains("user_outbound"));
}

#[test]
fn cisco_values_are_escaped_and_raw_names_checked() {
    let out = render(
        "cisco",
        "SPA504G",
        0,
        &["line.1.username=1001", "line.1.display_name=A <B> & C", "line.1.password=p&<w>\"'"],
    );
    assert!(out.contains("<Display_Name_1_>A &lt;B&gt; &amp; C</Display_Name_1_>"), "{out}");
    assert!(out.contains("<Password_1_>p&amp;&lt;w&gt;&quot;&apos;</Password_1_>"), "{out}");
    assert!(!out.contains("<B>") && !out.contains("p&<"));
    // A raw name that cannot be a Cisco element name (another vendor's, inherited) is left out.
    let out =
        render("cisco", "SPA504G", 0, &["vendor.voip/line=1", "vendor.fkey.3=x", "vendor.a<b=1", "vendor.Ok_1_=1"]);
    assert!(!out.contains("voip") && !out.contains("fkey") && !out.contains("a<b") && !out.contains("a&lt;b"), "{out}");
    assert!(out.contains("<Ok_1_>1</Ok_1_>"), "{out}");
}

#[test]
fn cisco_mapping_and_overrides() {
    let base = ["line.1.username=1001", "line.1.registrar=pbx.example.com"];
    let out = render("cisco", "CP-8841-3PCC", 0, &base);
    for element in [
        "<Provision_Enable>Yes</Provision_Enable>",
        "<Resync_On_Reset>Yes</Resync_On_Reset>",
        "<Resync_From_SIP>Yes</Resync_From_SIP>",
        "<Line_Enable_1_>Yes</Line_Enable_1_>",
        "<User_ID_1_>1001</User_ID_1_>",
        "<Use_Auth_ID_1_>Yes</Use_Auth_ID_1_>",
        "<Auth_ID_1_>1001</Auth_ID_1_>",
        "<Proxy_1_>pbx.example.com</Proxy_1_>",
    ] {
        assert!(out.contains(element), "{element} missing from {out}");
    }
    assert!(
        !out.contains("Resync_Periodic") && !out.contains("Profile_Rule") && !out.contains("SIP_Transport"),
        "{out}"
    );
    assert!(!out.contains("Upgrade_"), "{out}");
    let mut items = base.to_vec();
    items.extend([
        "line.1.port=5061",
        "line.1.transport=tls",
        "line.1.auth_username=a1001",
        "provisioning.url=http://prov.example.com:8080",
        "provisioning.interval_minutes=30",
        "vendor.Resync_On_Reset=No",
        "vendor.Display_Name_1_=",
    ]);
    let out = render("cisco", "CP-8841-3PCC", 0, &items);
    assert!(out.contains("<Proxy_1_>pbx.example.com:5061</Proxy_1_>"), "{out}");
    assert!(out.contains("<Auth_ID_1_>a1001</Auth_ID_1_>"), "{out}");
    assert!(out.contains("<Profile_Rule>http://prov.example.com:8080/$MA.xml</Profile_Rule>"), "{out}");
    assert!(out.contains("<Resync_Periodic>1800</Resync_Periodic>"), "{out}");
    assert!(out.contains("<Resync_On_Reset>No</Resync_On_Reset>") && !out.contains("Display_Name"), "{out}");
    assert!(out.contains("<SIP_Transport_1_>TLS</SIP_Transport_1_>"), "{out}");
    items.push("vendor.Proxy_1_=sbc.example.com");
    let out = render("cisco", "CP-8841-3PCC", 0, &items);
    assert_eq!(out.matches("<Proxy_1_>").count(), 1, "{out}");
    assert!(out.contains("<Proxy_1_>sbc.example.com</Proxy_1_>"), "{out}");
}

#[test]
fn grandstream_values_are_escaped() {
    let out = render(
        "grandstream",
        "GXP1628",
        0,
        &["line.1.username=1001", "line.1.display_name=A <B> & C", "line.1.password=p&<w>\"'"],
    );
    assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\">\n"), "{out}");
    assert!(out.contains("<mac>001565aabbcc</mac>") && out.contains("<config version=\"1\">"), "{out}");
    assert!(out.contains("<P3>A &lt;B&gt; &amp; C</P3>") && out.contains("<P270>A &lt;B&gt; &amp; C</P270>"), "{out}");
    assert!(out.contains("<P34>p&amp;&lt;w&gt;&quot;&apos;</P34>"), "{out}");
    assert!(!out.contains("<B>") && !out.contains("p&<"));
    // Check-sync needs Allow SIP Reset, set whatever else is configured.
    assert!(out.contains("<P26015>1</P26015>") && out.contains("<P271>1</P271>"), "{out}");
}

#[test]
fn grandstream_mapping_and_refusals() {
    let base = [
        "line.1.username=1001",
        "line.1.registrar=pbx.example.com",
        "line.1.label=Front desk",
        "line.1.display_name=Alice",
        "provisioning.url=http://prov.example.com/gs/",
    ];
    let out = render("grandstream", "HT801", 0, &base);
    for element in [
        "<P270>Front desk</P270>",
        "<P47>pbx.example.com</P47>",
        "<P35>1001</P35>",
        "<P36>1001</P36>",
        "<P3>Alice</P3>",
        "<P212>1</P212>",
        "<P237>prov.example.com/gs</P237>",
    ] {
        assert!(out.contains(element), "{element} missing from {out}");
    }
    assert!(!out.contains("P194") && !out.contains("P193") && !out.contains("<P34>"), "{out}");

    let mut items = base.to_vec();
    items.extend([
        "line.1.port=5080",
        "provisioning.interval_minutes=60",
        "vendor.P36=auth1001",
        "vendor.P238=0",
        "vendor.P270=",
        "vendor.personal_settings/language=English",
        "vendor.user_dtmf_info.1=sip_info_only",
    ]);
    let out = render("grandstream", "HT801", 0, &items);
    assert!(out.contains("<P47>pbx.example.com:5080</P47>") && out.contains("<P36>auth1001</P36>"), "{out}");
    assert!(out.contains("<P194>1</P194>") && out.contains("<P193>60</P193>"), "{out}");
    assert_eq!(out.matches("<P36>").count(), 1, "{out}");
    assert!(out.contains("<P238>0</P238>") && !out.contains("P270"), "{out}");
    // Raw names that are not P-values (inherited, meant for other vendors) are left out.
    assert!(!out.contains("language") && !out.contains("user_dtmf_info"), "{out}");

    // A device's own non-P-value names, a second account and an out-of-range interval are refused.
    let check = |items: &[&str]| sipprov_vendors::validate_device("grandstream", "HT814", &settings(items));
    assert!(check(&items[..5]).is_ok());
    assert!(check(&items).unwrap_err().to_string().contains("vendor."), "{:?}", check(&items));
    let two = check(&["line.1.username=1001", "line.2.username=1002"]).unwrap_err().to_string();
    assert!(two.contains("line.2") && two.contains("HT814"), "{two}");
    // Accounts 2 to 4 of a four-account phone, transports included; account 5 is refused.
    let gxp = |items: &[&str]| sipprov_vendors::validate_device("grandstream", "GRP2614", &settings(items));
    assert!(gxp(&["line.2.username=1002", "line.2.registrar=pbx", "line.2.transport=tls"]).is_ok());
    assert!(gxp(&["line.3.username=1003", "line.3.registrar=pbx", "line.3.transport=tls"]).is_ok());
    let five = gxp(&["line.5.username=1005", "line.5.registrar=pbx"]).unwrap_err().to_string();
    assert!(five.contains("line.5") && five.contains("has 4 SIP accounts"), "{five}");
    // Settings already cap the interval at 525600 minutes, inside P193's upper bound.
    for bad in ["provisioning.interval_minutes=59", "provisioning.interval_minutes=1"] {
        let err = check(&[bad]).unwrap_err().to_string();
        assert!(err.contains("provisioning.interval_minutes") && err.contains("60 to 5256000"), "{err}");
    }
    assert!(check(&["provisioning.interval_minutes=525600"]).is_ok());
    // Out of range from an inherited level: P194/P193 are left out rather than sent.
    assert!(!render("grandstream", "HT814", 0, &["provisioning.interval_minutes=30"]).contains("P19"));
}

#[test]
fn strict_undefined_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "yealink/mac.cfg.j2", "#!version:1.0.0.1\n{{ model.name }}\n\n{{ no_such_value }}\n");
    let err = render_with(&Renderer::new(Some(dir.path().into())), "yealink", "T46S", 1, &Settings::new()).unwrap_err();
    assert_eq!(err.to_string(), "yealink/mac.cfg.j2 line 4: undefined value");
    assert_eq!((err.template.as_str(), err.line), ("yealink/mac.cfg.j2", Some(4)));
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "gigaset/nx70.xml.j2", "<a>\n{% for %}\n");
    let err = render_with(&Renderer::new(Some(dir.path().into())), "gigaset", "N870", 0, &Settings::new()).unwrap_err();
    assert!(err.to_string().starts_with("gigaset/nx70.xml.j2 line 2: syntax error"), "{err}");
}

#[test]
fn ini_cell_refuses_table_breaking_values() {
    let st = settings(&["line.1.username=1001", "line.1.password=a;b"]);
    let err = render_with(&Renderer::new(None), "audiocodes", "MP-118", 0, &st).unwrap_err();
    assert_eq!(err.template, "audiocodes/mp11x.ini.j2");
    assert!(err.line.is_some() && err.message.contains("ini table"), "{err}");
}

#[test]
fn runaway_templates_run_out_of_fuel() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "yealink/mac.cfg.j2",
        "{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}\n",
    );
    let err = render_with(&Renderer::new(Some(dir.path().into())), "yealink", "T46S", 1, &Settings::new()).unwrap_err();
    assert!(err.message.contains("fuel"), "{err}");
}

#[test]
fn override_wins_only_for_its_own_name_and_reload_picks_up_edits() {
    let dir = tempfile::tempdir().unwrap();
    let r = Renderer::new(Some(dir.path().into()));
    let st = settings(&["site.name=HQ"]);
    let empty = r.overrides_fingerprint();
    assert!(render_with(&r, "yealink", "T46S", 1, &st).unwrap().starts_with("#!version"));

    write(
        dir.path(),
        "yealink/mac.cfg.j2",
        "site={{ settings[\"site.name\"] }} model={{ model.name }} mac={{ mac }}\n",
    );
    assert_ne!(r.overrides_fingerprint(), empty);
    // Cached until reload.
    assert!(render_with(&r, "yealink", "T46S", 1, &st).unwrap().starts_with("#!version"));
    r.reload();
    assert_eq!(render_with(&r, "yealink", "T46S", 1, &st).unwrap(), "site=HQ model=T46S mac=001565aabbcc\n");
    // Other templates still come from the defaults.
    assert!(render_with(&r, "yealink", "T46S", 0, &st).unwrap().starts_with("#!version:1.0.0.1\n"));
    assert_eq!(Renderer::new(None).overrides_fingerprint(), 0);
}

#[test]
fn template_names_cannot_escape_the_override_dir() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "inner/x.j2", "inner\n");
    let spec = FileSpec {
        name: "x".into(),
        aliases: vec![],
        template: "../x.j2",
        scope: FileScope::Device,
        content_type: "text/plain",
        name_pattern: None,
    };
    std::fs::write(dir.path().join("x.j2"), "outside\n").unwrap();
    let r = Renderer::new(Some(dir.path().join("inner")));
    let v = registry().get("yealink").unwrap();
    let ctx = RenderContext {
        vendor: v,
        model: v.model("T46S").unwrap(),
        mac: None,
        settings: &Settings::new(),
        firmware: None,
    };
    let err = r.render(&ctx, &spec).unwrap_err();
    assert!(err.to_string().starts_with("../x.j2: template not found"), "{err}");
}

#[test]
fn output_is_byte_stable() {
    let a = settings(&["line.2.username=2", "line.1.username=1", "vendor.b=2", "vendor.a=1", "time.zone=+2"]);
    let b = settings(&["vendor.a=1", "time.zone=+2", "line.1.username=1", "vendor.b=2", "line.2.username=2"]);
    for (vendor, model) in [
        ("yealink", "T46S"),
        ("yealink", "W70B"),
        ("gigaset", "N870"),
        ("audiocodes", "440HD"),
        ("audiocodes", "MP-118"),
    ] {
        let first = render_with(&Renderer::new(None), vendor, model, 0, &a).unwrap();
        let second = render_with(&Renderer::new(None), vendor, model, 0, &b).unwrap();
        assert_eq!(first, second, "{vendor} {model}");
    }
}

#[test]
fn renderer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Renderer>();
}

#[test]
fn common_file_holds_no_raw_vendor_secret_nor_url_password() {
    let items = [
        "vendor.P2=gsadmin",
        "vendor.user_pass.2=snompw",
        "vendor.http_pass=snomhttp",
        "vendor.features.a=1",
        "provisioning.url=https://prov:urlpw@p.example/",
    ];
    let out = render("yealink", "T46S", 0, &items);
    for leak in ["gsadmin", "snompw", "snomhttp", "urlpw"] {
        assert!(!out.contains(leak), "{leak} leaked into the common file:\n{out}");
    }
    assert!(out.contains("features.a = 1\n"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "yealink/common.cfg.j2", "{{ settings }} {{ params }}\n");
    let dump = render_with(&Renderer::new(Some(dir.path().into())), "yealink", "T46S", 0, &settings(&items)).unwrap();
    for leak in ["gsadmin", "snompw", "snomhttp", "urlpw"] {
        assert!(!dump.contains(leak), "{leak} leaked into the common file:\n{dump}");
    }
}

#[test]
fn template_errors_never_carry_a_setting_value() {
    let st = settings(&["line.1.username=1001", "line.1.password=hunter2", "vendor.P2=gsadmin7", "site.code=Zone9"]);
    let attempts = [
        "{% include settings[\"vendor.P2\"] %}\n",
        "{{ settings[\"line.1.password\"] + 1 }}\n",
        "{{ range(settings[\"line.1.password\"]) }}\n",
        "{{ settings[\"line.1.password\"] | int | foo }}\n",
        "{% for x in settings[\"line.1.password\"] %}{{ x.y.z }}{% endfor %}\n",
        "{{ lines[0].password.no_such }}\n",
        "{{ settings[settings[\"site.code\"]] }}\n",
        "{% set a, b = settings[\"vendor.P2\"] %}\n",
    ];
    for (i, source) in attempts.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "yealink/mac.cfg.j2", &format!("#!version:1.0.0.1\n{source}"));
        let r = Renderer::new(Some(dir.path().into()));
        let err = render_with(&r, "yealink", "T46S", 1, &st).unwrap_err();
        let shown = format!("{err} {err:?}");
        for secret in ["hunter2", "gsadmin7", "Zone9"] {
            assert!(!shown.contains(secret), "attempt {i}: {secret} in {shown}");
        }
        assert_eq!(err.template, "yealink/mac.cfg.j2", "attempt {i}: {shown}");
        assert_eq!(err.line, Some(2), "attempt {i}: {shown}");
    }
}

#[test]
fn in_memory_overrides_serve_at_once_and_check_names_line_and_column() {
    let r = Renderer::new(None);
    let st = settings(&["site.name=HQ"]);
    let mut set = std::collections::BTreeMap::new();
    set.insert("yealink/mac.cfg.j2".to_string(), "site={{ settings[\"site.name\"] }}\n".to_string());
    r.set_overrides(std::sync::Arc::new(set.clone()));
    assert_eq!(render_with(&r, "yealink", "T46S", 1, &st).unwrap(), "site=HQ\n");
    assert!(r.check("yealink/mac.cfg.j2").is_ok());

    set.insert("yealink/mac.cfg.j2".to_string(), "ok\nok\n  {{ a }\n".to_string());
    let broken = Renderer::with_overrides(std::sync::Arc::new(set));
    let err = broken.check("yealink/mac.cfg.j2").unwrap_err();
    assert_eq!((err.template.as_str(), err.line), ("yealink/mac.cfg.j2", Some(3)), "{err}");
    assert!(err.column.is_some_and(|c| c > 1), "{err:?}");
    // Replacing the set with an empty one serves the built-in again.
    r.set_overrides(Default::default());
    assert!(render_with(&r, "yealink", "T46S", 1, &st).unwrap().starts_with("#!version"));
}
