//! The public file API, identical in both worlds. Every operation delegates to the
//! world's backend (`real` or `sim::backend`) and records one `File` event in the run
//! trace naming the operation, the path, offset/length and the result, at the caller's
//! source location.

use crate::backend;
use sim_runtime::trace::{self, EventKind};
use std::future::Future;
use std::io;
use std::panic::Location;
use std::path::{Path, PathBuf};

/// The flags of an open, as `std::fs::OpenOptions` has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Opts {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub create_new: bool,
    pub truncate: bool,
    pub append: bool,
}

impl Opts {
    /// std's validation of flag combinations (EINVAL), so both worlds reject the same.
    pub(crate) fn validate(&self) -> io::Result<()> {
        const EINVAL: i32 = 22;
        if !self.read && !self.write && !self.append {
            return Err(io::Error::from_raw_os_error(EINVAL));
        }
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(io::Error::from_raw_os_error(EINVAL));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(io::Error::from_raw_os_error(EINVAL));
        }
        Ok(())
    }
}

/// Options for opening a file, like `std::fs::OpenOptions` (all flags start false).
///
/// `append(true)` implies write access and, as on Linux, makes every write — including
/// `write_all_at` with an explicit offset — land at the end of the file.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    opts: Opts,
}

impl OpenOptions {
    /// All flags false.
    pub fn new() -> Self {
        Self::default()
    }
    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.opts.read = on;
        self
    }
    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.opts.write = on;
        self
    }
    /// Create the file if it does not exist (needs write or append).
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.opts.create = on;
        self
    }
    /// Create the file, failing with `AlreadyExists` if it exists (needs write or append).
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.opts.create_new = on;
        self
    }
    /// Truncate an existing file to length 0 (needs write).
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.opts.truncate = on;
        self
    }
    /// Open in append mode: every write lands at the end of the file.
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.opts.append = on;
        self
    }

    /// Opens `path` with these options. Errors as the real file system gives them:
    /// `NotFound` for a missing file (or parent directory) without `create`,
    /// `AlreadyExists` with `create_new`, `InvalidInput` (EINVAL) for a meaningless flag
    /// combination.
    #[track_caller]
    pub fn open(&self, path: impl AsRef<Path>) -> impl Future<Output = io::Result<File>> + Send {
        let loc = Location::caller();
        let opts = self.opts;
        let path = path.as_ref().to_path_buf();
        async move {
            let res = match opts.validate() {
                Ok(()) => backend::open(opts, &path).await,
                Err(e) => Err(e),
            };
            record(loc, || format!("open {} {opts:?}", path.display()), &res);
            res.map(|inner| File { inner, path })
        }
    }
}

/// An open file. All I/O is positional; there is no cursor. Not `Clone`: share it with
/// `Arc<File>` (every method takes `&self`).
///
/// In the simulated world a `File` belongs to the process that opened it: after its
/// node is killed or crashed every operation on it fails (it never touches the disk
/// the restarted node sees).
#[derive(Debug)]
pub struct File {
    inner: backend::File,
    path: PathBuf,
}

impl File {
    /// Opens an existing file for reading and writing.
    #[track_caller]
    pub fn open(path: impl AsRef<Path>) -> impl Future<Output = io::Result<File>> + Send {
        OpenOptions::new().read(true).write(true).open(path)
    }

    /// Creates a file, or truncates an existing one, and opens it for reading and writing.
    #[track_caller]
    pub fn create(path: impl AsRef<Path>) -> impl Future<Output = io::Result<File>> + Send {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// The path this file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads into `buf` from `offset`; returns the number of bytes read, which is less
    /// than `buf.len()` only at end of file.
    #[track_caller]
    pub fn read_at<'a>(
        &'a self,
        buf: &'a mut [u8],
        offset: u64,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        let loc = Location::caller();
        async move {
            let len = buf.len();
            let res = self.inner.read_at(buf, offset).await;
            record(loc, || self.detail("read_at", offset, len), &res);
            res
        }
    }

