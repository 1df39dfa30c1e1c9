//! Greets people: a library outside the ffi-dispatch repository.

/// A greeter: says its greeting to whoever it is asked to.
pub struct Greeter {
    greeting: String,
    greeted: u64,
}

/// How loudly to greet.
#[derive(ffi_dispatch::Enum, Clone, Copy)]
pub enum Volume {
    /// As written.
    Normal,
    /// Upper-cased.
    Loud,
}

/// One greeting.
#[derive(ffi_dispatch::Record)]
pub struct Greeting {
    /// The text.
    pub text: String,
    /// How many greetings this greeter said before this one.
    pub ordinal: u64,
}

/// Greets people.
#[ffi_dispatch::library(name = "greeter")]
impl Greeter {
    /// The longest name `greet` takes, in bytes.
    #[ffi]
    pub const MAX_NAME: u32 = 16;
    /// What the greeting defaults to.
    #[ffi]
    pub const DEFAULT_GREETING: &str = "Hello";

    /// A greeter that says `greeting`.
    #[ffi(ctor)]
    pub fn new(greeting: &str) -> Greeter {
        Greeter {
            greeting: greeting.to_owned(),
            greeted: 0,
        }
    }

    /// `"<greeting>, <name>!"`; fails for an empty name or one longer than MAX_NAME.
    #[ffi]
    pub fn greet(&mut self, name: &str, volume: Volume) -> Result<Greeting, String> {
        if name.is_empty() || name.len() > Self::MAX_NAME as usize {
            return Err(format!("a name is 1 to {} bytes", Self::MAX_NAME));
        }
        let text = format!("{}, {name}!", self.greeting);
        let text = match volume {
            Volume::Normal => text,
            Volume::Loud => text.to_uppercase(),
        };
        self.greeted += 1;
        Ok(Greeting {
            text,
            ordinal: self.greeted - 1,
        })
    }

    /// The library's version, on the calling thread.
    #[ffi(inline)]
    pub fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}
