//! Keys that seal the secrets the store holds (envelope encryption): each record names the
//! key-encryption key (KEK) its data key is wrapped under, so a rotation can re-wrap records while
//! the server runs and a missing key is named, never mistaken for "nothing enrolled".

use zeroize::Zeroizing;

/// A key-encryption key and its id.
#[derive(Clone)]
pub struct Kek {
    pub id: String,
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Where the engine finds its keys.
pub trait KeyRing: Send + Sync {
    /// The key new secrets are sealed under.
    fn current(&self) -> Kek;
    /// The key with this id, if this server has it.
    fn get(&self, id: &str) -> Option<Kek>;
}

/// One fixed key (tests, and servers without a key directory).
pub struct StaticKeys(pub Vec<Kek>);

impl KeyRing for StaticKeys {
    fn current(&self) -> Kek {
        self.0
            .first()
            .cloned()
            .unwrap_or_else(|| unreachable!("StaticKeys holds at least one key"))
    }

    fn get(&self, id: &str) -> Option<Kek> {
        self.0.iter().find(|k| k.id == id).cloned()
    }
}
