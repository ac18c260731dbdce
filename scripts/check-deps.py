#!/usr/bin/env python3
"""Offline dependency policy check: licenses and duplicate crate versions.

Reads `cargo metadata --locked` (offline when the local registry cache has every manifest; no
advisory database or other service is consulted), then fails when

* a package's SPDX license expression cannot be satisfied with the licenses in `ALLOWED`
  (every `AND` term must be allowed; one `OR` alternative suffices), or a package has none;
* a crate appears in two or more versions and is not listed in `KNOWN_DUPLICATES`, or a listed
  duplicate has disappeared (so the list stays true).

Run by scripts/test.sh. To accept a new duplicate, add it below with the reason it cannot be
unified (usually: two dependencies pin different major versions).
"""

import json
import re
import subprocess
import sys
from collections import defaultdict

# Permissive licenses, compatible with shipping sipprov under Apache-2.0.
ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause", "BSD-3-Clause",
    "ISC", "Zlib", "Unicode-3.0", "Unlicense", "CC0-1.0", "BSL-1.0", "0BSD",
    "CDLA-Permissive-2.0",
}

# Crate -> why two versions are in the graph. Each entry is checked to still be a duplicate.
KNOWN_DUPLICATES = {
    "base64": "sqlx 0.9 pins 0.22, hyper-util and reqwest use 0.23",
    "block-buffer": "RustCrypto 0.10 (via sqlx's sha2 0.10) and 0.11 generations",
    "cpufeatures": "RustCrypto 0.10 and 0.11 generations",
    "crypto-common": "RustCrypto 0.10 and 0.11 generations",
    "digest": "sqlx uses sha2 0.10; our crates use sha2/md-5 0.11",
    "sha2": "sqlx uses sha2 0.10; our crates use 0.11",
    "getrandom": "rand 0.10 uses 0.4; ring 0.17 (rustls) uses 0.2",
    "hashbrown": "sqlx's hashlink pins 0.16; indexmap uses 0.17",
    "syn": "clap_derive 4.6 uses syn 3; the other derives use syn 2",
    "windows-sys": "Windows-only crates pin different versions (never built here)",
}


def metadata():
    """The whole resolved graph. Offline when cargo's cache has every manifest; a fresh machine
    whose build skipped other platforms' crates (windows-sys, ...) lets cargo fetch their
    manifests from the registry it already uses. No advisory database, no other service."""
    base = ["cargo", "metadata", "--format-version", "1", "--locked"]
    run = subprocess.run(base + ["--offline"], capture_output=True, text=True)
    if run.returncode != 0:
        run = subprocess.run(base, check=True, capture_output=True, text=True)
    return json.loads(run.stdout)


def satisfiable(expr):
    """True when the SPDX expression can be met with ALLOWED licenses."""
    # Old crates write `MIT/Apache-2.0` for `MIT OR Apache-2.0`.
    expr = expr.replace("/", " OR ")
    expr = re.sub(r"\s+", " ", expr).strip()
    return any(
        all(term.strip(" ()") in ALLOWED for term in alternative.split(" AND "))
        for alternative in split_or(expr)
    )


def split_or(expr):
    """The OR alternatives of an expression, distributing a parenthesised OR over AND."""
    group = re.match(r"^\((.*?)\) AND (.*)$", expr)
    if group:
        inner, rest = group.groups()
        return [f"{alt} AND {rest}" for alt in inner.split(" OR ")]
    return expr.split(" OR ")


def main():
    meta = metadata()
    ours = {p["id"] for p in meta["packages"] if p["source"] is None}
    problems = []
    versions = defaultdict(set)
    for pkg in meta["packages"]:
        versions[pkg["name"]].add(pkg["version"])
        if pkg["id"] in ours:
            continue
        lic = pkg.get("license")
        if not lic:
            problems.append(f"{pkg['name']} {pkg['version']}: no SPDX license expression")
        elif not satisfiable(lic):
            problems.append(f"{pkg['name']} {pkg['version']}: license {lic!r} is not in the allowed set")
    duplicates = {name for name, v in versions.items() if len(v) > 1}
    for name in sorted(duplicates - KNOWN_DUPLICATES.keys()):
        problems.append(
            f"{name} is in the graph in versions {', '.join(sorted(versions[name]))}: unify them, or "
            "add it to KNOWN_DUPLICATES in scripts/check-deps.py with the reason"
        )
    for name in sorted(KNOWN_DUPLICATES.keys() - duplicates):
        problems.append(f"{name} is no longer duplicated: remove it from KNOWN_DUPLICATES")
    for p in problems:
        print(f"check-deps: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-deps: {len(meta['packages'])} packages, licenses allowed, "
          f"{len(duplicates)} known duplicates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
