//! [`copy_dir_durably`]: a durable copy of a directory's files, for tests that check
//! recovery idempotence (recover the original and a copy of the same bytes, compare).

use std::io;
use std::path::Path;

/// Copies every entry of `from` into `to` as a file (it must hold no subdirectories: a
/// database directory does not), which is created if
/// needed and emptied first; each copy is synced, then `to` itself. A missing `from`
/// leaves `to` empty.
pub async fn copy_dir_durably(from: &Path, to: &Path) -> io::Result<()> {
    crate::create_dir_all(to).await?;
    for old in crate::read_dir(to).await? {
        crate::remove_file(&old).await?;
    }
    if crate::exists(from).await? {
        for src in crate::read_dir(from).await? {
            let Some(name) = src.file_name() else {
                continue;
            };
            let bytes = crate::read(&src).await?;
            let f = crate::File::create(to.join(name)).await?;
            f.write_all_at(&bytes, 0).await?;
            f.sync_data().await?;
        }
    }
    crate::sync_dir(to).await
}
