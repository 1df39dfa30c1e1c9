//! Where cargo put a cdylib for the running test: one finder for the root's host tests
//! (`tests/c_host.rs`) and the examples' client tests, each of which includes this file
//! with `#[path]`.

use std::path::PathBuf;

/// `lib<name>.so` (the platform's spelling): beside this test binary
/// (`target/<profile>/deps`, where a dependency's cdylib lands) or one level up (where
/// `cargo build -p` puts it).
pub fn cdylib(name: &str) -> PathBuf {
    let file = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let found = [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&file))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "{file} is missing near {}: run cargo test --workspace",
            deps.display()
        )
    })
}
