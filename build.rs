//! Compiles the C core (`c-alloc/`) for the target being built.
//!
//! Every decision about the target comes from the `CARGO_CFG_TARGET_*`
//! variables cargo sets for the *target*; `cfg!` here would describe the
//! machine running this script and break cross builds.

use std::env;
use std::path::{Path, PathBuf};

/// The warning set of `mk/c.mk`, as errors: the crate must not be laxer than
/// the C build, or code that breaks `make lib` would still build here.
const WARNINGS: &[&str] = &[
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wpointer-arith",
    "-Wcast-align",
    "-Wundef",
];

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let include = root.join("c-alloc/include");
    let src = root.join("c-alloc/src");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=CFLAGS");

    let sources = c_files(&src);
    for f in sources.iter().chain(headers(&include).iter()).chain(headers(&src).iter()) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    // Dependents (a C kernel glue crate, say) find the headers here through
    // DEP_HARTALLOC_INCLUDE.
    println!("cargo:include={}", include.display());

    if sources.is_empty() {
        // Lets the shim be type-checked while the core is being written; any
        // link of a program that allocates then fails loudly.
        println!("cargo:warning=c-alloc/src has no .c files: building the Rust shim only");
        return;
    }

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has_feature = |f: &str| features.split(',').any(|x| x == f);

    let mut build = cc::Build::new();
    build
        .files(&sources)
        .include(&include)
        .include(&src)
        .std("c11")
        .flag("-ffreestanding")
        // Warnings are errors through -Werror above; cc's own `-Wall
        // -Wextra` defaults stay on.
        .warnings(true);
    for w in WARNINGS {
        build.flag(w);
    }
    if env::var_os("CARGO_FEATURE_CHECKED").is_some() {
        build.define("HA_CHECKED", "1");
    }

    if arch == "riscv64" {
        // A kernel is linked anywhere in the address space: medlow would
        // restrict it to the low 2 GiB (R_RISCV_HI20 overflows at link).
        build.flag("-mcmodel=medany");
        // rustc links no libgcc, so the __riscv_save/restore_* helpers that
        // -msave-restore calls would be undefined.
        build.flag("-mno-save-restore");
        if os == "none" {
            // cc passes -march=rv64<ext> -mabi=lp64 (soft-float) for bare-metal
            // riscv64 targets, while rustc's riscv64gc-unknown-none-elf emits
            // lp64d objects: the link then fails with "can't link soft-float
            // modules with double-float modules" (cc-rs#795, still so in cc
            // 1.11).  Our flags come after cc's, and gcc takes the last one.
            if has_feature("d") {
                build.flag("-march=rv64gc").flag("-mabi=lp64d");
            } else if has_feature("f") {
                build.flag("-mabi=lp64f");
            }
        }
    }

    // The generated hooks header against hartalloc.h: a mismatch between the
    // two declarations of a hook fails every build, for every target.
    let header_check = root.join("tests/header/check_hooks_header.c");
    if header_check.is_file() {
        println!("cargo:rerun-if-changed={}", header_check.display());
        build.file(&header_check);
    }

    build.compile("hartalloc");
}

fn c_files(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "c")
}

fn headers(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "h")
}

/// Sorted, so that the archive (and any error message) is reproducible.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}
