//! Yealink AES config encryption ("compatibility" mode), as Yealink's administrator guides describe
//! it (e.g. the T58A Teams administrator's manual, mirrored at
//! <https://manualshive.com/ru/manual/yealink/t58a-teams/t58a-teams_administrators-manual_3296520-88.html>).
//!
//! The phone decrypts a downloaded `.cfg` with AES-ECB, using the configured key's ASCII bytes
//! directly as the AES key: 16 characters give AES-128, 32 give AES-256. The encrypted file keeps
//! its name and is raw binary. Sources disagree on padding: the 2013 Yealink-tool sample in
//! traviscross/yealink-confenc (`test/test.cfg`) ends in spaces, the gitaware/yealink-encryption
//! reimplementation (`Yealink.py`) uses PKCS#7, so both are offered ([`Padding`]).
//!
//! The key reaches the phone either out of band (`static.auto_provision.aes_key_16.mac` set on the
//! phone, or its web UI), or in a `<name>_Security.enc` key file ([`wrap_key`]): the key encrypted
//! with a fixed AES-128 key built into every Yealink firmware and tool. That wrapping key is public
//! (traviscross/yealink-confenc `lib.sh`, gitaware/yealink-encryption `Yealink.py`), so a key file
//! protects nothing by itself: sipprov serves it only under the same authentication as the
//! device's own file. ECB with a fixed key is deterministic, so unchanged content stays
//! byte-identical (the phone compares MD5s).
//!
//! ```
//! use sipprov_vendors::yealink_aes::{encrypt, decrypt, Padding};
//! let sealed = encrypt(b"#!version:1.0.0.1\n", "0123456789abcdef", Padding::Pkcs7).unwrap();
//! assert_eq!(sealed.len(), 32);
//! assert_eq!(decrypt(&sealed, "0123456789abcdef", Padding::Pkcs7).unwrap(), b"#!version:1.0.0.1\n");
//! ```

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use ecb::cipher::block_padding::NoPadding;

/// The fixed key Yealink firmware uses to unwrap `<name>_Security.enc` key files (public since 2013).
const KEY_FILE_WRAPPING_KEY: &[u8; 16] = b"EKs35XacP6eybA25";

const BLOCK: usize = 16;

/// How the plaintext is padded to a whole number of 16-byte blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// PKCS#7: 1 to 16 bytes, each holding the pad length (`openssl enc` default). The default.
    Pkcs7,
    /// ASCII spaces up to the block boundary (none when already aligned), as the 2013 Yealink-tool
    /// sample shows; harmless in a `key = value` file.
    Space,
}

impl Padding {
    /// Reads the `yealink.aes_padding` setting; anything but `space` is PKCS#7.
    pub fn from_setting(value: Option<&str>) -> Padding {
        if value == Some("space") {
            Padding::Space
        } else {
            Padding::Pkcs7
        }
    }
}

/// Why a file could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AesError {
    /// The key is not 16 or 32 bytes (the message never shows the key).
    #[error("a Yealink AES key must be 16 or 32 characters, this one has {0}")]
    KeyLength(usize),
    /// Ciphertext that is not whole blocks, or padding that does not check out.
    #[error("not a Yealink AES file: {0}")]
    Malformed(&'static str),
}

/// Pads and encrypts a rendered file with the key's ASCII bytes (AES-128 or AES-256, ECB).
pub fn encrypt(plain: &[u8], key: &str, padding: Padding) -> Result<Vec<u8>, AesError> {
    let mut buf = plain.to_vec();
    match padding {
        Padding::Pkcs7 => {
            let n = BLOCK - plain.len() % BLOCK;
            buf.resize(plain.len() + n, n as u8);
        }
        Padding::Space => buf.resize(plain.len().div_ceil(BLOCK) * BLOCK, b' '),
    }
    ecb_encrypt(&buf, key.as_bytes())
}

/// Decrypts and unpads (the inverse of [`encrypt`]; space padding is stripped from the end).
pub fn decrypt(sealed: &[u8], key: &str, padding: Padding) -> Result<Vec<u8>, AesError> {
    let mut out = ecb_decrypt(sealed, key.as_bytes())?;
    match padding {
        Padding::Pkcs7 => {
            let n = usize::from(*out.last().ok_or(AesError::Malformed("empty"))?);
            if n == 0 || n > BLOCK || n > out.len() || !out[out.len() - n..].iter().all(|b| usize::from(*b) == n) {
                return Err(AesError::Malformed("bad PKCS#7 padding"));
            }
            out.truncate(out.len() - n);
        }
        Padding::Space => {
            let keep = out.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
            out.truncate(keep);
        }
    }
    Ok(out)
}

