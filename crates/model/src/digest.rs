//! Content hashes as the server writes them: SHA-256, 64 lower-case hex digits.

/// The 32 bytes of a SHA-256 digest written as 64 lower-case hex digits (what the server's
/// renderings and stored files carry); `None` for any other text, upper-case digits included.
/// The render cache decodes each rendering's hash with it once, and the last-seen index keeps
/// the bytes, comparing 32 bytes per repeat fetch rather than 64 digits.
///
/// ```
/// let hex = "ab".repeat(32);
/// assert_eq!(sipprov_model::sha256_of_hex(&hex), Some([0xab; 32]));
/// assert_eq!(sipprov_model::sha256_of_hex(&hex.to_uppercase()), None);
/// assert_eq!(sipprov_model::sha256_of_hex("ab"), None);
/// ```
pub fn sha256_of_hex(hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let lower_hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (lower_hex && hex::decode_to_slice(hash, &mut out).is_ok()).then_some(out)
}
