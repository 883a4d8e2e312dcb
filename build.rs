//! Compiles the C core (`c-alloc/`) for the target being built.
//!
//! Every decision about the target comes from the `CARGO_CFG_TARGET_*`
//! variables cargo sets for the *target*; `cfg!` here would describe the
//! machine running this script and break cross builds.
//!
//! Hosted targets get the compiler `cc` picks, as any C in a Rust build
//! does.  Bare-metal targets (`target_os = "none"`) get a compiler for their
//! own architecture (the target's gcc, else clang; never the host's gcc for
//! another architecture) and the flags of rustc's target spec, and a probe
//! object proves the pair makes objects of the right machine before the
//! core is built.  Anything else stops with one message that says what to
//! install or set.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process;

/// What a failure message offers instead.
const SUPPORTED: &str = "riscv64gc-unknown-none-elf, aarch64-unknown-none, \
                         aarch64-unknown-none-softfloat, x86_64-unknown-none, \
                         and 64-bit hosted targets such as the host";

/// The shared warning list (also read by mk/c.mk).
const WARNINGS_FILE: &str = "c-alloc/warnings.txt";

/// The ELF machine numbers of the supported bare-metal architectures.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;

/// The target being built, from cargo's `CARGO_CFG_TARGET_*` variables.
struct Target {
    triple: String,
    host: String,
    arch: String,
    os: String,
    pointer_width: String,
    features: Vec<String>,
}

impl Target {
    fn from_env() -> Target {
        let var = |k: &str| env::var(k).unwrap_or_default();
        Target {
            triple: var("TARGET"),
            host: var("HOST"),
            arch: var("CARGO_CFG_TARGET_ARCH"),
            os: var("CARGO_CFG_TARGET_OS"),
            pointer_width: var("CARGO_CFG_TARGET_POINTER_WIDTH"),
            features: var("CARGO_CFG_TARGET_FEATURE").split(',').map(str::to_owned).collect(),
        }
    }

    fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }

    /// Whether rustc's objects for this riscv target use the double-float
    /// ABI (lp64d).  A stable rustc does not list the unstable `f`/`d`
    /// features in `CARGO_CFG_TARGET_FEATURE` (only RUSTC_BOOTSTRAP or
    /// nightly do), so the `g` of the target name counts too: every
    /// `riscv64gc-*` target's spec says `llvm-abiname: lp64d`.
    fn riscv_double_float(&self) -> bool {
        self.has("d") || self.triple.starts_with("riscv64gc-")
    }

    fn bare_metal(&self) -> bool {
        self.os == "none"
    }

    /// `CC_riscv64gc_unknown_none_elf`: the spelling that works in a shell.
    fn cc_var(&self) -> String {
        format!("CC_{}", self.triple.replace(['-', '.'], "_"))
    }

    /// The variables `cc` reads for a tool (`CC`, `AR`, `CFLAGS`), most
    /// specific first, as cc-rs does.
    fn tool_vars(&self, tool: &str) -> [String; 4] {
        let kind = if self.triple == self.host { "HOST" } else { "TARGET" };
        [
            format!("{tool}_{}", self.triple),
            format!("{tool}_{}", self.triple.replace(['-', '.'], "_")),
            format!("{kind}_{tool}"),
            tool.to_owned(),
        ]
    }

    /// The first of `tool_vars` that is set and not empty.
    fn user_tool(&self, tool: &str) -> Option<(String, String)> {
        self.tool_vars(tool).into_iter().find_map(|k| match env::var(&k) {
            Ok(v) if !v.trim().is_empty() => Some((k, v)),
            _ => None,
        })
    }

    /// The Debian package of a gcc for this architecture.
    fn gcc_package(&self) -> &'static str {
        match self.arch.as_str() {
            "riscv64" => "gcc-riscv64-unknown-elf",
            "aarch64" => "gcc-aarch64-linux-gnu",
            "x86_64" if self.host.starts_with("x86_64-") => "gcc",
            "x86_64" => "gcc-x86-64-linux-gnu",
            _ => "gcc",
        }
    }

    /// The ELF machine a bare-metal target's objects must carry.
    fn elf_machine(&self) -> Option<(u16, &'static str)> {
        match self.arch.as_str() {
            "riscv64" => Some((EM_RISCV, "RISC-V")),
            "aarch64" => Some((EM_AARCH64, "AArch64")),
            "x86_64" => Some((EM_X86_64, "x86-64")),
            _ => None,
        }
    }
}

