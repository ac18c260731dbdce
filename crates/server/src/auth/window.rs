//! The first-fetch window and the credentials generated at its use.
//!
//! A device's window opens when it is added (or `sipprov device unlock`ed) and closes at the
//! first of: `first_fetch_window_secs` passing, or its first successful unauthenticated fetch of
//! its own config file. That fetch is claimed in the store before the file is sent
//! ([`sipprov_store::Store::claim_first_fetch`]); this module keeps the in-memory copy (loaded at
//! start) that lets every later request be decided without the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sipprov_model::Mac;
use sipprov_store::{DeviceRecord, GeneratedCredentials};

/// Length of a generated password: 24 characters from 62 give 142 bits.
const PASSWORD_LEN: usize = 24;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Windows re-opened, windows used, and generated credentials; bounded by the inventory (only
/// known devices are entered).
#[derive(Default)]
pub struct Windows {
    /// When an operator last re-opened each device's window (epoch ms).
    unlocks: Mutex<HashMap<Mac, i64>>,
    /// When each device last used its window (epoch ms).
    used: Mutex<HashMap<Mac, i64>>,
    generated: RwLock<HashMap<Mac, Arc<GeneratedCredentials>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Windows {
    /// Re-opens a device's window from `at`.
    pub fn unlock(&self, mac: Mac, at: i64) {
        lock(&self.unlocks).insert(mac, at);
    }

    /// Notes that the device used its window at `at`.
    pub fn used(&self, mac: Mac, at: i64) {
        let mut used = lock(&self.used);
        let entry = used.entry(mac).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// When the device's current window opened: when it was added, or last unlocked.
    pub fn opened_at(&self, device: &DeviceRecord) -> i64 {
        lock(&self.unlocks).get(&device.mac).copied().unwrap_or(0).max(device.created_at)
    }

    /// True when the window that opened at `opened_at` was used already.
    pub fn is_used(&self, mac: Mac, opened_at: i64) -> bool {
        lock(&self.used).get(&mac).is_some_and(|at| *at >= opened_at)
    }

    /// The device's generated credentials, if it was given some.
    pub fn generated(&self, mac: Mac) -> Option<Arc<GeneratedCredentials>> {
        self.generated.read().unwrap_or_else(|e| e.into_inner()).get(&mac).cloned()
    }

    /// Forgets a deleted device: a device added again under its MAC starts afresh, as the
    /// store's rows went with the device.
    pub fn forget(&self, mac: Mac) {
        lock(&self.unlocks).remove(&mac);
        lock(&self.used).remove(&mac);
        self.generated.write().unwrap_or_else(|e| e.into_inner()).remove(&mac);
    }

    /// Sets a device's window state to what the store holds now (another node unlocked it, or
    /// claimed its first fetch and generated its credentials).
    pub fn replace(&self, mac: Mac, access: &sipprov_store::DeviceAccess) {
        match access.unlocked_at {
            Some(at) => lock(&self.unlocks).insert(mac, at),
            None => lock(&self.unlocks).remove(&mac),
        };
        match access.first_fetch_at {
            Some(at) => lock(&self.used).insert(mac, at),
            None => lock(&self.used).remove(&mac),
        };
        let mut generated = self.generated.write().unwrap_or_else(|e| e.into_inner());
        match &access.credentials {
            Some(c) => generated.insert(mac, Arc::new(c.clone())),
            None => generated.remove(&mac),
        };
    }

    /// Keeps a device's generated credentials (as stored).
    pub fn set_generated(&self, mac: Mac, credentials: GeneratedCredentials) {
        self.generated.write().unwrap_or_else(|e| e.into_inner()).insert(mac, Arc::new(credentials));
    }
}

/// Fresh credentials for `mac`: the user name says what it is, the password comes from the
/// operating system's CSPRNG (through `rand`), 24 letters and digits (about 142 bits; letters
/// and digits only, since every vendor's config syntax carries them unquoted), or `max_len`
/// (at least 16) when the device's vendor keeps no longer ones
/// ([`sipprov_vendors::Vendor::http_password_max_len`]; Snom's 20 still give about 119 bits).
pub fn generate(mac: Mac, max_len: Option<usize>) -> GeneratedCredentials {
    let mut password = random_password();
    password.truncate(max_len.unwrap_or(PASSWORD_LEN).clamp(16, PASSWORD_LEN));
    GeneratedCredentials { username: format!("sipprov-{mac}"), password }
}

/// 24 letters and digits from the CSPRNG.
pub fn random_password() -> String {
    let mut password = String::with_capacity(PASSWORD_LEN);
    while password.len() < PASSWORD_LEN {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        // 248 = 4 × 62: rejecting the bytes above keeps every character equally likely.
        for b in bytes.into_iter().filter(|b| *b < 248) {
            if password.len() < PASSWORD_LEN {
                password.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    password
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_passwords_are_long_random_and_plain() {
        let mac = "001565aabbcc".parse().unwrap();
        let (a, b) = (super::generate(mac, None), super::generate(mac, None));
        assert_eq!(a.username, "sipprov-001565aabbcc");
        assert_eq!(a.password.len(), 24);
        assert!(a.password.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.password, b.password);
    }

    /// A vendor's limit shortens the password (Snom: 20), never below 16 nor above 24.
    #[test]
    fn a_vendor_limit_shortens_the_password() {
        let mac = "000413a11fa7".parse().unwrap();
        assert_eq!(super::generate(mac, Some(20)).password.len(), 20);
        assert_eq!(super::generate(mac, Some(4)).password.len(), 16);
        assert_eq!(super::generate(mac, Some(64)).password.len(), 24);
    }
}
