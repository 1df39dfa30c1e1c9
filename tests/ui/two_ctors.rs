pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi(ctor)]
    fn open(path: &str) -> Result<Lib, String> {
        let _ = path;
        Ok(Lib)
    }
}

fn main() {}
