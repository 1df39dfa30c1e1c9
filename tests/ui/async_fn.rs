pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    // A borrowed argument cannot live across .await: the request buffer is gone.
    #[ffi]
    async fn fetch(&self, url: &str) -> String {
        url.to_owned()
    }
    // With an async method in the library, `&mut self` would alias its tasks' `&self`.
    #[ffi]
    async fn ok(&self, url: String) -> String {
        url
    }
    #[ffi]
    fn bump(&mut self) {}
}

fn main() {}
