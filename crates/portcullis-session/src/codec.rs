//! The sealed envelope: versioned AES-256-GCM with a key id, a random nonce and the
//! cookie name bound as associated data.
//!
//! Wire format (then base64url without padding):
//!
//! ```text
//! +---------+------------+-------------+----------------------------+
//! | version | key id (4) | nonce (12)  | ciphertext || GCM tag (16) |
//! +---------+------------+-------------+----------------------------+
//! ```
//!
//! The associated data is `version || key id || name`, so a value sealed for one cookie
//! (say the CSRF cookie) cannot be replayed as another (the session cookie), and the
//! header bytes are authenticated too. Lengths are checked *before* decoding so a huge or
//! tiny input costs nothing. Every failure is a [`CodecError`] that callers treat as
//! "no session": it never carries plaintext, key material or the input.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The only envelope version this build writes and reads.
pub const VERSION: u8 = 1;
const KID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KID_LEN + NONCE_LEN;
/// Smallest possible sealed blob: header plus tag (an empty plaintext).
const MIN_RAW_LEN: usize = HEADER_LEN + TAG_LEN;
/// Upper bound on the encoded input we are willing to decode (64 KiB); anything larger
/// is refused before base64 decoding. Real sessions are a few KiB.
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// Why a sealed value did not open. Deliberately coarse: callers map all of these to
/// "no session", and the variants only feed logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Not base64url, or shorter than the smallest possible envelope.
    #[error("sealed value is malformed or truncated")]
    Malformed,
    /// Longer than [`MAX_SEALED_LEN`].
    #[error("sealed value is too large")]
    TooLarge,
    /// A version byte this build does not know.
    #[error("unknown envelope version")]
    UnknownVersion,
    /// Sealed with a key that is not (or no longer) configured.
    #[error("sealed with an unknown key")]
    UnknownKey,
    /// Authentication failed: tampered bytes, wrong name, or a key-id collision.
    #[error("sealed value failed authentication")]
    Tampered,
    /// The plaintext was authentic but not a valid payload (a bug or an old format).
    #[error("sealed payload could not be decoded")]
    Payload,
    /// The operating system's random generator failed while sealing.
    #[error("random number generator failed")]
    Random,
}

/// A configured secret is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not standard or URL-safe base64.
    #[error("secret is not valid base64")]
    NotBase64,
    /// Decoded to the wrong number of bytes.
    #[error("secret must decode to exactly 32 bytes, got {0}")]
    WrongLength(usize),
}

/// A 32-byte AES-256 key. Debug output never shows the bytes.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &hex_id(&self.id()))
            .finish()
    }
}

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// Parses a secret as written in configuration: base64 (standard or URL-safe, padded
    /// or not) of exactly 32 bytes. `openssl rand -base64 32` produces one.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        let text = text.trim();
        let decoded = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or(KeyError::NotBase64)?;
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(decoded.len()))?;
        Ok(Self { bytes })
    }

    /// Generates a fresh random key (tests, `portcullis` helpers).
    pub fn generate() -> Result<Self, CodecError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|_| CodecError::Random)?;
        Ok(Self { bytes })
    }

    /// A short public identifier derived from the key, written in each envelope so the
    /// right key is tried first. It reveals nothing useful about the key (truncated hash).
    pub fn id(&self) -> [u8; KID_LEN] {
        let digest = Sha256::new()
            .chain_update(b"portcullis key id v1\0")
            .chain_update(self.bytes)
            .finalize();
        let mut id = [0u8; KID_LEN];
        id.copy_from_slice(&digest[..KID_LEN]);
        id
    }

    /// Base64 (standard, padded) form, as configuration expects.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes)
    }
}

/// `len` random bytes as base64url: session ids, per-session secrets, lock tokens.
pub fn random_token(len: usize) -> Result<String, CodecError> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(|_| CodecError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

struct KeyEntry {
    id: [u8; KID_LEN],
    cipher: Aes256Gcm,
}

/// The set of configured keys. The first one seals; every one opens.
///
/// Rotation: prepend a new secret, keep the old one until every session sealed with it
/// has expired (the session lifetime), then drop it.
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| hex_id(&k.id)).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Builds a keyring; `None` when `keys` is empty (there must be a sealing key).
    pub fn new(keys: &[Key]) -> Option<Self> {
        if keys.is_empty() {
            return None;
        }
        let keys = keys
            .iter()
            .map(|k| KeyEntry {
                id: k.id(),
                cipher: Aes256Gcm::new((&k.bytes).into()),
            })
            .collect();
        Some(Self { keys })
    }

    /// Seals `plaintext` for the cookie (or purpose) called `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, CodecError> {
        // `new` guarantees at least one key.
        let key = self.keys.first().ok_or(CodecError::UnknownKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|_| CodecError::Random)?;
        let aad = aad(VERSION, &key.id, name);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CodecError::Tampered)?;
        let mut raw = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        raw.push(VERSION);
        raw.extend_from_slice(&key.id);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Opens a value sealed by [`Keyring::seal`] for the same `name`.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, CodecError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(CodecError::TooLarge);
        }
        // base64url without padding: 4 chars carry 3 bytes.
        if sealed.len() < (MIN_RAW_LEN * 4).div_ceil(3) {
            return Err(CodecError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.as_bytes())
            .map_err(|_| CodecError::Malformed)?;
        if raw.len() < MIN_RAW_LEN {
            return Err(CodecError::Malformed);
        }
        let (header, ciphertext) = raw.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return Err(CodecError::UnknownVersion);
        }
        let kid = &header[1..1 + KID_LEN];
        let nonce = Nonce::from_slice(&header[1 + KID_LEN..]);
        let aad = aad(header[0], kid, name);
        let mut found = false;
        // Ids are 32 bits, so two configured keys may share one: try each match.
        for key in self.keys.iter().filter(|k| k.id == kid) {
            found = true;
            if let Ok(plain) = key.cipher.decrypt(
                nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            ) {
                return Ok(plain);
            }
        }
        Err(if found {
            CodecError::Tampered
        } else {
            CodecError::UnknownKey
        })
    }

    /// Seals a serde value as JSON.
    pub fn seal_json<T: serde::Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<String, CodecError> {
        let json = serde_json::to_vec(value).map_err(|_| CodecError::Payload)?;
        self.seal(name, &json)
    }

    /// Opens and decodes a serde value sealed by [`Keyring::seal_json`].
    pub fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        sealed: &str,
    ) -> Result<T, CodecError> {
        let plain = self.open(name, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| CodecError::Payload)
    }
}