/// Which C compiler builds the core, and who chose it.
enum Compiler {
    /// Named by the user (`CC_<target>`, `TARGET_CC`, `CC`) or by
    /// `CROSS_COMPILE`: cc reads the variable itself.
    User(String, String),
    /// A gcc for the target's architecture, found on PATH.
    Gcc(PathBuf),
    /// clang, found on PATH; it takes `--target`.
    Clang(PathBuf),
    /// A hosted target: whatever cc picks.
    CcDefault,
}

impl Compiler {
    /// For messages: what was used and why.
    fn describe(&self) -> String {
        match self {
            Compiler::User(k, v) => format!("{v} (from {k})"),
            Compiler::Gcc(p) | Compiler::Clang(p) => format!("{} (found on PATH)", p.display()),
            Compiler::CcDefault => "cc's default compiler".to_owned(),
        }
    }
}

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let target = Target::from_env();

    // Refusals first, before anything on stdout: cargo shows a failed build
    // script's stdout too, and the message should stand alone.
    if target.pointer_width != "64" {
        fail(&format!(
            "hartalloc: cannot build the C core for {t}: it is a {w}-bit target, and the core \
             supports 64-bit targets only (its block and arena headers are laid out for 64-bit pointers).\n\
             Supported targets: {SUPPORTED}.",
            t = target.triple,
            w = target.pointer_width,
        ));
    }
    let compiler = choose_compiler(&target);

    let sources = watch_inputs(&root, &target, &compiler);
    if sources.is_empty() {
        // Lets the shim be type-checked while the core is being written; any
        // link of a program that allocates then fails loudly.
        println!("cargo:warning=c-alloc/src has no .c files: building the Rust shim only");
        return;
    }

    let mut build = core_build(&root, &target, &compiler, &sources);
    // By what cc detects, so that a user's CC=clang gets clang's flags too.
    let clang = build.try_get_compiler().is_ok_and(|t| t.is_like_clang());
    target_flags(&target, clang, &mut build);
    if target.bare_metal() {
        probe(&target, &compiler, &build);
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

/// Tells cargo what the build depends on; returns the core's C sources.
fn watch_inputs(root: &Path, target: &Target, compiler: &Compiler) -> Vec<PathBuf> {
    let include = root.join("c-alloc/include");
    let src = root.join("c-alloc/src");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", root.join(WARNINGS_FILE).display());
    println!("cargo:rerun-if-env-changed=HARTALLOC_WERROR");
    println!("cargo:rerun-if-env-changed=CROSS_COMPILE");
    for tool in ["CC", "AR", "CFLAGS"] {
        for k in target.tool_vars(tool) {
            println!("cargo:rerun-if-env-changed={k}");
        }
    }
    if matches!(compiler, Compiler::Gcc(_) | Compiler::Clang(_)) {
        // Found by searching PATH: a compiler installed or hidden later
        // changes the choice.
        println!("cargo:rerun-if-env-changed=PATH");
    }

    let sources = c_files(&src);
    for f in sources.iter().chain(headers(&include).iter()).chain(headers(&src).iter()) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    // Dependents (a C kernel glue crate, say) find the headers here through
    // DEP_HARTALLOC_INCLUDE.
    println!("cargo:include={}", include.display());
    sources
}

/// The target-independent part: compiler, sources, C standard, warnings.
fn core_build(root: &Path, target: &Target, compiler: &Compiler, sources: &[PathBuf]) -> cc::Build {
    let mut build = cc::Build::new();
    match compiler {
        Compiler::Gcc(p) | Compiler::Clang(p) => {
            build.compiler(p);
            if target.user_tool("AR").is_none() {
                if let Some(ar) = archiver_for(compiler) {
                    build.archiver(ar);
                }
            }
        }
        Compiler::User(..) | Compiler::CcDefault => {}
    }
    build
        .files(sources)
        .include(root.join("c-alloc/include"))
        .include(root.join("c-alloc/src"))
        .std("c11")
        .flag("-ffreestanding")
        // The list below has -Wall -Wextra; cc adds them too.
        .warnings(true);
    for w in read_warnings(&root.join(WARNINGS_FILE)) {
        build.flag(w);
    }
    // Errors only where the project builds itself (its Makefile sets
    // HARTALLOC_WERROR=1): a newer compiler's new warning must not break a
    // user's kernel build.
    if env::var("HARTALLOC_WERROR").is_ok_and(|v| !v.is_empty() && v != "0") {
        build.flag("-Werror");
    }
    if env::var_os("CARGO_FEATURE_CHECKED").is_some() {
        build.define("HA_CHECKED", "1");
    }
    // Frame pointers as rustc keeps them.  cc forces them whenever debug
    // info is on, which kernels keep in release builds (`debug = true`);
    // on riscv64 that is four more instructions in every function of the
    // allocation and free paths, leaf ones included, about 20 per
    // alloc+free pair.  A kernel that walks frame pointers for its
    // backtraces asks rustc for them, and then gets them here too.
    let frame_pointers = rustc_codegen_option("force-frame-pointers")
        .is_some_and(|v| matches!(v.as_str(), "y" | "yes" | "on" | "true" | "always" | "non-leaf"));
    build.force_frame_pointer(frame_pointers);
    // The built-in RISC-V S-mode platform (hart index in tp, sstatus.SIE):
    // the fast paths inline it instead of calling the hooks.
    if env::var_os("CARGO_FEATURE_RISCV_SMODE").is_some() {
        if target.arch != "riscv64" || target.os != "none" {
            fail(&format!(
                "hartalloc: the riscv-smode feature is for bare-metal riscv64 kernels; {} is not one.",
                target.triple
            ));
        }
        build.define("HA_PLATFORM_RISCV_SMODE", "1");
    }
    build
}

/// Stops the build with one plain message: a panic would add a backtrace
/// under `RUST_BACKTRACE`, and cc's own failure would bury the cause.
fn fail(msg: &str) -> ! {
    eprintln!("\n{msg}\n");
    process::exit(1);
}

/// The user's choice if there is one; for a hosted target cc's; for a
/// supported bare-metal target the target's gcc, else clang; else stop.
fn choose_compiler(target: &Target) -> Compiler {
    if let Some((k, v)) = target.user_tool("CC") {
        return Compiler::User(k, v);
    }
    if let Ok(prefix) = env::var("CROSS_COMPILE") {
        if !prefix.is_empty() {
            return Compiler::User("CROSS_COMPILE".to_owned(), format!("{prefix}gcc"));
        }
    }
    if !target.bare_metal() {
        return Compiler::CcDefault;
    }

    // gcc names in order of preference: bare-metal toolchains first, then a
    // Linux cross gcc (fine for freestanding code that is not linked here).
    // (On macOS `gcc` is Apple's clang making Mach-O: not that one.)
    let host_is_x86_64 = target.host.starts_with("x86_64-") && target.host.contains("-linux");
    let gccs: &[&str] = match target.arch.as_str() {
        "riscv64" => &["riscv64-unknown-elf-gcc", "riscv64-elf-gcc", "riscv64-linux-gnu-gcc"],
        "aarch64" => &["aarch64-none-elf-gcc", "aarch64-elf-gcc", "aarch64-linux-gnu-gcc"],
        // The host gcc is the right compiler on an x86-64 host, and only there.
        "x86_64" if host_is_x86_64 => &["x86_64-elf-gcc", "x86_64-linux-gnu-gcc", "gcc"],
        "x86_64" => &["x86_64-elf-gcc", "x86_64-linux-gnu-gcc"],
        _ => {
            fail(&format!(
                "hartalloc: no known C compiler setup for the bare-metal target {t}.\n\
                 Supported targets: {SUPPORTED}.\n\
                 To try anyway, name a C compiler for it: {cc}=<compiler> (flags through CFLAGS_{u}).",
                t = target.triple,
                cc = target.cc_var(),
                u = target.triple.replace(['-', '.'], "_"),
            ));
        }
    };
    if let Some(p) = gccs.iter().find_map(|g| which(g)) {
        return Compiler::Gcc(p);
    }
    if let Some(p) = which("clang") {
        return Compiler::Clang(p);
    }
    fail(&format!(
        "hartalloc: no C compiler for {t}: looked on PATH for {g} and clang.\n\
         Install one (Debian: apt-get install {p}, or clang), \
         or name one: {cc}=clang (or a path to a gcc for {t}).\n\
         Supported targets: {SUPPORTED}.",
        t = target.triple,
        g = gccs.join(", "),
        p = target.gcc_package(),
        cc = target.cc_var(),
    ));
}

/// The archiver beside the chosen compiler, when there is one: the host's
/// `ar` may not know the target's object format.
fn archiver_for(compiler: &Compiler) -> Option<PathBuf> {
    match compiler {
        Compiler::Gcc(gcc) => {
            let name = gcc.file_name()?.to_str()?;
            let ar = gcc.with_file_name(format!("{}ar", name.strip_suffix("gcc")?));
            ar.is_file().then_some(ar)
        }
        Compiler::Clang(_) => which("llvm-ar"),
        _ => None,
    }
}

/// The flags that make the C objects fit rustc's objects for this target
/// (`rustc --print target-spec-json -Z unstable-options --target X`).  Our
/// flags come after cc's defaults, and the compiler takes the last of each.
fn target_flags(target: &Target, clang: bool, build: &mut cc::Build) {
    if target.bare_metal() {
        // rustc emits no stack protector; some distributions' gcc default to
        // one, whose __stack_chk_* symbols a kernel does not have.
        build.flag("-fno-stack-protector");
    }
    match (target.arch.as_str(), target.bare_metal()) {
        ("riscv64", bare) => riscv64_flags(target, clang, bare, build),
        ("aarch64", true) => {
            if clang {
                build.flag("--target=aarch64-unknown-none-elf");
            }
            // Spec: relocation-model static (Debian's cross gcc defaults to PIE).
            build.flag("-fno-pic");
            // Spec: +strict-align; with the MMU off every access must be aligned.
            build.flag("-mstrict-align");
            // gcc would call libgcc's __aarch64_* atomics, which rustc does
            // not link.
            build.flag("-mno-outline-atomics");
            // aarch64-unknown-none-softfloat: -neon, no FP/SIMD registers.
            if !target.has("neon") {
                build.flag("-mgeneral-regs-only");
            }
        }
        ("x86_64", true) => x86_64_flags(target, clang, build),
        _ => {}
    }
}

fn riscv64_flags(target: &Target, clang: bool, bare: bool, build: &mut cc::Build) {
    if clang && bare {
        // cc passes rustc's LLVM triple, plain "riscv64"; this one names the
        // bare-metal ELF environment.
        build.flag("--target=riscv64-unknown-elf");
    }
    // A kernel is linked anywhere in the address space: medlow would
    // restrict it to the low 2 GiB (R_RISCV_HI20 overflows at link).
    build.flag("-mcmodel=medany");
    // rustc links no libgcc, so the __riscv_save/restore_* helpers that
    // -msave-restore calls would be undefined.
    build.flag("-mno-save-restore");
    if !bare {
        return;
    }
    // Spec: relocation-model static.
    build.flag("-fno-pic");
    // cc passes -march=rv64<ext> -mabi=lp64 (soft-float) for bare-metal
    // riscv64 targets with gcc, and nothing with clang, while rustc's
    // riscv64gc-unknown-none-elf emits lp64d objects: the link then fails
    // with "can't link soft-float modules with double-float modules"
    // (cc-rs#795, still so in cc 1.11).
    if target.riscv_double_float() {
        build.flag("-march=rv64gc").flag("-mabi=lp64d");
    } else if clang {
        let ext: String = ["m", "a", "f", "c"].iter().filter(|e| target.has(e)).copied().collect();
        build.flag(format!("-march=rv64i{ext}"));
        build.flag(if target.has("f") { "-mabi=lp64f" } else { "-mabi=lp64" });
    } else if target.has("f") {
        build.flag("-mabi=lp64f");
    }
}

/// x86_64-unknown-none: code-model kernel, relocation-model pic (rustc
/// links it as a static PIE), disable-redzone, features -mmx,-sse,...,
/// +soft-float.
fn x86_64_flags(target: &Target, clang: bool, build: &mut cc::Build) {
    if clang {
        build.flag("--target=x86_64-unknown-none-elf");
    }
    // Interrupts arrive on the kernel stack: nothing may live below %rsp.
    build.flag("-mno-red-zone");
    // No SSE/MMX/x87 registers: the kernel does not save them on entry.
    if !target.has("sse2") {
        build.flag("-mgeneral-regs-only");
    }
    let reloc = rustc_codegen_option("relocation-model");
    let user_code_model = rustc_codegen_option("code-model").is_some();
    if reloc.as_deref() == Some("static") {
        // A kernel linked in the top 2 GiB, as the spec's code model says.
        build.flag("-fno-pic");
        if !user_code_model {
            build.flag("-mcmodel=kernel");
        }
    } else {
        // Position-independent like rustc's objects, so that the static-PIE
        // link rustc does by default works.  gcc refuses -mcmodel=kernel
        // with PIC; its PIE code is RIP-relative, so it also runs in the
        // top 2 GiB.  clang takes both, as rustc's LLVM does.
        build.flag("-fPIE");
        if clang && !user_code_model {
            build.flag("-mcmodel=kernel");
        }
    }
}

/// The last `-C <name>=<value>` in the rustc flags cargo passes to this
/// crate (cc forwards some of them itself, before our flags).
fn rustc_codegen_option(name: &str) -> Option<String> {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut found = None;
    let mut after_c = false;
    for arg in flags.split('\x1f') {
        let opt = if after_c { Some(arg) } else { arg.strip_prefix("-C") };
        after_c = arg == "-C";
        if let Some((k, v)) = opt.and_then(|o| o.split_once('=')) {
            if k == name {
                found = Some(v.to_owned());
            }
        }
    }
    found
}

/// Compiles one small file with exactly the core's command line and checks
/// the object's ELF header: the compiler works for the target and makes
/// objects of its machine (not the host's), with the float ABI rustc uses.
fn probe(target: &Target, compiler: &Compiler, build: &cc::Build) {
    let Some((machine, machine_name)) = target.elf_machine() else {
        // An unknown bare-metal architecture with a user-named compiler.
        return;
    };
    let help = format!(
        "Name a C compiler for {t} with {cc} (e.g. {cc}=clang), or install one \
         (Debian: apt-get install {p}, or clang).\n\
         Supported targets: {SUPPORTED}.",
        t = target.triple,
        p = target.gcc_package(),
        cc = target.cc_var(),
    );
    let elf = match compile_probe(build) {
        Ok(elf) => elf,
        Err(why) => fail(&format!(
            "hartalloc: the C compiler {c} cannot build for {t}:\n  {why}\n{help}",
            c = compiler.describe(),
            t = target.triple,
        )),
    };
    let found = elf_machine_of(&elf);
    if found != Some(machine) {
        let made = match found {
            Some(EM_X86_64) => "x86-64".to_owned(),
            Some(EM_AARCH64) => "AArch64".to_owned(),
            Some(EM_RISCV) => "RISC-V".to_owned(),
            Some(m) => format!("ELF machine {m}"),
            None => "no 64-bit ELF".to_owned(),
        };
        fail(&format!(
            "hartalloc: the C compiler {c} makes {made} objects, but {t} needs {machine_name}.\n{help}",
            c = compiler.describe(),
            t = target.triple,
        ));
    }
    if target.arch == "riscv64" && target.riscv_double_float() && riscv_float_abi(&elf) != Some(2) {
        fail(&format!(
            "hartalloc: the C compiler {c} does not make double-float (lp64d) objects for {t}, \
             and rustc's objects are lp64d: the link would fail.\n{help}",
            c = compiler.describe(),
            t = target.triple,
        ));
    }
}

/// Compiles the probe with the core's command line; returns the object's
/// bytes, or the compiler's first lines of complaint.
fn compile_probe(build: &cc::Build) -> Result<Vec<u8>, String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = out.join("hartalloc_probe.c");
    let obj = out.join("hartalloc_probe.o");
    let code = "#include <stdatomic.h>\n#include <stddef.h>\n#include <stdint.h>\n\
                uintptr_t hartalloc_probe(atomic_uintptr_t *p);\n\
                uintptr_t hartalloc_probe(atomic_uintptr_t *p) { return atomic_fetch_add(p, 1); }\n";
    fs::write(&src, code).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let tool = build.try_get_compiler().map_err(|e| e.to_string())?;
    let output = tool
        .to_command()
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr.lines().take(6).collect::<Vec<_>>().join("\n  "));
    }
    let elf = fs::read(&obj).map_err(|e| e.to_string());
    let _ = fs::remove_file(&obj);
    elf
}

/// e_machine of a little-endian 64-bit ELF file.
fn elf_machine_of(elf: &[u8]) -> Option<u16> {
    let is_elf64_le = elf.len() >= 64 && elf[..4] == *b"\x7fELF" && elf[4] == 2 && elf[5] == 1;
    is_elf64_le.then(|| u16::from_le_bytes([elf[18], elf[19]]))
}

/// The RISC-V float ABI in e_flags: 0 soft, 1 single, 2 double, 3 quad.
fn riscv_float_abi(elf: &[u8]) -> Option<u32> {
    let flags = u32::from_le_bytes(elf.get(48..52)?.try_into().ok()?);
    Some((flags >> 1) & 3)
}

/// The warning flags of `c-alloc/warnings.txt`: one per line, `#` comments.
fn read_warnings(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| fail(&format!("hartalloc: cannot read {}: {e}", path.display())));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first executable file called `name` (or `name.exe`) in PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .flat_map(|d| [d.join(name), d.join(format!("{name}.exe"))])
        .find(|p| is_executable(p))
}

/// `cfg` is right here: this asks about the machine running the script.
fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
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
