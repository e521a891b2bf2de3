//! Local users' passwords: argon2 hashes in `<data dir>/passwd`
//! (`user:$argon2id$…` lines), compared in constant time by argon2.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub struct Passwd {
    path: Option<PathBuf>,
    users: RwLock<HashMap<String, String>>,
}

pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

impl Passwd {
    /// Load `path` (missing is fine); `None` keeps everything in memory.
    pub fn load(path: Option<&Path>) -> Result<Passwd, String> {
        let mut users = HashMap::new();
        if let Some(p) = path {
            match std::fs::read_to_string(p) {
                Ok(s) => {
                    for line in s.lines() {
                        if let Some((u, h)) = line.split_once(':') {
                            users.insert(u.to_string(), h.to_string());
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", p.display())),
            }
        }
        Ok(Passwd { path: path.map(Path::to_path_buf), users: RwLock::new(users) })
    }

    pub fn has(&self, user: &str) -> bool {
        self.users.read().map(|u| u.contains_key(user)).unwrap_or(false)
    }

    /// Set a password and save the file atomically.
    pub fn set(&self, user: &str, password: &str) -> Result<(), String> {
        let h = hash(password)?;
        let mut users = self.users.write().map_err(|_| "password table poisoned".to_string())?;
        users.insert(user.to_string(), h);
        if let Some(p) = &self.path {
            let mut text = String::new();
            let mut names: Vec<&String> = users.keys().collect();
            names.sort();
            for u in names {
                text.push_str(&format!("{u}:{}\n", users[u]));
            }
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
            }
            std::fs::rename(&tmp, p).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// True if the password is right. Unknown users cost the same as known ones.
    pub fn check(&self, user: &str, password: &str) -> bool {
        let stored = self.users.read().ok().and_then(|u| u.get(user).cloned());
        let (h, known) = match stored {
            Some(h) => (h, true),
            // Hash a dummy so a missing user is not distinguishable by timing.
            None => (DUMMY.to_string(), false),
        };
        let ok = match PasswordHash::new(&h) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        };
        ok && known
    }
}

const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$tOjP9lMwbKOb/DcyBRjlU/xiBBcAoZwMF9yVBhr9qkU";
