//! Keys and primitives: Ed25519 signing keys, API tokens, the master key, sealing of personal
//! data (ChaCha20-Poly1305) and keyed pseudonyms (HMAC-SHA256). All from `ring`.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use ring::{aead, digest, hkdf, hmac};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// A reader that hashes what passes through it, so a file read for its content gives its
/// SHA-256 too, without a second read.
pub struct Sha256Reader<R> {
    inner: R,
    ctx: digest::Context,
    bytes_read: u64,
}

impl<R: std::io::Read> Sha256Reader<R> {
    pub fn new(inner: R) -> Sha256Reader<R> {
        Sha256Reader {
            inner,
            ctx: digest::Context::new(&digest::SHA256),
            bytes_read: 0,
        }
    }

    /// Bytes hashed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The SHA-256 of everything read.
    pub fn finish(self) -> [u8; 32] {
        self.ctx
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }
}

impl<R: std::io::Read> std::io::Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        self.bytes_read += n as u64;
        Ok(n)
    }
}

/// SHA-256 of everything `input` yields, read in 64 KiB chunks; `progress` gets the bytes
/// read so far after each.
pub fn sha256_reader(
    input: impl std::io::Read,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<[u8; 32]> {
    let mut hashing = Sha256Reader::new(input);
    let mut buf = vec![0u8; 1 << 16];
    while std::io::Read::read(&mut hashing, &mut buf)? > 0 {
        progress(hashing.bytes_read());
    }
    Ok(hashing.finish())
}

/// `n` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random source failed");
    buf
}

/// A fresh random nonce for a signed request (128 bits, URL-safe base64).
pub fn new_nonce() -> String {
    B64URL.encode(random_bytes::<16>())
}

/// The key id of an Ed25519 public key: `ed25519:` and the first 16 hex digits of its SHA-256.
/// Derived, so a key id can never point at a different key.
pub fn key_id_for(public_key: &[u8]) -> String {
    format!("ed25519:{}", &hex::encode(sha256(public_key))[..16])
}

/// Verifies an Ed25519 signature.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// An org's private signing key as kept in a key file (JSON, mode 0600).
#[derive(Serialize, Deserialize)]
pub struct KeyFile {
    /// The org this key signs for.
    pub org: String,
    /// Its key id, see [`key_id_for`].
    pub key_id: String,
    /// PKCS#8 v2 document (as `ring` makes it), standard base64.
    pub pkcs8: String,
}

/// A loaded signing key.
pub struct SigningKey {
    pub org: String,
    pub key_id: String,
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("org", &self.org)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key for `org`.
    pub fn generate(org: &str) -> SigningKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("Ed25519 key generation failed");
        Self::from_pkcs8(org, pkcs8.as_ref()).expect("ring produced an invalid PKCS#8 document")
    }

    fn from_pkcs8(org: &str, pkcs8: &[u8]) -> Result<SigningKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(SigningKey {
            org: org.to_string(),
            key_id: key_id_for(pair.public_key().as_ref()),
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key in standard base64, as the API carries it.
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.public_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.pair
            .sign(message)
            .as_ref()
            .try_into()
            .expect("Ed25519 signatures are 64 bytes")
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a Fundtrail key file: {e}", path.display()))?;
        let pkcs8 = B64
            .decode(file.pkcs8.trim())
            .map_err(|e| format!("{}: pkcs8 is not base64: {e}", path.display()))?;
        let key =
            Self::from_pkcs8(&file.org, &pkcs8).map_err(|e| format!("{}: {e}", path.display()))?;
        if key.key_id != file.key_id {
            return Err(format!(
                "{}: key_id {} does not match the key (it is {})",
                path.display(),
                file.key_id,
                key.key_id
            ));
        }
        Ok(key)
    }

    /// Writes the key file, readable by the owner only.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let file = KeyFile {
            org: self.org.clone(),
            key_id: self.key_id.clone(),
            pkcs8: B64.encode(&self.pkcs8),
        };
        let text = serde_json::to_string_pretty(&file).expect("key file serializes");
        write_secret_file(path, text.as_bytes())
    }
}

/// Writes a file that holds a secret: created with mode 0600 on Unix.
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A new API token: `ftk_` and 256 random bits. Only its SHA-256 is stored.
pub fn new_api_token() -> String {
    format!("ftk_{}", B64URL.encode(random_bytes::<32>()))
}

/// What the database keeps of a token.
pub fn token_digest(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

/// The service's master secret; every other service secret is derived from it with HKDF.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> MasterKey {
        MasterKey(random_bytes::<32>())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<MasterKey, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("master key is not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "master key must be 32 bytes (64 hex digits)".to_string())?;
        Ok(MasterKey(arr))
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn derive(&self, info: &[u8]) -> [u8; 32] {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"fundtrail/v1");
        let prk = salt.extract(&self.0);
        let info = [info];
        let okm = prk
            .expand(&info, Len32)
            .expect("32 bytes is a valid HKDF length");
        let mut out = [0u8; 32];
        okm.fill(&mut out).expect("32 bytes is a valid HKDF length");
        out
    }

    /// The secret that keys the statement file store (HKDF info "statement-files/v1").
    pub fn file_store_secret(&self) -> [u8; 32] {
        self.derive(b"statement-files/v1")
    }

    /// The keys that protect personal data.
    pub fn personal_data_keys(&self) -> PersonalDataKeys {
        PersonalDataKeys {
            aead: aead::LessSafeKey::new(
                aead::UnboundKey::new(
                    &aead::CHACHA20_POLY1305,
                    &self.derive(b"personal-data/aead"),
                )
                .expect("32-byte ChaCha20 key"),
            ),
            pseudonym: hmac::Key::new(hmac::HMAC_SHA256, &self.derive(b"pseudonym/hmac")),
            account: hmac::Key::new(hmac::HMAC_SHA256, &self.derive(b"bank-account/hmac")),
        }
    }
}

