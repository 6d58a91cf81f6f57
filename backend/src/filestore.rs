//! The statement file store: uploaded bank statement files, encrypted at rest (they hold
//! citizens' names and bank accounts) and addressed by the SHA-256 of their plaintext.
//!
//! A file is written through a [`StoreWriter`] into a temporary file inside the store
//! directory, then [`Staged::commit`] moves it to `<dir>/<first 2 hex>/<64 hex>`. Writing and
//! reading stream: memory stays bounded by one chunk, whatever the file's size.
//!
//! # Format on disk
//!
//! ```text
//! header  "FTSF" 0x00 0x01                  6 bytes, magic and format version 1
//!         salt                              32 random bytes, fresh for every file
//! body    chunk 0, chunk 1, ..., chunk n    n >= 0; chunk n is the final chunk
//! chunk   ciphertext length                 4 bytes, big-endian, counts the tag too
//!         ciphertext ‖ tag                  ChaCha20-Poly1305, 16-byte tag
//! ```
//!
//! - The file key is HKDF-SHA256 with the store secret as input key material, the file's salt
//!   as salt and info `fundtrail/statement-file/v1`. Every file has its own key, so the
//!   counter nonces below never repeat under one key, and chunks cannot be moved between files.
//! - The plaintext is cut into 64 KiB chunks. Every chunk but the last holds exactly 64 KiB;
//!   the last holds 0 to 64 KiB (an empty file is one empty final chunk).
//! - Chunk `i` is sealed with nonce `flag ‖ i`: a 4-byte big-endian flag (0 for a middle chunk,
//!   1 for the final chunk) and `i` as 8 bytes big-endian. There is no associated data. The
//!   index detects reordered or dropped chunks; the final flag detects a file cut at a chunk
//!   boundary, and bytes after the final chunk.
//! - A reader also hashes the plaintext and, at the end, checks it against the address it was
//!   asked for, so a valid file under the wrong name is rejected too.
//! - Temporary files are `.tmp-<32 hex>` in the store directory, mode 0600 on Unix; stored
//!   files keep that mode. Directories are created with mode 0700.

use ring::{aead, digest, hkdf};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Magic and format version at the start of every stored file.
const MAGIC: &[u8; 6] = b"FTSF\x00\x01";
/// Length of the per-file random salt.
const SALT_BYTES: usize = 32;
/// HKDF info for per-file keys.
const FILE_KEY_INFO: &[u8] = b"fundtrail/statement-file/v1";
/// Plaintext bytes per chunk (every chunk but the last holds exactly this many).
const CHUNK_BYTES: usize = 64 * 1024;
/// Poly1305 tag length.
const TAG_BYTES: usize = 16;
/// Nonce flag of every chunk but the last.
const FLAG_MIDDLE: u32 = 0;
/// Nonce flag of the last chunk.
const FLAG_FINAL: u32 = 1;

/// Why a file could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is larger than the caller allows.
    #[error("the file is larger than {size_bytes_max} bytes")]
    TooLarge { size_bytes_max: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A stored file's header is not one this store writes.
    #[error("stored file is corrupt: {0}")]
    Corrupt(String),
}