/// The content of a `<name>_Security.enc` key file: the 16-character key encrypted with the
/// firmware's fixed wrapping key, 16 bytes, no padding (confenc `encrypt_key`). Only 16-character
/// keys fit the format, so a 32-character key gives an error.
pub fn wrap_key(key: &str) -> Result<Vec<u8>, AesError> {
    if key.len() != BLOCK {
        return Err(AesError::KeyLength(key.len()));
    }
    ecb_encrypt(key.as_bytes(), KEY_FILE_WRAPPING_KEY)
}

/// Recovers the key from a `_Security.enc` file (what the phone does).
pub fn unwrap_key(file: &[u8]) -> Result<String, AesError> {
    let key = ecb_decrypt(file, KEY_FILE_WRAPPING_KEY)?;
    String::from_utf8(key).map_err(|_| AesError::Malformed("key file does not hold text"))
}

fn ecb_encrypt(buf: &[u8], key: &[u8]) -> Result<Vec<u8>, AesError> {
    Ok(match key.len() {
        16 => ecb::Encryptor::<Aes128>::new_from_slice(key)
            .map_err(|_| AesError::KeyLength(key.len()))?
            .encrypt_padded_vec::<NoPadding>(buf),
        32 => ecb::Encryptor::<Aes256>::new_from_slice(key)
            .map_err(|_| AesError::KeyLength(key.len()))?
            .encrypt_padded_vec::<NoPadding>(buf),
        n => return Err(AesError::KeyLength(n)),
    })
}

fn ecb_decrypt(buf: &[u8], key: &[u8]) -> Result<Vec<u8>, AesError> {
    if buf.is_empty() || !buf.len().is_multiple_of(BLOCK) {
        return Err(AesError::Malformed("length is not a whole number of 16-byte blocks"));
    }
    let out = match key.len() {
        16 => ecb::Decryptor::<Aes128>::new_from_slice(key)
            .map_err(|_| AesError::KeyLength(key.len()))?
            .decrypt_padded_vec::<NoPadding>(buf),
        32 => ecb::Decryptor::<Aes256>::new_from_slice(key)
            .map_err(|_| AesError::KeyLength(key.len()))?
            .decrypt_padded_vec::<NoPadding>(buf),
        n => return Err(AesError::KeyLength(n)),
    };
    out.map_err(|_| AesError::Malformed("bad block length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_sp800_38a_ecb_aes128_known_answer() {
        let key = hex("2b7e151628aed2a6abf7158809cf4f3c");
        let out = ecb_encrypt(&hex("6bc1bee22e409f96e93d7e117393172a"), &key).unwrap();
        assert_eq!(out, hex("3ad77bb40d7a3660a89ecaf32466ef97"));
    }

    #[test]
    fn padding_modes_round_trip_and_differ() {
        let text = b"static.auto_provision.server.url = http://x/\r\n";
        for key in ["0123456789abcdef", "0123456789abcdef0123456789ABCDEF"] {
            for padding in [Padding::Pkcs7, Padding::Space] {
                let sealed = encrypt(text, key, padding).unwrap();
                assert_eq!(sealed.len() % 16, 0);
                assert_eq!(decrypt(&sealed, key, padding).unwrap(), text);
            }
        }
        // An aligned plaintext gets a whole PKCS#7 block but no space padding.
        assert_eq!(encrypt(&[b'a'; 32], "0123456789abcdef", Padding::Pkcs7).unwrap().len(), 48);
        assert_eq!(encrypt(&[b'a'; 32], "0123456789abcdef", Padding::Space).unwrap().len(), 32);
        assert!(encrypt(b"x", "short", Padding::Pkcs7).is_err());
    }

    #[test]
    fn key_files_wrap_with_the_public_firmware_key() {
        let wrapped = wrap_key("AbCdEfGh12345678").unwrap();
        assert_eq!(wrapped.len(), 16);
        assert_eq!(unwrap_key(&wrapped).unwrap(), "AbCdEfGh12345678");
        assert!(wrap_key("0123456789abcdef0123456789abcdef").is_err(), "32-character keys do not fit a key file");
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