/// Sealing and pseudonymisation of recipients' personal data.
pub struct PersonalDataKeys {
    aead: aead::LessSafeKey,
    pseudonym: hmac::Key,
    account: hmac::Key,
}

impl PersonalDataKeys {
    /// The recipient's pseudonym: `R` and 24 hex digits (96 bits) of HMAC(ID number). Stable
    /// for a given master key, meaningless without it.
    pub fn pseudonym(&self, id_number: &str) -> String {
        let tag = hmac::sign(&self.pseudonym, id_number.as_bytes());
        format!("R{}", &hex::encode(tag.as_ref())[..24])
    }

    /// A keyed tag of a bank account number (digits and letters only, upper-cased), so that
    /// two recipients paid into one account can be found without decrypting.
    pub fn account_tag(&self, account: &str) -> String {
        let normal: String = account
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let tag = hmac::sign(&self.account, normal.as_bytes());
        hex::encode(&tag.as_ref()[..16])
    }

    /// A keyed tag of a client's network address, so repeated complaints from one place show
    /// without the address being kept. Domain-separated from pseudonyms.
    pub fn client_tag(&self, address: &str) -> String {
        let tag = hmac::sign(
            &self.pseudonym,
            format!("client-address:{address}").as_bytes(),
        );
        hex::encode(&tag.as_ref()[..12])
    }

    /// Seals `plaintext`, bound to `pseudonym` (so a sealed blob cannot be moved to another
    /// recipient's row): random 96-bit nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, pseudonym: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<12>();
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(pseudonym.as_bytes()),
                &mut buf,
            )
            .expect("sealing cannot fail for in-memory sizes");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Opens a blob made by [`seal`](Self::seal); `None` if it was altered or moved.
    pub fn open(&self, pseudonym: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, rest) = sealed.split_at(12);
        let mut buf = rest.to_vec();
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .aead
            .open_in_place(nonce, aead::Aad::from(pseudonym.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Standard base64 (what the API uses for keys and signatures).
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes standard base64.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    B64.decode(text)
}

#[cfg(test)]
mod tests {

    #[test]
    fn hashing_while_reading_gives_the_same_digest_as_hashing_the_bytes() {
        use std::io::Read;
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = Sha256Reader::new(&bytes[..]);
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        assert_eq!(sink, bytes);
        assert_eq!(r.bytes_read(), bytes.len() as u64);
        assert_eq!(r.finish(), sha256(&bytes));
        let mut seen = Vec::new();
        let d = sha256_reader(&bytes[..], &mut |n| seen.push(n)).unwrap();
        assert_eq!(d, sha256(&bytes));
        assert_eq!(seen.last(), Some(&(bytes.len() as u64)));
    }
    use super::*;

    #[test]
    fn sealed_data_opens_only_for_its_own_pseudonym_and_unaltered() {
        let keys = MasterKey::generate().personal_data_keys();
        let sealed = keys.seal("Rabc", b"secret");
        assert_eq!(keys.open("Rabc", &sealed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(keys.open("Rabd", &sealed), None);
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open("Rabc", &altered), None);
        assert_eq!(keys.open("Rabc", &sealed[..10]), None);
    }

    #[test]
    fn pseudonyms_depend_on_the_master_key() {
        let a = MasterKey::from_hex(&"11".repeat(32))
            .unwrap()
            .personal_data_keys();
        let b = MasterKey::from_hex(&"22".repeat(32))
            .unwrap()
            .personal_data_keys();
        let p = a.pseudonym("11010519491231002X");
        assert_eq!(p.len(), 25);
        assert_eq!(p, a.pseudonym("11010519491231002X"));
        assert_ne!(p, b.pseudonym("11010519491231002X"));
        assert_eq!(
            a.account_tag("6217 0000-1234"),
            a.account_tag("621700001234")
        );
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let key = SigningKey::generate("ORG");
        let sig = key.sign(b"hello");
        assert!(verify_signature(key.public_key(), b"hello", &sig));
        assert!(!verify_signature(key.public_key(), b"hellO", &sig));
        let other = SigningKey::generate("ORG");
        assert!(!verify_signature(other.public_key(), b"hello", &sig));
        assert!(key.key_id.starts_with("ed25519:") && key.key_id.len() == 24);
    }

    #[test]
    fn key_files_round_trip_and_detect_a_mismatched_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = SigningKey::generate("TWN-01");
        key.save(&path).unwrap();
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.key_id, key.key_id);
        assert_eq!(loaded.org, "TWN-01");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&key.key_id, "ed25519:0000");
        std::fs::write(&path, text).unwrap();
        assert!(SigningKey::load(&path)
            .unwrap_err()
            .contains("does not match"));
    }
}
