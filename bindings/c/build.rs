//! Generates `include/swimraft.h` (at the workspace root) from this crate with cbindgen.
//!
//! The header is committed and CI checks that a build leaves it unchanged, so generation must
//! be deterministic: the pinned cbindgen parses only this crate's sources (no `cargo metadata`,
//! no dependencies), and the file is rewritten only when its text changes (atomically, since
//! several builds may run at once).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn generate(manifest_dir: &Path) -> Result<(), String> {
    let config_path = manifest_dir.join("cbindgen.toml");
    let config = cbindgen::Config::from_file(&config_path)
        .map_err(|err| format!("reading {}: {err}", config_path.display()))?;
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(manifest_dir.join("src").join("lib.rs"))
        .generate()
        .map_err(|err| format!("cbindgen: {err}"))?;
    let mut text = Vec::new();
    bindings.write(&mut text);

    let include_dir = manifest_dir.join("..").join("..").join("include");
    let header = include_dir.join("swimraft.h");
    if fs::read(&header).ok().as_deref() == Some(text.as_slice()) {
        return Ok(());
    }
    fs::create_dir_all(&include_dir)
        .map_err(|err| format!("creating {}: {err}", include_dir.display()))?;
    let tmp = include_dir.join(format!(".swimraft.h.{}.tmp", std::process::id()));
    fs::write(&tmp, &text).map_err(|err| format!("writing {}: {err}", tmp.display()))?;
    fs::rename(&tmp, &header).map_err(|err| {
        let _ = fs::remove_file(&tmp);
        format!("renaming {} to {}: {err}", tmp.display(), header.display())
    })
}

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=../../include/swimraft.h");
    let manifest_dir = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            eprintln!("CARGO_MANIFEST_DIR is not set; run through cargo");
            return ExitCode::FAILURE;
        }
    };
    match generate(&manifest_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot generate include/swimraft.h: {err}");
            ExitCode::FAILURE
        }
    }
}
