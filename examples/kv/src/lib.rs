//! `kv`: an in-memory key-value store, the realistic example of `ffi-dispatch`.
//!
//! It uses every kind of type the macros support: records (one nested in another, one
//! optional inside another), fieldless enums, options of scalars, strings and records,
//! vectors of strings and of records, byte strings, fallible and infallible methods,
//! static methods, an inline export, constants and a destructor. `include/` (`kv.h`,
//! `ffi_dispatch.h`, `kv.cddl`) is generated from the built library by
//! `ffi-dispatch-bindgen`; `tests/c/kv.c` drives it from C.

use std::collections::BTreeMap;
use std::fmt;

/// What a stored value holds.
#[derive(ffi_dispatch::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// Opaque bytes.
    Blob,
    /// A signed 64-bit counter, stored as 8 little-endian bytes.
    Counter,
}

/// Bookkeeping the store keeps for each entry.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Meta {
    /// How many times the key was written (1 after the first put).
    pub version: u32,
    /// The store's write sequence number at the last write.
    pub seq: u64,
}

/// One entry of the store.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// What the value holds.
    pub kind: Kind,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// Time to live in milliseconds, if any (kept, not enforced).
    pub ttl_ms: Option<u64>,
    /// An optional note.
    pub note: Option<String>,
    /// Bookkeeping.
    pub meta: Meta,
}

/// Figures about the whole store.
#[derive(ffi_dispatch::Record, Clone, Debug, PartialEq)]
pub struct Usage {
    /// Number of entries.
    pub entries: u64,
    /// Sum of the values' lengths.
    pub bytes: u64,
    /// The entry with the longest value (the first key among equals), if any.
    pub largest: Option<Entry>,
}

/// Why a call failed; the host receives the text.
#[derive(Debug, PartialEq, Eq)]
pub enum KvError {
    /// The store's name was empty.
    EmptyName,
    /// A key was empty or longer than 256 bytes.
    BadKey,
    /// The store is at its `max_entries`.
    Full(u32),
    /// No such key.
    NotFound(String),
    /// The entry is not a counter (or its value is not 8 bytes).
    NotACounter(String),
    /// A counter would overflow.
    Overflow,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::EmptyName => write!(f, "the store needs a name"),
            KvError::BadKey => write!(f, "keys are 1 to 256 bytes"),
            KvError::Full(max) => write!(f, "store full ({max} entries)"),
            KvError::NotFound(k) => write!(f, "not found: {k}"),
            KvError::NotACounter(k) => write!(f, "not a counter: {k}"),
            KvError::Overflow => write!(f, "counter overflow"),
        }
    }
}

/// One store.
pub struct Kv {
    name: String,
    max_entries: Option<u32>,
    map: BTreeMap<String, Entry>,
    seq: u64,
}

/// An in-memory key-value store, one per context.
#[ffi_dispatch::library(name = "kv")]
impl Kv {
    /// The longest key, in bytes.
    #[ffi]
    pub const MAX_KEY_LEN: u32 = 256;
    /// The protocol this store speaks.
    #[ffi]
    pub const PROTOCOL: &str = "kv/1";

    /// Creates an empty store; `max_entries` bounds it (unbounded when absent).
    #[ffi(ctor)]
    pub fn create(name: &str, max_entries: Option<u32>) -> Result<Kv, KvError> {
        if name.is_empty() {
            return Err(KvError::EmptyName);
        }
        Ok(Kv {
            name: name.to_owned(),
            max_entries,
            map: BTreeMap::new(),
            seq: 0,
        })
    }

    /// Stores `value` under `key` and answers the entry it replaced, if any.
    #[ffi]
    pub fn put(
        &mut self,
        key: &str,
        value: &[u8],
        kind: Kind,
        tags: Vec<String>,
        ttl_ms: Option<u64>,
    ) -> Result<Option<Entry>, KvError> {
        self.insert(Entry {
            key: key.to_owned(),
            value: value.to_vec(),
            kind,
            tags,
            ttl_ms,
            note: None,
            meta: Meta { version: 0, seq: 0 },
        })
    }