    /// Reads exactly `buf.len()` bytes from `offset`; `UnexpectedEof` if the file ends
    /// first.
    #[track_caller]
    pub fn read_exact_at<'a>(
        &'a self,
        buf: &'a mut [u8],
        offset: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        let loc = Location::caller();
        async move {
            let len = buf.len();
            let res = match self.inner.read_at(buf, offset).await {
                Ok(n) if n == len => Ok(()),
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "failed to fill whole buffer",
                )),
                Err(e) => Err(e),
            };
            record(loc, || self.detail("read_exact_at", offset, len), &res);
            res
        }
    }

    /// Writes all of `buf` at `offset` (into the page cache: not durable until
    /// [`File::sync_data`]). In append mode the bytes land at the end of the file instead.
    #[track_caller]
    pub fn write_all_at<'a>(
        &'a self,
        buf: &'a [u8],
        offset: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        let loc = Location::caller();
        async move {
            let res = self.inner.write_all_at(buf, offset).await;
            record(loc, || self.detail("write_all_at", offset, buf.len()), &res);
            res
        }
    }

    /// Writes all of `buf` at the current end of the file and returns the offset it was
    /// written at. Appends through one `File` are serialized.
    #[track_caller]
    pub fn append<'a>(
        &'a self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<u64>> + Send + 'a {
        let loc = Location::caller();
        async move {
            let res = self.inner.append(buf).await;
            record(
                loc,
                || format!("append {} len={}", self.path.display(), buf.len()),
                &res,
            );
            res
        }
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    #[track_caller]
    pub fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> + Send + '_ {
        let loc = Location::caller();
        async move {
            let res = self.inner.set_len(len).await;
            record(
                loc,
                || format!("set_len {} len={len}", self.path.display()),
                &res,
            );
            res
        }
    }

    /// The file's current length (including writes not yet synced).
    #[track_caller]
    pub fn len(&self) -> impl Future<Output = io::Result<u64>> + Send + '_ {
        let loc = Location::caller();
        async move {
            let res = self.inner.len().await;
            record(loc, || format!("len {}", self.path.display()), &res);
            res
        }
    }

    /// Makes the file's data and length durable. It does NOT make the file's directory
    /// entry durable: that takes [`sync_dir`] on the parent. On failure (EIO) the
    /// unsynced data may be silently dropped: treat a failed sync as fatal for the file.
    #[track_caller]
    pub fn sync_data(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        let loc = Location::caller();
        async move {
            let res = self.inner.sync_data().await;
            record(loc, || format!("sync_data {}", self.path.display()), &res);
            res
        }
    }

    /// Like [`File::sync_data`], also flushing metadata (in the simulated disk the two
    /// are the same: length is part of the data).
    #[track_caller]
    pub fn sync_all(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        let loc = Location::caller();
        async move {
            let res = self.inner.sync_all().await;
            record(loc, || format!("sync_all {}", self.path.display()), &res);
            res
        }
    }

    fn detail(&self, op: &str, offset: u64, len: usize) -> String {
        format!("{op} {} off={offset} len={len}", self.path.display())
    }
}

/// A file's or directory's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Length in bytes (for a directory: whatever the file system reports; 0 in the
    /// simulated disk).
    pub len: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// Renames `from` to `to`, atomically replacing an existing file at `to`. Durable only
/// after [`sync_dir`] on `to`'s parent.
#[track_caller]
pub fn rename(
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
) -> impl Future<Output = io::Result<()>> + Send {
    let loc = Location::caller();
    let (from, to) = (from.as_ref().to_path_buf(), to.as_ref().to_path_buf());
    async move {
        let res = backend::rename(&from, &to).await;
        record(
            loc,
            || format!("rename {} -> {}", from.display(), to.display()),
            &res,
        );
        res
    }
}

/// Removes a file. Durable only after [`sync_dir`] on its parent.
#[track_caller]
pub fn remove_file(path: impl AsRef<Path>) -> impl Future<Output = io::Result<()>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::remove_file(&path).await;
        record(loc, || format!("remove_file {}", path.display()), &res);
        res
    }
}

/// Creates a directory and all its missing ancestors. Each new directory is durable only
/// after [`sync_dir`] on its parent.
#[track_caller]
pub fn create_dir_all(path: impl AsRef<Path>) -> impl Future<Output = io::Result<()>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::create_dir_all(&path).await;
        record(loc, || format!("create_dir_all {}", path.display()), &res);
        res
    }
}

