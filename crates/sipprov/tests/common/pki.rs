//! Certificates for the TLS tests, made with the openssl CLI in a temporary directory: CAs,
//! certificates they sign, and self-signed ones, each as `<name>.pem` and `<name>.key`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

/// A P-256 key made with the request (`openssl req -newkey`).
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// A directory of test certificates.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        Pki { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// `<name>.<ext>` in the directory.
    pub(crate) fn path(&self, name: &str, ext: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.{ext}"))
    }

    /// The path of `<name>.pem` as a string, for command lines and TOML.
    pub(crate) fn pem(&self, name: &str) -> String {
        self.path(name, "pem").to_str().expect("utf-8 path").to_string()
    }

    /// The path of `<name>.key` as a string.
    pub(crate) fn key(&self, name: &str) -> String {
        self.path(name, "key").to_str().expect("utf-8 path").to_string()
    }

    fn openssl(&self, args: &[&str]) {
        run(Command::new("openssl").current_dir(self.dir.path()).args(args));
    }

    /// A self-signed CA (openssl's defaults: basicConstraints CA:TRUE).
    pub(crate) fn ca(&self, name: &str) -> &Pki {
        self.self_signed(name, &format!("DNS:{name}.test"))
    }

    /// A self-signed certificate naming `san` (e.g. `IP:127.0.0.1`), as phones make for
    /// themselves; like openssl's, it says CA:TRUE.
    pub(crate) fn self_signed(&self, name: &str, san: &str) -> &Pki {
        let (key, pem, subj, ext) =
            (format!("{name}.key"), format!("{name}.pem"), format!("/CN={name}"), format!("subjectAltName={san}"));
        let rest = ["-days", "2", "-keyout", &key, "-out", &pem, "-subj", &subj, "-addext", &ext];
        self.openssl(&[&["req", "-x509"][..], &EC_KEY, &rest].concat());
        self
    }

    /// A certificate signed by `ca` for `san`, usable as a TLS server and client.
    pub(crate) fn leaf(&self, ca: &str, name: &str, san: &str) -> &Pki {
        let ext = format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n");
        std::fs::write(self.path(name, "ext"), ext).expect("write extensions");
        let (key, csr, subj) = (format!("{name}.key"), format!("{name}.csr"), format!("/CN={name}"));
        self.openssl(&[&["req"][..], &EC_KEY, &["-keyout", &key, "-out", &csr, "-subj", &subj]].concat());
        let (ca_pem, ca_key, ext, pem) =
            (format!("{ca}.pem"), format!("{ca}.key"), format!("{name}.ext"), format!("{name}.pem"));
        let sign = ["x509", "-req", "-in", &csr, "-CA", &ca_pem, "-CAkey", &ca_key, "-CAcreateserial"];
        self.openssl(&[&sign[..], &["-days", "2", "-extfile", &ext, "-out", &pem]].concat());
        self
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}
