//! `ffi-dispatch-bindgen <library> --out <dir> [--lang c,cpp,cddl,python,rust] [--name <lib>] [--check]`
//!
//! Reads the description the built library (a cdylib) hands out and writes its bindings
//! into `<dir>`, creating it as needed: `c` is `<name>.h` with the runtime's
//! `ffi_dispatch.h` beside it, `cpp` is `<name>.hpp` with `ffi_dispatch.hpp` (and the C
//! header), `cddl` is `<name>.cddl` (default: those three); asked for by name, `python`
//! is `<name>.py` with its stubs `<name>.pyi` and `rust` is `<name>.rs`, the host
//! clients. With `--check`
//! it writes nothing and exits 1 when a file is missing or stale, naming each and the
//! command that fixes it. Exit status 2: bad usage, an unreadable library, or files that
//! could not be written.

use std::path::PathBuf;
use std::process::ExitCode;

use ffi_dispatch_bindgen::{check, read_library_named, render, report, write, Lang};

const USAGE: &str = "usage: ffi-dispatch-bindgen <path to the cdylib> --out <dir> [--lang c,cpp,cddl,python,rust] [--name <library>] [--check]";

struct Args {
    library: PathBuf,
    out: PathBuf,
    langs: Vec<Lang>,
    name: Option<String>,
    check: bool,
}

/// Why the command line is not a job to do.
enum Usage {
    /// `--help`: print the usage, succeed.
    Help,
    /// A mistake, said.
    Wrong(String),
}

impl From<String> for Usage {
    fn from(e: String) -> Usage {
        Usage::Wrong(e)
    }
}

impl From<&str> for Usage {
    fn from(e: &str) -> Usage {
        Usage::Wrong(e.to_string())
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, Usage> {
    let (mut library, mut out, mut langs, mut name, mut check) = (None, None, None, None, false);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--name" => name = Some(value("--name")?),
            "--lang" => {
                let list = value("--lang")?;
                let parsed: Result<Vec<Lang>, String> = list
                    .split(',')
                    .map(|l| {
                        Lang::parse(l.trim()).ok_or(format!(
                            "unknown language `{l}` (known: {})",
                            Lang::KNOWN
                                .iter()
                                .map(|l| l.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
                    .collect();
                langs = Some(parsed?);
            }
            "--check" => check = true,
            "-h" | "--help" => return Err(Usage::Help),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}").into()),
            path if library.is_none() => library = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}").into()),
        }
    }
    Ok(Args {
        library: library.ok_or("the path to the library is missing")?,
        out: out.ok_or("--out <dir> is missing")?,
        langs: langs.unwrap_or_else(|| Lang::ALL.to_vec()),
        name,
        check,
    })
}

/// The command that regenerates what `args` checks.
fn fix_command(args: &Args) -> String {
    let mut cmd = format!(
        "ffi-dispatch-bindgen {} --out {}",
        args.library.display(),
        args.out.display()
    );
    if args.langs != Lang::ALL {
        let names: Vec<&str> = args.langs.iter().map(|l| l.name()).collect();
        cmd.push_str(&format!(" --lang {}", names.join(",")));
    }
    if let Some(n) = &args.name {
        cmd.push_str(&format!(" --name {n}"));
    }
    cmd
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(Usage::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Usage::Wrong(e)) => {
            eprintln!("ffi-dispatch-bindgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let lib = match read_library_named(&args.library, args.name.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ffi-dispatch-bindgen: {e}");
            return ExitCode::from(2);
        }
    };
    let outputs = render(&lib, &args.langs);
    if args.check {
        let problems = check(&args.out, &outputs);
        if problems.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "ffi-dispatch-bindgen: bindings are not current:\n{}",
            report(&problems, &fix_command(&args))
        );
        return ExitCode::from(1);
    }
    match write(&args.out, &outputs) {
        Ok(written) => {
            for p in written {
                println!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ffi-dispatch-bindgen: {e}");
            ExitCode::from(2)
        }
    }
}
