// The runtime's own prefixes are no library name.
pub struct Runtime;

#[ffi_dispatch::library(name = "ffid")]
impl Runtime {
    #[ffi(ctor)]
    fn create() -> Runtime {
        Runtime
    }
}

// A C enum needs a value.
#[derive(ffi_dispatch::Enum)]
pub enum Nothing {}

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    // `<lib>_last_error` is the runtime's.
    #[ffi]
    fn last_error(&self) -> u32 {
        0
    }
}

fn main() {}