/// An encrypted, content-addressed directory of statement files. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    secret: [u8; 32],
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (creating, mode 0700 on unix) the store directory.
    ///
    /// An existing directory's mode is left as it is.
    pub fn open(dir: &Path, secret: [u8; 32]) -> io::Result<FileStore> {
        // Fails if `dir` exists but is not a directory.
        create_private_dir(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            secret,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts writing a new file into a temporary file inside the store directory.
    ///
    /// Writing more than `size_bytes_max` bytes of plaintext in all fails: the `write` that
    /// would cross the limit writes nothing and returns an [`io::Error`] of kind
    /// `FileTooLarge` whose inner error is [`StoreError::TooLarge`], and from then on every
    /// `write` and [`StoreWriter::finish`] fail with `TooLarge` as well.
    pub fn writer(&self, size_bytes_max: u64) -> io::Result<StoreWriter> {
        let salt: [u8; SALT_BYTES] = crate::crypto::random_bytes();
        let key = file_key(&self.secret, &salt);
        let path = self.dir.join(format!(
            ".tmp-{}",
            hex::encode(crate::crypto::random_bytes::<16>())
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        // From here on the guard removes the file on every early return.
        let temp = TempFile { path };
        file.write_all(MAGIC)?;
        file.write_all(&salt)?;
        Ok(StoreWriter {
            file,
            temp,
            dir: self.dir.clone(),
            key,
            buf: Vec::with_capacity(CHUNK_BYTES + TAG_BYTES),
            index: 0,
            size_bytes: 0,
            size_bytes_max,
            digest: digest::Context::new(&digest::SHA256),
            failed: None,
        })
    }

    /// Convenience: copies `input` through a writer and finishes it. Stops reading `input` as
    /// soon as it holds more than `size_bytes_max` bytes, and returns [`StoreError::TooLarge`].
    pub fn stage(&self, mut input: impl Read, size_bytes_max: u64) -> Result<Staged, StoreError> {
        let mut writer = self.writer(size_bytes_max)?;
        if let Err(e) = io::copy(&mut input, &mut writer) {
            // A read error from `input` is an Io error; our own limit is TooLarge.
            return Err(match writer.failed {
                Some(Failure::TooLarge) => StoreError::TooLarge { size_bytes_max },
                _ => StoreError::Io(e),
            });
        }
        writer.finish()
    }

    /// True if a file with this SHA-256 (of its plaintext) is stored.
    pub fn contains(&self, sha256: &[u8; 32]) -> bool {
        fs::metadata(object_path(&self.dir, sha256)).is_ok_and(|m| m.is_file())
    }

    /// Reads a stored file back as plaintext, streaming and verifying each chunk's tag; at EOF
    /// it also checks that the plaintext's SHA-256 equals `sha256`, and returns an io::Error
    /// (kind InvalidData) otherwise, or for any altered, truncated, reordered or missing chunk.
    ///
    /// Plaintext of the chunks verified so far is handed out before the end is checked, so a
    /// caller must treat everything it read as untrusted until a read returns `Ok(0)`. Once a
    /// read has failed, every later read fails too. A missing file is [`StoreError::Io`] of
    /// kind `NotFound`; a file whose header is not this format's is [`StoreError::Corrupt`].
    pub fn reader(&self, sha256: &[u8; 32]) -> Result<impl Read + Send + 'static, StoreError> {
        let file = File::open(object_path(&self.dir, sha256))?;
        let mut input = BufReader::new(file);
        let mut header = [0u8; MAGIC.len() + SALT_BYTES];
        if let Err(e) = input.read_exact(&mut header) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                StoreError::Corrupt(format!(
                    "{} is shorter than its header",
                    hex::encode(sha256)
                ))
            } else {
                StoreError::Io(e)
            });
        }
        let (magic, salt) = header.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err(StoreError::Corrupt(format!(
                "{} is not a Fundtrail statement file (format 1)",
                hex::encode(sha256)
            )));
        }
        Ok(ChunkReader {
            input,
            key: file_key(&self.secret, salt),
            expected: *sha256,
            buf: Vec::with_capacity(CHUNK_BYTES + TAG_BYTES),
            pos: 0,
            index: 0,
            digest: digest::Context::new(&digest::SHA256),
            state: ReadState::Reading,
        })
    }

    /// Removes a stored file (no error if absent).
    pub fn remove(&self, sha256: &[u8; 32]) -> io::Result<()> {
        let path = object_path(&self.dir, sha256);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        // Removal is how personal data is erased: make it survive a crash.
        match path.parent() {
            Some(shard) => sync_dir(shard),
            None => Ok(()),
        }
    }
}

/// `<dir>/<first 2 hex>/<64 hex>`.
fn object_path(dir: &Path, sha256: &[u8; 32]) -> PathBuf {
    let name = hex::encode(sha256);
    dir.join(&name[..2]).join(name)
}

