//! `ffi-dispatch-bindgen`: the generator of an ffi-dispatch library's bindings, as a
//! command and as a library (for `build.rs` and tests).
//!
//! The library's description comes from the built library itself: every library made
//! with `#[ffi_dispatch::library]` exports `<lib>_ffid_describe`, which hands out its
//! [`Library`] CBOR-encoded. [`read_library`] loads a cdylib and calls it;
//! [`read_exported`] calls it in-process (a test linking the library as an rlib).
//! [`render`] turns the description into files, [`write()`] puts them in a folder and
//! [`check`] compares a folder with them.
//!
//! ```no_run
//! // build.rs or a test of a crate whose cdylib was built first:
//! use ffi_dispatch_bindgen::{read_library, render, write, Lang};
//! let lib = read_library("target/release/libkv.so".as_ref()).unwrap();
//! write("include".as_ref(), &render(&lib, Lang::ALL)).unwrap();
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

pub use ffi_dispatch_schema::model::Library;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// `<name>.h` and, beside it, the runtime's `ffi_dispatch.h`: `-I <out>` is all a C
    /// or C++ host needs.
    C,
    /// `<name>.hpp`, the header-only C++17 binding over `<name>.h`, and beside it
    /// `ffi_dispatch.hpp`, which every such binding includes (it brings `C` along).
    Cpp,
    /// `<name>.cddl`, the schema of the CBOR wire.
    Cddl,
    /// `<name>.py`, a pure-Python (`ctypes`) module over the C exports, and its type
    /// stubs `<name>.pyi`: nothing else is needed at run time. Not in [`Lang::ALL`]: it
    /// belongs to the host's sources rather than beside the headers.
    Python,
    /// `<name>.rs`, a typed client for a Rust host that loads the library at run time
    /// (one module file; its one dependency is `libloading`). Not in [`Lang::ALL`]: it
    /// belongs to the host's sources rather than beside the headers.
    Rust,
}

impl Lang {
    /// The default outputs: what a C or C++ host includes (`-I <out>`) and the schema.
    pub const ALL: &'static [Lang] = &[Lang::C, Lang::Cpp, Lang::Cddl];

    /// Every language `--lang` knows.
    pub const KNOWN: &'static [Lang] = &[Lang::C, Lang::Cpp, Lang::Cddl, Lang::Python, Lang::Rust];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Cddl => "cddl",
            Lang::Python => "python",
            Lang::Rust => "rust",
        }
    }

    /// Reads a `--lang` name.
    pub fn parse(name: &str) -> Option<Lang> {
        Lang::KNOWN.iter().copied().find(|l| l.name() == name)
    }
}

/// One generated file: its name inside the output folder and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// File name, relative to the output folder.
    pub file: String,
    /// Contents.
    pub contents: String,
}

