pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi]
    fn ping(&self) -> bool {
        true
    }
}

fn main() {}
