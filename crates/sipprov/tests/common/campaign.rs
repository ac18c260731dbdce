//! What the campaign tests on one node and on several share: a fleet of SIPp phones in the
//! inventory, and the campaign report.

use serde_json::Value;

use super::{write, TestServer};

/// Imports `count` Yealink devices whose contacts point at `port`, MACs 0015650xxxxx from `first`.
pub(crate) fn import(s: &TestServer, first: u32, count: u32, port: u16, group: &str) {
    let mut csv = String::from("mac,vendor,model,group,contact,line.1.username\n");
    for i in first..first + count {
        csv.push_str(&format!("001565{i:06x},yealink,T46S,{group},sip:{}@127.0.0.1:{port},{}\n", 10000 + i, 10000 + i));
    }
    let path = s.data_dir().join(format!("devices-{first}.csv"));
    write(path.clone(), &csv);
    s.ok(&["device", "import", path.to_str().unwrap()]);
}

/// Campaign `id`'s report, as `campaign show --json` prints it.
pub(crate) fn campaign(s: &TestServer, id: &str) -> Value {
    s.json(&["campaign", "show", id, "--json"])
}

/// How many devices of report `c` have `outcome`.
pub(crate) fn count(c: &Value, outcome: &str) -> u64 {
    c["counts"][outcome].as_u64().unwrap_or(0)
}
