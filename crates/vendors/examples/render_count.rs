//! What one rendering of a device's file costs, for counting under callgrind: a Yealink T46S
//! device like `bench/scale.sh`'s (four line settings, merged with the global settings that
//! bench/http-instructions.sh sets, fetched by a phone reporting firmware 66.86.0.15) rendered `RENDERS` times with the built-in template. With a million
//! devices fetching at random nearly every fetch renders (the render cache cannot hold them),
//! so this is most of what a fetch costs there. No wall clock: run it twice under callgrind
//! and divide the difference by the difference in renders.
//!
//! ```text
//! cargo build --release -p sipprov-vendors --example render_count
//! valgrind --tool=callgrind target/release/examples/render_count 1000   # and 2000
//! ```

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, RenderContext, Renderer};

fn main() {
    let renders: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let vendor = registry().get("yealink").expect("yealink is built in");
    let model = vendor.model("T46S").expect("the T46S is a Yealink model");
    let global = Settings::parse_assignments([
        "provisioning.url=http://prov.example.com/",
        "time.ntp_server=pool.ntp.org",
        "security.open_device_files=1",
        "http.username=fleet",
        "http.password=bench-secret",
    ])
    .expect("valid global settings");
    let renderer = Renderer::new(None);
    let mut bytes = 0usize;
    for i in 0..renders {
        // A different device each time, as random fetches over a fleet are.
        let mac: Mac = format!("001565{:06x}", i % (1 << 24)).parse().expect("a MAC");
        let lines = [
            format!("line.1.username={}", 10000 + i),
            format!("line.1.password=pw{i:08}"),
            "line.1.registrar=pbx.example.com".to_string(),
            format!("line.1.display_name=User {i}"),
        ];
        let device = Settings::parse_assignments(lines.iter().map(String::as_str)).expect("valid device settings");
        let settings = Settings::merged([&global, &device]);
        let file = &vendor.own_file(model, mac).expect("a Yealink device has its own file");
        let ctx = RenderContext { vendor, model, mac: Some(mac), settings: &settings, firmware: Some("66.86.0.15") };
        bytes += renderer.render(&ctx, file).expect("the built-in template renders").len();
    }
    println!("{renders} renders, {bytes} bytes");
}
