// A record whose C name is the constructor's config struct's (`LibConfig`).
#[derive(ffi_dispatch::Record)]
pub struct Config {
    pub size: u32,
}

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create(size: u32) -> Lib {
        let _ = size;
        Lib
    }
    #[ffi]
    fn show(&self, c: Config) -> u32 {
        c.size
    }
}

// A record named like the args struct of a method (`KvBumpArgs` beside `bump`).
#[derive(ffi_dispatch::Record)]
pub struct BumpArgs {
    pub by: u32,
}

pub struct Kv;

#[ffi_dispatch::library(name = "kv")]
impl Kv {
    #[ffi(ctor)]
    fn create() -> Kv {
        Kv
    }
    #[ffi]
    fn bump(&self, by: u32) -> u32 {
        by
    }
    #[ffi]
    fn apply(&self, b: BumpArgs) -> u32 {
        b.by
    }
}

// An enum value and a constant with one C name: `EV_MODE_FAST`.
#[derive(ffi_dispatch::Enum)]
pub enum Mode {
    Fast,
}

pub struct Ev;

#[ffi_dispatch::library(name = "ev")]
impl Ev {
    #[ffi]
    const MODE_FAST: u32 = 1;
    #[ffi(ctor)]
    fn create() -> Ev {
        Ev
    }
    #[ffi]
    fn mode(&self) -> Mode {
        Mode::Fast
    }
}

fn main() {}
