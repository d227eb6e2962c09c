//! Files written whole or not at all, owner-only, never through a planted link: the state file and
//! the embedded S3's directory.

use std::{
    io,
    path::{Path, PathBuf},
};

/// Writes `bytes` to `path` as a new file renamed over the old one: a crash leaves the old content
/// or the new, never half of one. The embedded S3's directory is written the same way.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let partial = partial_name(path);
    let written = write_new(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// A temporary name beside `path` nobody can have planted in advance: random, so a link or file
/// waiting under a guessable name is never written through.
fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{:016x}.partial", rand::random::<u64>()));
    PathBuf::from(name)
}

/// Creates `path` exclusively (`O_CREAT|O_EXCL`: an existing file or symlink there is an error,
/// never followed), readable by the owner only, and writes `bytes` to disk.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
