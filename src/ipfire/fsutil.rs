//! Crash-safe file operations: every write is temp + fsync + rename + fsync(dir).
//!
//! A reader (IPFire's scripts, the WUI, a restarted connectd) sees either the old file or the
//! new one, never a half-written one, and after a power cut the rename is durable. Secrets
//! are created with their final mode: the temporary file is opened 0600 before a byte is
//! written, so there is never a moment with a wider mode.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::ipfire::readhash::Document;

/// Largest settings file we accept; IPFire's are a few hundred bytes.
pub(crate) const MAX_SETTINGS_BYTES: u64 = 1024 * 1024;

fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.connectd-tmp.{}", std::process::id()))
}

/// fsyncs the directory holding `path`, so a rename in it is durable.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Replaces `path` with `data`: written to a temporary file in the same directory (created
/// with `mode`), fsynced, renamed over `path`, and the directory fsynced. On any error the
/// temporary file is removed and `path` is untouched.
pub(crate) fn replace_atomically(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let tmp = tmp_name(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .at(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .at(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        fs::rename(&tmp, path).at(path)?;
        fsync_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The mode `path` has now, or `default` when it does not exist.
pub(crate) fn mode_or(path: &Path, default: u32) -> u32 {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(default)
}

/// Makes `link` a hard link to `target`, atomically: link to a temporary name, rename over.
/// `link` is never opened, so a file it shares an inode with is never written through.
pub(crate) fn link_atomically(target: &Path, link: &Path) -> Result<()> {
    let tmp = tmp_name(link);
    let _ = fs::remove_file(&tmp);
    fs::hard_link(target, &tmp).at(&tmp)?;
    if let Err(e) = fs::rename(&tmp, link).at(link) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fsync_dir(link)
}

/// Copies `from` to `to` atomically, keeping the mode of `from`.
pub fn copy_atomically(from: &Path, to: &Path) -> Result<()> {
    let data = read_bounded(from)?;
    replace_atomically(to, &data, mode_or(from, 0o644))
}

/// Reads a file of at most [`MAX_SETTINGS_BYTES`].
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).at(path)?;
    let mut buf = Vec::new();
    f.take(MAX_SETTINGS_BYTES + 1)
        .read_to_end(&mut buf)
        .at(path)?;
    if buf.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(Error::Parse {
            file: path.into(),
            line: None,
            msg: format!("larger than {MAX_SETTINGS_BYTES} bytes; not a settings file"),
        });
    }
    Ok(buf)
}

/// Reads a readhash settings file, refusing binary content (NUL bytes, invalid UTF-8) and
/// oversized files with a message naming the file.
pub(crate) fn read_settings(path: &Path) -> Result<Document> {
    let buf = read_bounded(path)?;
    if let Some(pos) = buf.iter().position(|&b| b == 0) {
        let line = buf[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Error::Parse {
            file: path.into(),
            line: Some(line),
            msg: "contains a NUL byte; binary data is not a settings file".into(),
        });
    }
    let text = String::from_utf8(buf).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Parse {
            file: path.into(),
            line: Some(line),
            msg: "is not valid UTF-8 text".into(),
        }
    })?;
    Ok(Document::parse(&text))
}

/// Writes a readhash document atomically, keeping the file's current mode (0644 if new).
pub(crate) fn write_settings(path: &Path, doc: &Document) -> Result<()> {
    replace_atomically(path, doc.to_text().as_bytes(), mode_or(path, 0o644))
}

/// Reads a small one-line file (e.g. `red/iface`), trimmed; `None` when absent or empty.
pub(crate) fn read_word(path: &Path) -> Option<String> {
    let data = read_bounded(path).ok()?;
    let s = String::from_utf8_lossy(&data).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Inode and device of a file, to tell whether two paths are the same file.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Creates `dir` and its parents (mode 0755) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures with plain writes
mod tests {
    use super::*;

    #[test]
    fn replace_writes_mode_from_the_first_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secrets");
        replace_atomically(&p, b"x", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&p).unwrap(), b"x");
        // No temporary left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn link_atomically_shares_the_inode_and_never_writes_through() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("settings-1");
        let b = dir.path().join("settings-2");
        let s = dir.path().join("settings");
        fs::write(&a, "A=1\n").unwrap();
        fs::write(&b, "B=2\n").unwrap();
        fs::hard_link(&a, &s).unwrap();
        link_atomically(&b, &s).unwrap();
        assert_eq!(file_id(&s), file_id(&b));
        assert_eq!(fs::read_to_string(&a).unwrap(), "A=1\n");
    }

    #[test]
    fn binary_and_huge_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings-1");
        fs::write(&p, b"A=1\nB=\0\n").unwrap();
        let e = read_settings(&p).unwrap_err().to_string();
        assert!(e.contains("settings-1:2") && e.contains("NUL"), "{e}");
        fs::write(&p, b"A=\xff\n").unwrap();
        assert!(read_settings(&p).unwrap_err().to_string().contains("UTF-8"));
        fs::write(&p, vec![b'a'; (MAX_SETTINGS_BYTES + 1) as usize]).unwrap();
        assert!(
            read_settings(&p)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
    }

    #[test]
    fn failed_replace_leaves_the_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing-dir").join("f");
        assert!(replace_atomically(&p, b"x", 0o644).is_err());
        assert!(!p.exists());
    }
}