fn aad(version: u8, kid: &[u8], name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + kid.len() + name.len());
    aad.push(version);
    aad.extend_from_slice(kid);
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    fn ring(keys: &[u8]) -> Keyring {
        Keyring::new(&keys.iter().map(|b| key(*b)).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn round_trip() {
        let r = ring(&[1]);
        let sealed = r.seal("_portcullis", b"hello").unwrap();
        assert_eq!(r.open("_portcullis", &sealed).unwrap(), b"hello");
    }

    #[test]
    fn nonces_differ() {
        let r = ring(&[1]);
        assert_ne!(r.seal("n", b"x").unwrap(), r.seal("n", b"x").unwrap());
    }

    #[test]
    fn name_is_bound() {
        let r = ring(&[1]);
        let sealed = r.seal("_portcullis_csrf", b"x").unwrap();
        assert_eq!(r.open("_portcullis", &sealed), Err(CodecError::Tampered));
    }

    #[test]
    fn unknown_key_is_reported() {
        let sealed = ring(&[1]).seal("n", b"x").unwrap();
        assert_eq!(ring(&[2]).open("n", &sealed), Err(CodecError::UnknownKey));
    }

    #[test]
    fn rotation_new_key_seals_old_key_opens() {
        let old = ring(&[1]);
        let rotated = ring(&[2, 1]);
        let before = old.seal("n", b"old session").unwrap();
        assert_eq!(rotated.open("n", &before).unwrap(), b"old session");
        let after = rotated.seal("n", b"new session").unwrap();
        // Sealed with the new key: the old ring cannot open it, the new ring can.
        assert_eq!(old.open("n", &after), Err(CodecError::UnknownKey));
        assert_eq!(rotated.open("n", &after).unwrap(), b"new session");
        // Once the old key is dropped, old sessions stop opening.
        assert_eq!(ring(&[2]).open("n", &before), Err(CodecError::UnknownKey));
    }

    #[test]
    fn version_and_size_limits() {
        let r = ring(&[1]);
        let sealed = r.seal("n", b"x").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        raw[0] = 2;
        assert_eq!(
            r.open("n", &URL_SAFE_NO_PAD.encode(&raw)),
            Err(CodecError::UnknownVersion)
        );
        assert_eq!(
            r.open("n", &"A".repeat(MAX_SEALED_LEN + 1)),
            Err(CodecError::TooLarge)
        );
        assert_eq!(r.open("n", ""), Err(CodecError::Malformed));
        assert_eq!(
            r.open("n", "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
            Err(CodecError::Malformed)
        );
    }

    #[test]
    fn key_parsing() {
        let k = Key::generate().unwrap();
        let text = k.to_base64();
        assert_eq!(Key::from_base64(&text).unwrap().id(), k.id());
        assert_eq!(
            Key::from_base64(text.trim_end_matches('=')).unwrap().id(),
            k.id()
        );
        assert_eq!(
            Key::from_base64("c2hvcnQ=").unwrap_err(),
            KeyError::WrongLength(5)
        );
        assert_eq!(Key::from_base64("%%%").unwrap_err(), KeyError::NotBase64);
        assert!(!format!("{k:?}").contains(&text));
    }

    proptest! {
        #[test]
        fn any_plaintext_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..4096), name in "[a-z_]{1,20}") {
            let r = ring(&[7]);
            let sealed = r.seal(&name, &plain).unwrap();
            prop_assert_eq!(r.open(&name, &sealed).unwrap(), plain);
        }

        /// Flipping any bit of the raw envelope makes it fail to open.
        #[test]
        fn any_flipped_bit_fails(plain in proptest::collection::vec(any::<u8>(), 0..256), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let r = ring(&[7]);
            let sealed = r.seal("n", &plain).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
            let i = pos.index(raw.len());
            raw[i] ^= 1 << bit;
            prop_assert!(r.open("n", &URL_SAFE_NO_PAD.encode(&raw)).is_err());
        }

        /// Any truncation of the encoded envelope fails to open.
        #[test]
        fn any_truncation_fails(plain in proptest::collection::vec(any::<u8>(), 0..256), cut in any::<prop::sample::Index>()) {
            let r = ring(&[7]);
            let sealed = r.seal("n", &plain).unwrap();
            let at = cut.index(sealed.len());
            prop_assert!(r.open("n", &sealed[..at]).is_err());
        }

        /// Arbitrary input never panics and never opens.
        #[test]
        fn garbage_never_opens(s in "\\PC{0,300}") {
            prop_assert!(ring(&[7]).open("n", &s).is_err());
        }
    }
}
