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
    // An async method answers with its return value: a reply token has no place.
    #[ffi]
    async fn later(&self, reply: ffi_dispatch::Deferred<String>) {
        reply.complete("x");
    }
    #[ffi]
    fn bump(&mut self) {}
}

fn main() {}
