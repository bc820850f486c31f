//! The rack key: the one secret every component of a rack shares, and
//! with which every frame on the fabric is authenticated.
//!
//! A key file holds 64 hexadecimal digits (a newline after them is
//! allowed) and must be readable by its owner only. `--rack-key FILE` names
//! it; without it, components on one host share a default file that the
//! first of them creates, so a rack started by hand needs no setup.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct RackKey([u8; KEY_LEN]);

impl std::fmt::Debug for RackKey {
    // Never print the secret itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RackKey(..)")
    }
}

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read the rack key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the rack key {path} is not 64 hexadecimal digits: make a new one with 'head -c 32 /dev/urandom | od -An -tx1 | tr -d \" \\n\" > FILE; chmod 600 FILE'")]
    Format { path: PathBuf },
    #[error("the rack key {path} can be read by other users (mode {mode:o}): anyone who reads it can speak for the rack; run 'chmod 600 {path}'")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot create the default rack key {path}: {source}; pass --rack-key FILE")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no home directory for the default rack key (HOME is not set, and this user has none in /etc/passwd): pass --rack-key FILE")]
    NoHome,
    #[error("no random numbers for a new rack key: {0}")]
    Random(String),
}

impl RackKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> RackKey {
        RackKey(bytes)
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A fresh random key (for tests and for a new default file).
    pub fn random() -> Result<RackKey, KeyError> {
        let mut k = [0u8; KEY_LEN];
        getrandom::fill(&mut k).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(RackKey(k))
    }

    /// The key in a file's text form.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a key file, refusing one others can read.
    pub fn load(path: &Path) -> Result<RackKey, KeyError> {
        let read = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        parse_hex(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| KeyError::Format {
            path: path.to_owned(),
        })
    }

    /// Where components of this host find the rack key when none is given:
    /// `$XDG_CONFIG_HOME/lego/rack.key`, else `~/.config/lego/rack.key`.
    pub fn default_path() -> Result<PathBuf, KeyError> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => home()?.join(".config"),
        };
        Ok(base.join("lego").join("rack.key"))
    }

    /// The key at `path`, made there (owner-only) if there is no file yet.
    /// Two components starting at once end up with the same key: the file
    /// appears whole or not at all (written aside, then hard-linked).
    pub fn load_or_create(path: &Path) -> Result<RackKey, KeyError> {
        if path.exists() {
            return RackKey::load(path);
        }
        let create = |source| KeyError::Create {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(create)?;
        }
        let key = RackKey::random()?;
        // Unique per attempt: threads of one process may race too.
        let aside = path.with_extension(format!("new.{}", &RackKey::random()?.to_hex()[..16]));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&aside)?;
            // The mode asked for is cut by the umask, never widened; make sure.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
            f.sync_all()?;
            std::fs::hard_link(&aside, path)
        })();
        let _ = std::fs::remove_file(&aside);
        match written {
            Ok(()) => Ok(key),
            // Another component made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => RackKey::load(path),
            Err(e) => Err(create(e)),
        }
    }
}

/// This user's home: `$HOME`, else the password database's entry (services
/// and CI jobs may run without `HOME`).
fn home() -> Result<PathBuf, KeyError> {
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() }.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|_| KeyError::NoHome)?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[2] == uid && !f[5].is_empty())
        .map(|f| PathBuf::from(f[5]))
        .ok_or(KeyError::NoHome)
}

fn parse_hex(text: &str) -> Option<RackKey> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * KEY_LEN {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut k = [0u8; KEY_LEN];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        k[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(RackKey(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lego-wire-key-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn created_once_owner_only_and_read_back() {
        let d = dir("create");
        let path = d.join("sub/rack.key");
        let a = RackKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = RackKey::load_or_create(&path).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_eq!(RackKey::load(&path).unwrap().bytes(), a.bytes());
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn racing_creators_agree() {
        let d = dir("race");
        let path = d.join("rack.key");
        let keys: Vec<[u8; KEY_LEN]> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| *RackKey::load_or_create(&path).unwrap().bytes()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn exposed_and_malformed_keys_are_refused_with_a_sentence() {
        let d = dir("bad");
        let path = d.join("k");
        std::fs::write(&path, "00".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = RackKey::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("can be read by other users") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(RackKey::load(&path).is_ok());
        std::fs::write(&path, "xyz").unwrap();
        let e = RackKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("not 64 hexadecimal digits"), "{e}");
        let e = RackKey::load(&d.join("absent")).unwrap_err().to_string();
        assert!(e.contains("cannot read the rack key"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }
}
