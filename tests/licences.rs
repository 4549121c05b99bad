//! Dependency hygiene: every crate built into thumbq (for this platform, from `Cargo.lock`, read offline) carries
//! a licence that lets it ship in a permissively licensed service. The RustSec advisory audit needs the advisory
//! database from GitHub, which this machine cannot reach at test time: `make audit` runs it (docs/security.md).

use serde_json::Value;
use spdx::{Expression, LicenseItem, ParseMode};

/// Licences any crate may carry: permissive, no copyleft on a service.
const ALLOWED: [&str; 12] = [
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "ISC",
    "Zlib",
    "Unicode-3.0",
    "Unlicense",
    "BSL-1.0",
    "CC0-1.0",
];

#[test]
fn every_dependency_has_a_permissive_licence() {
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", &triple])
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    assert!(packages.len() > 100, "the whole tree, not only the workspace");
    let mut refused = Vec::new();
    for package in packages {
        let name = format!("{} {}", package["name"].as_str().unwrap(), package["version"].as_str().unwrap());
        let Some(licence) = package["license"].as_str() else {
            refused.push(format!("{name}: no SPDX licence (a licence file only)"));
            continue;
        };
        let expression = Expression::parse_mode(licence, ParseMode::LAX)
            .unwrap_or_else(|e| panic!("{name}: licence {licence:?} does not parse: {e}"));
        let allowed = expression.evaluate(|requirement| match &requirement.license {
            // LLVM's exception only loosens Apache-2.0.
            LicenseItem::Spdx { id, .. } => ALLOWED.contains(&id.name),
            LicenseItem::Other { .. } => false,
        });
        if !allowed {
            refused.push(format!("{name}: {licence}"));
        }
    }
    assert!(refused.is_empty(), "crates under licences not allowed:\n{}", refused.join("\n"));
}