/// Why the generator could not do its job.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file.
    Io(PathBuf, std::io::Error),
    /// The file is not a library it can read, or has no (single) description.
    Library(PathBuf, String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Library(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for Error {}

/// The signature of `<lib>_ffid_describe`.
pub type DescribeFn = unsafe extern "C" fn(len: *mut usize) -> *const u8;

/// The suffix of the describing export.
const DESCRIBE_SUFFIX: &str = "_ffid_describe";

/// Reads the description a built library (a cdylib: `.so`, `.dylib`, `.dll`) hands out.
/// The library is loaded into this process for the call (its initialisers run, as in
/// any host), then unloaded.
///
/// `name` picks one library when the file holds several; `None` takes the only one.
pub fn read_library_named(path: &Path, name: Option<&str>) -> Result<Library, Error> {
    let fail = |e: String| Error::Library(path.to_path_buf(), e);
    let symbol = describing_symbol(path, name)?;
    // SAFETY: loading runs the library's initialisers, as any host loading it would:
    // the caller chose to load this file (for an ffi-dispatch library, they only
    // register its unload handler).
    let loaded = unsafe { libloading::Library::new(path) }
        .map_err(|e| fail(format!("cannot load it: {e}")))?;
    // SAFETY: the file exports this `*_ffid_describe` symbol; the `library` macro gives
    // every one the `DescribeFn` signature, and the caller chose the file as a library
    // built with it.
    let describe = unsafe { loaded.get::<DescribeFn>(symbol.as_bytes()) }
        .map_err(|e| fail(format!("cannot resolve {symbol}: {e}")))?;
    // SAFETY: the library's own export, called as its header documents it; the bytes
    // are copied before the library is unloaded.
    unsafe { read_exported(*describe) }.map_err(fail)
}

/// [`read_library_named`] for a file holding one library.
pub fn read_library(path: &Path) -> Result<Library, Error> {
    read_library_named(path, None)
}

/// Calls a describing export in this process (`echo::echo_ffid_describe` of a crate
/// linked as an rlib, or one resolved by hand) and decodes what it hands out.
///
/// # Safety
/// `describe` is a `<lib>_ffid_describe` export of an ffi-dispatch library.
pub unsafe fn read_exported(describe: DescribeFn) -> Result<Library, String> {
    let mut len = 0usize;
    // SAFETY: `len` is writable; the contract above.
    let ptr = unsafe { describe(&mut len) };
    if ptr.is_null() {
        return Err("its description is unavailable".into());
    }
    // SAFETY: the export hands out `len` bytes at `ptr`, valid while the library is loaded.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    Library::decode(bytes).map_err(|e| e.to_string())
}

/// The describing export of the library in `path`: the one exported symbol ending in
/// `_ffid_describe` (or `<name>_ffid_describe`).
fn describing_symbol(path: &Path, name: Option<&str>) -> Result<String, Error> {
    use object::Object;
    let fail = |e: String| Error::Library(path.to_path_buf(), e);
    let data = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let file = object::File::parse(&*data)
        .map_err(|e| fail(format!("not a shared library this tool reads: {e}")))?;
    let mut names: Vec<String> = file
        .exports()
        .map_err(|e| fail(format!("cannot read its exports: {e}")))?
        .iter()
        .filter_map(|e| std::str::from_utf8(e.name()).ok())
        // Mach-O spells C symbols with a leading underscore; dlsym takes them without.
        .map(|n| match file.format() {
            object::BinaryFormat::MachO => n.strip_prefix('_').unwrap_or(n).to_string(),
            _ => n.to_string(),
        })
        .filter(|n| n.ends_with(DESCRIBE_SUFFIX))
        .collect();
    names.sort();
    names.dedup();
    if let Some(want) = name {
        let symbol = format!("{want}{DESCRIBE_SUFFIX}");
        return if names.contains(&symbol) {
            Ok(symbol)
        } else {
            Err(fail(format!(
                "it exports no library `{want}` (no {symbol})"
            )))
        };
    }
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(fail(
            "it exports no ffi-dispatch library description (no *_ffid_describe symbol): \
             is it the cdylib of a crate using #[ffi_dispatch::library]?"
                .into(),
        )),
        many => Err(fail(format!(
            "it holds several libraries ({}); pick one with --name",
            many.iter()
                .map(|n| n.trim_end_matches(DESCRIBE_SUFFIX))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The files `langs` make from `lib`. `Cpp` brings `C` along: `<name>.hpp` includes
/// `<name>.h`.
pub fn render(lib: &Library, langs: &[Lang]) -> Vec<Output> {
    let mut out = Vec::new();
    let mut langs = langs.to_vec();
    if langs.contains(&Lang::Cpp) && !langs.contains(&Lang::C) {
        langs.insert(0, Lang::C);
    }
    for lang in &langs {
        match lang {
            Lang::C => {
                out.push(Output {
                    file: format!("{}.h", lib.name),
                    contents: ffi_dispatch_codegen::header(lib),
                });
                out.push(Output {
                    file: "ffi_dispatch.h".into(),
                    contents: ffi_dispatch_codegen::runtime_header(lib).to_string(),
                });
            }
            Lang::Cpp => {
                out.push(Output {
                    file: format!("{}.hpp", lib.name),
                    contents: ffi_dispatch_codegen::cpp_header(lib),
                });
                out.push(Output {
                    file: "ffi_dispatch.hpp".into(),
                    contents: ffi_dispatch_codegen::CPP_SUPPORT_HEADER.to_string(),
                });
            }
            Lang::Cddl => out.push(Output {
                file: format!("{}.cddl", lib.name),
                contents: ffi_dispatch_codegen::cddl(lib),
            }),
            Lang::Python => {
                out.push(Output {
                    file: format!("{}.py", lib.name),
                    contents: ffi_dispatch_codegen::python_module(lib),
                });
                out.push(Output {
                    file: format!("{}.pyi", lib.name),
                    contents: ffi_dispatch_codegen::python_stubs(lib),
                });
            }
            Lang::Rust => out.push(Output {
                file: format!("{}.rs", lib.name),
                contents: ffi_dispatch_codegen::rust_client(lib),
            }),
        }
    }
    out
}

/// Writes `outputs` into `dir` (created, with its parents, as needed); a file already
/// current is left untouched. Returns the paths written.
pub fn write(dir: &Path, outputs: &[Output]) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    let mut written = Vec::new();
    for o in outputs {
        let path = dir.join(&o.file);
        if std::fs::read_to_string(&path).is_ok_and(|now| now == o.contents) {
            continue;
        }
        std::fs::write(&path, &o.contents).map_err(|e| Error::Io(path.clone(), e))?;
        written.push(path);
    }
    Ok(written)
}

/// A generated file that is not what the library renders now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// It does not exist.
    Missing(PathBuf),
    /// It differs, first at this line (1-based).
    Stale(PathBuf, usize),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "{} is missing", p.display()),
            Problem::Stale(p, line) => {
                write!(
                    f,
                    "{} is stale (first difference at line {line})",
                    p.display()
                )
            }
        }
    }
}

/// Compares `dir` with `outputs`, writing nothing: every file missing or not current.
pub fn check(dir: &Path, outputs: &[Output]) -> Vec<Problem> {
    outputs
        .iter()
        .filter_map(|o| {
            let path = dir.join(&o.file);
            let Ok(now) = std::fs::read_to_string(&path) else {
                return Some(Problem::Missing(path));
            };
            if now == o.contents {
                return None;
            }
            let line = now
                .lines()
                .zip(o.contents.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(now.lines().count().min(o.contents.lines().count()));
            Some(Problem::Stale(path, line + 1))
        })
        .collect()
}

/// What [`check`] found, one problem a line, then `fix`: the command that rewrites the
/// files.
pub fn report(problems: &[Problem], fix: &str) -> String {
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    format!("{}\nRegenerate with:\n    {fix}", list.join("\n"))
}

/// For a test that keeps checked-in bindings current: with `FFID_BLESS=1` in the
/// environment, [`write()`]s them; otherwise [`check`]s them and returns the
/// [`report`] of every problem.
pub fn keep_current(dir: &Path, outputs: &[Output], fix: &str) -> Result<(), String> {
    if std::env::var_os("FFID_BLESS").is_some_and(|v| v == "1") {
        return write(dir, outputs).map(drop).map_err(|e| e.to_string());
    }
    let problems = check(dir, outputs);
    if problems.is_empty() {
        return Ok(());
    }
    Err(report(&problems, fix))
}

/// Where a library's checked-in bindings live, relative to its crate: the headers and
/// schema in `include/`, each host client in `bindings/<lang>/`.
pub const LAYOUT: &[(&str, &[Lang])] = &[
    ("include", Lang::ALL),
    ("bindings/python", &[Lang::Python]),
    ("bindings/rust", &[Lang::Rust]),
];

/// [`keep_current`] for every folder of [`LAYOUT`] under `root`: the problems of all of
/// them, or the first error writing.
pub fn keep_layout_current(lib: &Library, root: &Path, fix: &str) -> Result<(), String> {
    let problems: Vec<String> = LAYOUT
        .iter()
        .filter_map(|(dir, langs)| keep_current(&root.join(dir), &render(lib, langs), fix).err())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_language_parses_and_rust_is_asked_for_by_name() {
        for &l in Lang::KNOWN {
            assert_eq!(Lang::parse(l.name()), Some(l));
        }
        assert_eq!(Lang::parse("rust"), Some(Lang::Rust));
        assert!(!Lang::ALL.contains(&Lang::Rust));
        assert_eq!(Lang::parse("go"), None);
    }
}