    /// Stores whole entries (their `meta` is ignored) and answers how many were stored.
    /// Stops at the first failure, keeping what was stored before it.
    #[ffi]
    pub fn put_many(&mut self, entries: Vec<Entry>) -> Result<u32, KvError> {
        let mut stored = 0;
        for e in entries {
            self.insert(e)?;
            stored += 1;
        }
        Ok(stored)
    }

    /// The entry under `key`; an error when there is none.
    #[ffi]
    pub fn get(&self, key: &str) -> Result<Entry, KvError> {
        self.map
            .get(key)
            .cloned()
            .ok_or_else(|| KvError::NotFound(key.to_owned()))
    }

    /// The entry under `key`, if any.
    #[ffi]
    pub fn find(&self, key: &str) -> Option<Entry> {
        self.map.get(key).cloned()
    }

    /// Removes `key`; answers whether it was there.
    #[ffi]
    pub fn delete(&mut self, key: &str) -> bool {
        self.map.remove(key).is_some()
    }

    /// Entries in key order, filtered by key prefix and kind, at most `limit` of them.
    #[ffi]
    pub fn list(&self, prefix: Option<&str>, kind: Option<Kind>, limit: Option<u32>) -> Vec<Entry> {
        self.map
            .values()
            .filter(|e| prefix.is_none_or(|p| e.key.starts_with(p)))
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .take(limit.map_or(usize::MAX, |l| l as usize))
            .cloned()
            .collect()
    }

    /// All keys, in order.
    #[ffi]
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// Adds `by` to the counter under `key` (created at 0) and answers the new value.
    #[ffi]
    pub fn incr(&mut self, key: &str, by: i64) -> Result<i64, KvError> {
        let current = match self.map.get(key) {
            None => 0,
            Some(e) => match (e.kind, <[u8; 8]>::try_from(e.value.as_slice())) {
                (Kind::Counter, Ok(b)) => i64::from_le_bytes(b),
                _ => return Err(KvError::NotACounter(key.to_owned())),
            },
        };
        let next = current.checked_add(by).ok_or(KvError::Overflow)?;
        self.put(key, &next.to_le_bytes(), Kind::Counter, Vec::new(), None)?;
        Ok(next)
    }

    /// Sets or clears the note of `key`.
    #[ffi]
    pub fn annotate(&mut self, key: &str, note: Option<String>) -> Result<(), KvError> {
        let e = self
            .map
            .get_mut(key)
            .ok_or_else(|| KvError::NotFound(key.to_owned()))?;
        e.note = note;
        Ok(())
    }

    /// Figures about the store.
    #[ffi]
    pub fn usage(&self) -> Usage {
        let largest = self
            .map
            .values()
            .fold(None::<&Entry>, |best, e| match best {
                Some(b) if b.value.len() >= e.value.len() => Some(b),
                _ => Some(e),
            })
            .cloned();
        Usage {
            entries: self.map.len() as u64,
            bytes: self.map.values().map(|e| e.value.len() as u64).sum(),
            largest,
        }
    }

    /// The store's name.
    #[ffi]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The library's version.
    #[ffi(static)]
    pub fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// Checks a key without a store: 1 to `MAX_KEY_LEN` bytes. Inline: answered on the
    /// calling thread before the call returns.
    #[ffi(inline)]
    pub fn check_key(key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > Kv::MAX_KEY_LEN as usize {
            Err(KvError::BadKey)
        } else {
            Ok(())
        }
    }

    /// Drops every entry when the context is destroyed.
    #[ffi(dtor)]
    pub fn close(&mut self) {
        self.map.clear();
    }

    fn insert(&mut self, mut e: Entry) -> Result<Option<Entry>, KvError> {
        Kv::check_key(&e.key)?;
        let previous = self.map.get(&e.key);
        if previous.is_none()
            && self
                .max_entries
                .is_some_and(|m| self.map.len() >= m as usize)
        {
            return Err(KvError::Full(self.max_entries.unwrap_or(0)));
        }
        self.seq += 1;
        e.meta = Meta {
            version: previous.map_or(1, |p| p.meta.version + 1),
            seq: self.seq,
        };
        Ok(self.map.insert(e.key.clone(), e))
    }
}
