//! The data directory holds signing keys and the SQLite database: only the service's own user
//! may read it, whatever the umask the daemon was started with.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700. An existing directory the daemon owns
/// that others can read — as earlier versions left it — is tightened to 0700.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    tighten(dir, DIR_MODE)
}

/// Creates `file` empty with mode 0600 unless it exists; an existing one is tightened to 0600.
/// SQLite gives its `-wal` and `-shm` files the mode of the database file, so creating the
/// database this way keeps all three private.
pub fn ensure_file(file: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => tighten(file, FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Tightens `file` to 0600 if it exists (SQLite's `-wal` and `-shm` files left by an earlier
/// version); a missing file is fine.
pub fn tighten_existing_file(file: &Path) -> io::Result<()> {
    match tighten(file, FILE_MODE) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes group and other access from a path this process owns; leaves anybody else's alone
/// (an operator who shares a directory on purpose keeps it shared).
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() == euid && meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode))?;
        tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "tightened permissions");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_are_0700_and_new_files_0600_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("guildhall.db");
        ensure_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn existing_loose_directories_and_files_are_tightened_and_keep_their_contents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("guildhall.db");
        std::fs::write(&file, b"kept").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        ensure_dir(&dir).unwrap();
        ensure_file(&file).unwrap();
        assert_eq!((mode(&dir), mode(&file)), (0o700, 0o600));
        assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    }
}