/// The entries of a directory, as `path.join(name)`, sorted.
#[track_caller]
pub fn read_dir(path: impl AsRef<Path>) -> impl Future<Output = io::Result<Vec<PathBuf>>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::read_dir(&path).await;
        record(loc, || format!("read_dir {}", path.display()), &res);
        res
    }
}

/// Makes the directory's entries durable: files created, renamed into or removed from
/// it, and directories created in it.
#[track_caller]
pub fn sync_dir(path: impl AsRef<Path>) -> impl Future<Output = io::Result<()>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::sync_dir(&path).await;
        record(loc, || format!("sync_dir {}", path.display()), &res);
        res
    }
}

/// Metadata of a file or directory; `NotFound` if it does not exist.
#[track_caller]
pub fn metadata(path: impl AsRef<Path>) -> impl Future<Output = io::Result<Metadata>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::metadata(&path).await;
        record(loc, || format!("metadata {}", path.display()), &res);
        res
    }
}

/// Whether a file or directory exists at `path`.
#[track_caller]
pub fn exists(path: impl AsRef<Path>) -> impl Future<Output = io::Result<bool>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = backend::exists(&path).await;
        record(loc, || format!("exists {}", path.display()), &res);
        res
    }
}

/// Reads a whole file.
#[track_caller]
pub fn read(path: impl AsRef<Path>) -> impl Future<Output = io::Result<Vec<u8>>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    async move {
        let res = read_whole(&path).await;
        record(loc, || format!("read {}", path.display()), &res);
        res
    }
}

async fn read_whole(path: &Path) -> io::Result<Vec<u8>> {
    let opts = Opts {
        read: true,
        ..Opts::default()
    };
    let file = backend::open(opts, path).await?;
    let len = file.len().await?;
    let len = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(27))?; // EFBIG
    let mut buf = vec![0u8; len];
    let n = file.read_at(&mut buf, 0).await?;
    buf.truncate(n);
    Ok(buf)
}

/// Creates or truncates `path` and writes `bytes` into it. NOT durable: no sync of the
/// file or its directory.
#[track_caller]
pub fn write(
    path: impl AsRef<Path>,
    bytes: impl AsRef<[u8]>,
) -> impl Future<Output = io::Result<()>> + Send {
    let loc = Location::caller();
    let path = path.as_ref().to_path_buf();
    let bytes = bytes.as_ref().to_vec();
    async move {
        let opts = Opts {
            write: true,
            create: true,
            truncate: true,
            ..Opts::default()
        };
        let res = match backend::open(opts, &path).await {
            Ok(file) => file.write_all_at(&bytes, 0).await,
            Err(e) => Err(e),
        };
        record(
            loc,
            || format!("write {} len={}", path.display(), bytes.len()),
            &res,
        );
        res
    }
}

/// Describes an operation's successful result for the trace.
trait Outcome {
    fn describe(&self) -> String;
}

impl Outcome for () {
    fn describe(&self) -> String {
        "ok".into()
    }
}
impl Outcome for usize {
    fn describe(&self) -> String {
        format!("ok {self}")
    }
}
impl Outcome for u64 {
    fn describe(&self) -> String {
        format!("ok {self}")
    }
}
impl Outcome for bool {
    fn describe(&self) -> String {
        format!("ok {self}")
    }
}
impl Outcome for Vec<u8> {
    fn describe(&self) -> String {
        format!("ok {} bytes", self.len())
    }
}
impl Outcome for Vec<PathBuf> {
    fn describe(&self) -> String {
        format!("ok {} entries", self.len())
    }
}
impl Outcome for Metadata {
    fn describe(&self) -> String {
        format!("ok len={} dir={}", self.len, self.is_dir)
    }
}
impl Outcome for backend::File {
    fn describe(&self) -> String {
        "ok".into()
    }
}

/// Records the operation `what` describes (built only when the run records: the real
/// world, which records nothing by default, formats no text per file operation).
fn record<T: Outcome>(
    loc: &'static Location<'static>,
    what: impl FnOnce() -> String,
    res: &io::Result<T>,
) {
    if !trace::is_recording() {
        return;
    }
    let what = what();
    let outcome = match res {
        Ok(v) => v.describe(),
        Err(e) => format!("err {e}"),
    };
    trace::record_at(
        EventKind::File,
        format_args!("{what} -> {outcome}"),
        loc.file(),
        loc.line(),
    );
}
