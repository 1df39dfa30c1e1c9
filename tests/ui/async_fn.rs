pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi]
    async fn fetch(&self, url: &str) -> String {
        url.to_owned()
    }
}

fn main() {}
