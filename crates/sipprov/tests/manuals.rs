//! Shell completions and man pages generated from the CLI definition: bash loads the script and
//! completes subcommands with it, and every man page renders with groff without a warning.

mod common;

use std::process::Command;

use common::bin;

/// What bash offers after `words` (the last one being completed), with the generated script.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        r#"source "$1" || exit 3
spec=$(complete -p sipprov) || exit 4
fn=$(printf '%s' "$spec" | sed -E 's/.*-F ([^ ]+).*/\1/')
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT={point}
COMP_TYPE=9
"$fn" sipprov "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = words.join(" "),
        cword = words.len() - 1,
        point = line.len(),
    );
    let out =
        Command::new("bash").args(["--norc", "-c", &program, "complete-test"]).arg(script).output().expect("bash");
    assert!(out.status.success(), "bash failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

#[test]
fn bash_completes_subcommands_from_the_generated_script() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin()).args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = dir.path().join("sipprov.bash");
    std::fs::write(&script, &out.stdout).unwrap();

    let top = bash_completes(&script, &["sipprov", "bac"]);
    assert_eq!(top, ["backup"], "{top:?}");
    let re = bash_completes(&script, &["sipprov", "re"]);
    for want in ["render", "resync", "restore"] {
        assert!(re.contains(&want.to_string()), "{want} missing from {re:?}");
    }
    let device = bash_completes(&script, &["sipprov", "device", "u"]);
    assert!(device.contains(&"unlock".to_string()) && device.contains(&"uploads".to_string()), "{device:?}");

    for shell in ["zsh", "fish"] {
        let out = Command::new(bin()).args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("backup"), "{shell}");
    }
    assert!(!Command::new(bin()).args(["completions", "tcsh"]).output().unwrap().status.success());
}

#[test]
fn man_pages_exist_per_subcommand_and_render_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin()).arg("man").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut pages: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for want in [
        "sipprov.1",
        "sipprov-serve.1",
        "sipprov-backup.1",
        "sipprov-restore.1",
        "sipprov-device-add.1",
        "sipprov-campaign-retry.1",
    ] {
        assert!(pages.contains(&want.to_string()), "{want} missing from {pages:?}");
    }
    for page in &pages {
        let path = dir.path().join(page);
        // -k: preconv reads UTF-8 as man does; -ww: every warning; -z: only the diagnostics matter.
        let groff =
            Command::new("groff").args(["-k", "-man", "-Tutf8", "-ww", "-z"]).arg(&path).output().expect("groff");
        let warnings = String::from_utf8_lossy(&groff.stderr);
        assert!(groff.status.success() && warnings.is_empty(), "{page}: {warnings}");
    }
    let man = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("sipprov-restore.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man");
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && text.contains("sipprov-restore") && text.contains("--config"), "{text}");
}