/// The key of one file: HKDF-SHA256(secret, salt).
fn file_key(secret: &[u8; 32], salt: &[u8]) -> aead::LessSafeKey {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
    let okm = prk
        .expand(&[FILE_KEY_INFO], &aead::CHACHA20_POLY1305)
        .expect("32 bytes is a valid HKDF length");
    aead::LessSafeKey::new(aead::UnboundKey::from(okm))
}

/// The nonce of chunk `index`: flag ‖ index, both big-endian.
fn chunk_nonce(index: u64, last: bool) -> aead::Nonce {
    let mut nonce = [0u8; aead::NONCE_LEN];
    let flag = if last { FLAG_FINAL } else { FLAG_MIDDLE };
    nonce[..4].copy_from_slice(&flag.to_be_bytes());
    nonce[4..].copy_from_slice(&index.to_be_bytes());
    aead::Nonce::assume_unique_for_key(nonce)
}

/// Creates `dir` and its missing parents, mode 0700 on Unix.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes the entries of `dir` durable (a no-op where directories cannot be opened).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A temporary file, removed when dropped.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: a leftover is encrypted, and drop cannot report an error.
        let _ = fs::remove_file(&self.path);
    }
}

/// Why a writer can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    TooLarge,
    Io,
}

/// A file being written into the store. Dropping it before [`finish`](Self::finish) deletes
/// its temporary file. [`flush`](Write::flush) does nothing: a chunk is written once it is full
/// and more data follows, and the last one by `finish`.
pub struct StoreWriter {
    file: File,
    temp: TempFile,
    dir: PathBuf,
    key: aead::LessSafeKey,
    /// The current chunk's plaintext; sealed in place.
    buf: Vec<u8>,
    index: u64,
    size_bytes: u64,
    size_bytes_max: u64,
    digest: digest::Context,
    failed: Option<Failure>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("temp", &self.temp.path)
            .field("size_bytes", &self.size_bytes)
            .field("size_bytes_max", &self.size_bytes_max)
            .finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Bytes written so far (plaintext).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Flushes the last chunk, fsyncs, and returns the staged file with its digest.
    pub fn finish(mut self) -> Result<Staged, StoreError> {
        self.check_usable()?;
        self.seal_chunk(true)?;
        self.file.sync_all()?;
        let sha256 = self
            .digest
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        Ok(Staged {
            sha256,
            size_bytes: self.size_bytes,
            temp: self.temp,
            dir: self.dir,
        })
    }

    /// Fails if an earlier write failed: the file on disk is then in an unknown state.
    fn check_usable(&self) -> Result<(), StoreError> {
        match self.failed {
            None => Ok(()),
            Some(Failure::TooLarge) => Err(StoreError::TooLarge {
                size_bytes_max: self.size_bytes_max,
            }),
            Some(Failure::Io) => Err(StoreError::Io(io::Error::other(
                "an earlier write to this file failed",
            ))),
        }
    }

    /// Seals the current chunk and appends it to the file.
    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let result = self.try_seal_chunk(last);
        if result.is_err() {
            self.failed = Some(Failure::Io);
        }
        result
    }

    fn try_seal_chunk(&mut self, last: bool) -> io::Result<()> {
        self.key
            .seal_in_place_append_tag(
                chunk_nonce(self.index, last),
                aead::Aad::empty(),
                &mut self.buf,
            )
            .map_err(|_| io::Error::other("sealing a chunk failed"))?;
        let len = u32::try_from(self.buf.len()).map_err(io::Error::other)?;
        self.file.write_all(&len.to_be_bytes())?;
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        // Cannot overflow (a u64 byte count has fewer than 2^48 chunks), but must not panic.
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("too many chunks"))?;
        Ok(())
    }
}

impl Write for StoreWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check_usable().map_err(store_to_io)?;
        let fits = u64::try_from(data.len())
            .ok()
            .and_then(|n| self.size_bytes.checked_add(n))
            .is_some_and(|total| total <= self.size_bytes_max);
        if !fits {
            self.failed = Some(Failure::TooLarge);
            return Err(store_to_io(StoreError::TooLarge {
                size_bytes_max: self.size_bytes_max,
            }));
        }
        let mut rest = data;
        while !rest.is_empty() {
            // A full chunk is sealed only once more data follows, so the last chunk is always
            // left for `finish` to seal with the final flag.
            if self.buf.len() == CHUNK_BYTES {
                self.seal_chunk(false)?;
            }
            let n = rest.len().min(CHUNK_BYTES - self.buf.len());
            let (part, tail) = rest.split_at(n);
            self.buf.extend_from_slice(part);
            self.digest.update(part);
            // `fits` checked the sum above.
            self.size_bytes += n as u64;
            rest = tail;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`StoreError`] as the `io::Error` a `Write` must return; the original stays inside.
fn store_to_io(e: StoreError) -> io::Error {
    match e {
        StoreError::Io(e) => e,
        e @ StoreError::TooLarge { .. } => io::Error::new(io::ErrorKind::FileTooLarge, e),
        e @ StoreError::Corrupt(_) => io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

/// A finished file in the store directory, not yet at its address. Dropping it without
/// [`commit`](Self::commit) deletes it.
#[derive(Debug)]
pub struct Staged {
    /// SHA-256 of the plaintext: the file's address.
    pub sha256: [u8; 32],
    /// Plaintext length.
    pub size_bytes: u64,
    temp: TempFile,
    dir: PathBuf,
}

impl Staged {
    /// Moves the file to its content address (`<dir>/<first 2 hex>/<64 hex>`), fsyncing the
    /// file and the directory. If that address already holds the file, the staged copy is
    /// discarded (same content). Returns whether this call created the stored file (false if it
    /// was already there).
    ///
    /// The file's bytes were fsynced by [`StoreWriter::finish`]; here the directories are. An
    /// existing file at the address is trusted, not re-read. If an error comes after the file
    /// reached its address (fsyncing a directory), the file stays there.
    pub fn commit(self) -> io::Result<bool> {
        let target = object_path(&self.dir, &self.sha256);
        let Some(shard) = target.parent() else {
            return Err(io::Error::other("content address has no directory"));
        };
        create_private_dir(shard)?;
        // A hard link never replaces an existing file, so of two concurrent commits of the
        // same content exactly one reports that it created the file. The temporary name is
        // removed when `self` drops.
        match fs::hard_link(&self.temp.path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(_) => {
                // Some file systems have no hard links; a rename is atomic but would replace,
                // so look first.
                if target.try_exists()? {
                    return Ok(false);
                }
                fs::rename(&self.temp.path, &target)?;
            }
        }
        sync_dir(shard)?;
        sync_dir(&self.dir)?;
        Ok(true)
    }
}

/// Where a [`ChunkReader`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Reading,
    /// The final chunk was verified and the digest matched.
    Done,
    /// Verification failed; every later read fails too.
    Failed,
}

/// Decrypts a stored file chunk by chunk.
struct ChunkReader {
    input: BufReader<File>,
    key: aead::LessSafeKey,
    expected: [u8; 32],
    /// The current chunk: ciphertext, then plaintext (`buf[..len - TAG_BYTES]`) once opened.
    buf: Vec<u8>,
    /// Next plaintext byte of `buf` to hand out.
    pos: usize,
    index: u64,
    digest: digest::Context,
    state: ReadState,
}

impl ChunkReader {
    fn invalid(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("stored file {}: {what}", &hex::encode(self.expected)[..16]),
        )
    }

    /// `e` from reading the current chunk: running out of input means the file was cut.
    fn short(&self, e: io::Error, what: &str) -> io::Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.invalid(&format!("chunk {} {what}", self.index))
        } else {
            e
        }
    }

    /// Reads, verifies and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        let mut len = [0u8; 4];
        if let Err(e) = self.input.read_exact(&mut len) {
            return Err(self.short(e, "is missing or cut short"));
        }
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG_BYTES..=CHUNK_BYTES + TAG_BYTES).contains(&len) {
            return Err(self.invalid(&format!("chunk {} has a bad length {len}", self.index)));
        }
        self.buf.resize(len, 0);
        if let Err(e) = self.input.read_exact(&mut self.buf) {
            return Err(self.short(e, "is cut short"));
        }
        // The chunk that ends the file must be sealed as final, and only that one: this
        // catches a file cut at a chunk boundary and bytes appended after the end.
        let last = self.input.fill_buf()?.is_empty();
        let opened = self
            .key
            .open_in_place(
                chunk_nonce(self.index, last),
                aead::Aad::empty(),
                &mut self.buf,
            )
            .map(|plain| plain.len());
        let Ok(plain_len) = opened else {
            return Err(self.invalid(&format!(
                "chunk {} does not verify (altered, reordered, cut short or another key)",
                self.index
            )));
        };
        self.buf.truncate(plain_len);
        if !last && plain_len != CHUNK_BYTES {
            return Err(self.invalid(&format!("middle chunk {} is not full", self.index)));
        }
        self.digest.update(&self.buf);
        if last {
            let digest =
                std::mem::replace(&mut self.digest, digest::Context::new(&digest::SHA256)).finish();
            if digest.as_ref() != self.expected {
                return Err(self.invalid("content does not match its SHA-256"));
            }
            self.state = ReadState::Done;
        }
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| self.invalid("too many chunks"))?;
        Ok(())
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.state == ReadState::Failed {
                return Err(self.invalid("an earlier read failed"));
            }
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.state == ReadState::Done {
                return Ok(0);
            }
            if let Err(e) = self.next_chunk() {
                // Whatever is left in `buf` was not verified: never hand it out.
                // The input may have stopped mid-chunk, so there is no resuming either.
                self.buf.clear();
                self.pos = 0;
                self.state = ReadState::Failed;
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;

    const SECRET: [u8; 32] = [7; 32];
    const HEADER_BYTES: usize = MAGIC.len() + SALT_BYTES;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(&dir.path().join("files"), SECRET).unwrap();
        (dir, store)
    }

    /// Deterministic bytes that do not repeat with any short period.
    fn content(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ len as u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Every file under `dir`, recursively.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    fn temp_files(store: &FileStore) -> Vec<PathBuf> {
        files_under(store.dir())
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .collect()
    }

    fn read_back(store: &FileStore, sha: &[u8; 32]) -> io::Result<Vec<u8>> {
        let mut reader = store.reader(sha).map_err(store_to_io)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    fn commit(store: &FileStore, bytes: &[u8]) -> [u8; 32] {
        let staged = store.stage(bytes, u64::MAX).unwrap();
        let sha = staged.sha256;
        assert!(staged.commit().unwrap());
        sha
    }

    /// Number of chunks for `len` plaintext bytes.
    fn chunks(len: usize) -> usize {
        len.div_ceil(CHUNK_BYTES).max(1)
    }

    #[test]
    fn files_of_every_size_round_trip() {
        let (_tmp, store) = store();
        for len in [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 1_000_003] {
            let bytes = content(len);
            let staged = store.stage(&bytes[..], u64::MAX).unwrap();
            assert_eq!(staged.sha256, sha256(&bytes), "len {len}");
            assert_eq!(staged.size_bytes, len as u64);
            let sha = staged.sha256;
            assert!(!store.contains(&sha));
            assert!(staged.commit().unwrap());
            assert!(store.contains(&sha));

            let path = object_path(store.dir(), &sha);
            let name = hex::encode(sha);
            assert_eq!(path, store.dir().join(&name[..2]).join(&name));
            let on_disk = fs::read(&path).unwrap();
            assert_eq!(&on_disk[..MAGIC.len()], MAGIC);
            assert_eq!(
                on_disk.len(),
                HEADER_BYTES + chunks(len) * (4 + TAG_BYTES) + len,
                "len {len}"
            );

            assert_eq!(read_back(&store, &sha).unwrap(), bytes, "len {len}");
        }
        assert!(temp_files(&store).is_empty());
    }

    #[test]
    fn small_reads_and_writes_see_the_same_bytes() {
        let (_tmp, store) = store();
        let bytes = content(3 * CHUNK_BYTES + 5);
        let mut writer = store.writer(u64::MAX).unwrap();
        for piece in bytes.chunks(1000) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.size_bytes(), bytes.len() as u64);
        let staged = writer.finish().unwrap();
        assert_eq!(staged.sha256, sha256(&bytes));
        assert!(staged.commit().unwrap());

        let mut reader = store.reader(&sha256(&bytes)).unwrap();
        let mut out = Vec::new();
        let mut piece = [0u8; 777];
        loop {
            let n = reader.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&piece[..n]);
        }
        assert_eq!(out, bytes);
        assert_eq!(reader.read(&mut piece).unwrap(), 0);
    }

    #[test]
    fn stored_bytes_are_encrypted() {
        let (_tmp, store) = store();
        let marker = b"ZHANG San 6217000012345678";
        let mut bytes = Vec::new();
        for _ in 0..5000 {
            bytes.extend_from_slice(marker);
        }
        let sha = commit(&store, &bytes);
        let on_disk = fs::read(object_path(store.dir(), &sha)).unwrap();
        assert!(!on_disk.windows(8).any(|w| w == &marker[..8]));
        // Fresh salt: the same content never encrypts to the same bytes.
        let again = store.stage(&bytes[..], u64::MAX).unwrap();
        let again_bytes = fs::read(&again.temp.path).unwrap();
        assert_ne!(again_bytes[HEADER_BYTES..], on_disk[HEADER_BYTES..]);
    }

    #[test]
    fn the_same_content_is_stored_once() {
        let (_tmp, store) = store();
        let bytes = content(100_000);
        let sha = commit(&store, &bytes);
        let second = store.stage(&bytes[..], u64::MAX).unwrap();
        assert_eq!(second.sha256, sha);
        assert!(!second.commit().unwrap());
        assert_eq!(
            files_under(store.dir()),
            vec![object_path(store.dir(), &sha)]
        );
        assert_eq!(read_back(&store, &sha).unwrap(), bytes);
    }

    #[test]
    fn files_over_the_limit_are_refused_and_leave_nothing_behind() {
        let (_tmp, store) = store();
        let bytes = content(CHUNK_BYTES * 2 + 10);
        let max = bytes.len() as u64 - 1;
        match store.stage(&bytes[..], max) {
            Err(StoreError::TooLarge { size_bytes_max }) => assert_eq!(size_bytes_max, max),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(files_under(store.dir()).is_empty());

        // Exactly at the limit is fine.
        let staged = store.stage(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(staged.size_bytes, bytes.len() as u64);
        drop(staged);

        // Through a writer: the write that crosses the limit fails, and so does finish.
        let mut writer = store.writer(10).unwrap();
        writer.write_all(b"0123456789").unwrap();
        let err = writer.write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<StoreError>());
        assert!(matches!(
            inner,
            Some(StoreError::TooLarge { size_bytes_max: 10 })
        ));
        assert_eq!(writer.size_bytes(), 10);
        assert!(matches!(
            writer.finish(),
            Err(StoreError::TooLarge { size_bytes_max: 10 })
        ));
        assert!(files_under(store.dir()).is_empty());
    }

    #[test]
    fn a_failing_input_is_an_io_error_and_leaves_nothing_behind() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let (_tmp, store) = store();
        assert!(matches!(store.stage(Broken, 100), Err(StoreError::Io(_))));
        assert!(files_under(store.dir()).is_empty());
    }

    #[test]
    fn unfinished_writers_and_uncommitted_files_are_removed() {
        let (_tmp, store) = store();
        let mut writer = store.writer(u64::MAX).unwrap();
        writer.write_all(&content(CHUNK_BYTES + 100)).unwrap();
        assert_eq!(temp_files(&store).len(), 1);
        drop(writer);
        assert!(files_under(store.dir()).is_empty());

        let staged = store.stage(&b"abc"[..], 100).unwrap();
        assert_eq!(temp_files(&store).len(), 1);
        drop(staged);
        assert!(files_under(store.dir()).is_empty());
    }

    #[test]
    fn contains_and_remove() {
        let (_tmp, store) = store();
        let sha = commit(&store, b"statement");
        assert!(store.contains(&sha));
        assert!(!store.contains(&sha256(b"other")));
        store.remove(&sha).unwrap();
        assert!(!store.contains(&sha));
        store.remove(&sha).unwrap();
        match store.reader(&sha) {
            Err(StoreError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            Err(e) => panic!("expected NotFound, got {e:?}"),
            Ok(_) => panic!("expected NotFound, got a reader"),
        }
    }

    /// Stores a three-chunk file, lets `alter` change its bytes on disk, and returns what
    /// reading it back gives.
    fn read_altered(alter: impl FnOnce(&mut Vec<u8>)) -> io::Result<Vec<u8>> {
        let (_tmp, store) = store();
        let bytes = content(2 * CHUNK_BYTES + 1000);
        let sha = commit(&store, &bytes);
        let path = object_path(store.dir(), &sha);
        let mut on_disk = fs::read(&path).unwrap();
        alter(&mut on_disk);
        fs::write(&path, &on_disk).unwrap();
        read_back(&store, &sha)
    }

    /// Offset of chunk `i` in a file of full chunks.
    fn chunk_at(i: usize) -> usize {
        HEADER_BYTES + i * (4 + CHUNK_BYTES + TAG_BYTES)
    }

    fn assert_invalid(result: io::Result<Vec<u8>>) {
        match result {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            Ok(bytes) => panic!("altered file read back as {} bytes", bytes.len()),
        }
    }

    #[test]
    fn the_unaltered_file_reads_back() {
        assert_eq!(
            read_altered(|_| {}).unwrap(),
            content(2 * CHUNK_BYTES + 1000)
        );
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        assert_invalid(read_altered(|b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x01;
        }));
        // In the length field, and in the last tag.
        assert_invalid(read_altered(|b| b[chunk_at(1) + 3] ^= 0x01));
        assert_invalid(read_altered(|b| *b.last_mut().unwrap() ^= 0x80));
    }

    #[test]
    fn a_cut_last_chunk_is_detected() {
        assert_invalid(read_altered(|b| b.truncate(b.len() - 10)));
        assert_invalid(read_altered(|b| b.truncate(chunk_at(2) + 2)));
    }

    #[test]
    fn a_dropped_final_chunk_is_detected() {
        // Cut exactly at a chunk boundary: what is left is a well-formed run of middle chunks.
        assert_invalid(read_altered(|b| b.truncate(chunk_at(2))));
        assert_invalid(read_altered(|b| b.truncate(chunk_at(0))));

        // Under the address of the shorter content only the final flag can tell.
        let (_tmp, store) = store();
        let bytes = content(2 * CHUNK_BYTES + 1000);
        let sha = commit(&store, &bytes);
        let on_disk = fs::read(object_path(store.dir(), &sha)).unwrap();
        let shorter = sha256(&bytes[..2 * CHUNK_BYTES]);
        let target = object_path(store.dir(), &shorter);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &on_disk[..chunk_at(2)]).unwrap();
        assert_invalid(read_back(&store, &shorter));
    }

    #[test]
    fn swapped_chunks_are_detected() {
        fn swap(b: &mut [u8], first: std::ops::Range<usize>, second: std::ops::Range<usize>) {
            let one = b[first.clone()].to_vec();
            let two = b[second.clone()].to_vec();
            b[first].copy_from_slice(&two);
            b[second].copy_from_slice(&one);
        }
        assert_invalid(read_altered(|b| {
            swap(b, chunk_at(0)..chunk_at(1), chunk_at(1)..chunk_at(2))
        }));

        // Under the address of the swapped content only the chunk index can tell.
        let (_tmp, store) = store();
        let mut bytes = content(2 * CHUNK_BYTES + 1000);
        let sha = commit(&store, &bytes);
        let mut on_disk = fs::read(object_path(store.dir(), &sha)).unwrap();
        swap(
            &mut on_disk,
            chunk_at(0)..chunk_at(1),
            chunk_at(1)..chunk_at(2),
        );
        swap(&mut bytes, 0..CHUNK_BYTES, CHUNK_BYTES..2 * CHUNK_BYTES);
        let swapped = sha256(&bytes);
        let target = object_path(store.dir(), &swapped);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &on_disk).unwrap();
        assert_invalid(read_back(&store, &swapped));
    }

    #[test]
    fn bytes_after_the_final_chunk_are_detected() {
        assert_invalid(read_altered(|b| b.push(0)));
        assert_invalid(read_altered(|b| {
            let again = b[chunk_at(1)..chunk_at(2)].to_vec();
            b.extend_from_slice(&again);
        }));
    }

    #[test]
    fn a_file_under_another_address_is_detected() {
        let (_tmp, store) = store();
        let sha = commit(&store, b"the real content");
        let wrong = sha256(b"some other content");
        let target = object_path(store.dir(), &wrong);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(object_path(store.dir(), &sha), &target).unwrap();
        assert_invalid(read_back(&store, &wrong));
    }

    #[test]
    fn another_secret_cannot_read() {
        let (_tmp, store) = store();
        let bytes = content(CHUNK_BYTES + 7);
        let sha = commit(&store, &bytes);
        let other = FileStore::open(store.dir(), [8; 32]).unwrap();
        assert_invalid(read_back(&other, &sha));
    }

    #[test]
    fn a_read_that_failed_keeps_failing() {
        let (_tmp, store) = store();
        let bytes = content(2 * CHUNK_BYTES + 1000);
        let sha = commit(&store, &bytes);
        let path = object_path(store.dir(), &sha);
        let mut on_disk = fs::read(&path).unwrap();
        on_disk[chunk_at(1) + 100] ^= 1;
        fs::write(&path, &on_disk).unwrap();

        let mut reader = store.reader(&sha).unwrap();
        let mut first = vec![0u8; CHUNK_BYTES];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(first, bytes[..CHUNK_BYTES]);
        let mut piece = [0u8; 10];
        for _ in 0..3 {
            let err = reader.read(&mut piece).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn a_bad_header_is_corrupt() {
        let (_tmp, store) = store();
        let sha = commit(&store, b"statement");
        let path = object_path(store.dir(), &sha);
        let mut on_disk = fs::read(&path).unwrap();
        on_disk[5] = 2;
        fs::write(&path, &on_disk).unwrap();
        assert!(matches!(store.reader(&sha), Err(StoreError::Corrupt(_))));
        fs::write(&path, &on_disk[..HEADER_BYTES - 1]).unwrap();
        assert!(matches!(store.reader(&sha), Err(StoreError::Corrupt(_))));
    }

    #[cfg(unix)]
    #[test]
    fn directories_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_tmp, store) = store();
        let sha = commit(&store, b"statement");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let path = object_path(store.dir(), &sha);
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o600);
        let writer = store.writer(10).unwrap();
        assert_eq!(mode(&writer.temp.path), 0o600);
    }

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shared<T: Clone + Send + Sync>() {}
        fn sent<T: Send + 'static>(_: &T) {}
        shared::<FileStore>();
        sent(&store().1.writer(1).unwrap());
        let (_tmp, store) = store();
        let sha = commit(&store, b"x");
        sent(&store.reader(&sha).unwrap());
    }

    #[test]
    fn opening_a_file_as_the_store_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, b"").unwrap();
        assert!(FileStore::open(&path, SECRET).is_err());
    }
}
