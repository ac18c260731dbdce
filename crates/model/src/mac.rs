//! MAC addresses: parsing every spelling phones and operators use, one canonical form.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
///
/// Accepted spellings: `001565AABBCC`, `00:15:65:aa:bb:cc`, `00-15-65-AA-BB-CC`
/// and Cisco's `0015.65aa.bbcc`, in any case. The canonical form (its
/// `Display`) is 12 lower-case hex digits without separators, the form Yealink,
/// Polycom and Fanvil use in file names.
///
/// ```
/// use sipprov_model::Mac;
/// let mac: Mac = "00:15:65:aa:bb:cc".parse().unwrap();
/// assert_eq!(mac.to_string(), "001565aabbcc");
/// assert_eq!(mac.upper(), "001565AABBCC");
/// assert_eq!(mac.colon(), "00:15:65:aa:bb:cc");
/// assert!("00:15:65:aa:bb".parse::<Mac>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Mac([u8; 6]);

/// Ordered as its 48 bits read big-endian, which is the bytes' lexicographic order (the derived
/// order) in one integer compare: the derived impl compares the byte arrays through `memcmp`,
/// a call per comparison, and sorting a campaign's selection of 20,000 MACs cost about 1,200
/// instructions a device (callgrind, bench/sip-instructions.sh).
impl Ord for Mac {
    fn cmp(&self, other: &Mac) -> std::cmp::Ordering {
        self.as_u64().cmp(&other.as_u64())
    }
}

impl PartialOrd for Mac {
    fn partial_cmp(&self, other: &Mac) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashed as one `u64` (the six bytes, big-endian): a single word for [`MacHasher`] to mix,
/// where the derived impl would feed a length and then the bytes.
impl std::hash::Hash for Mac {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.as_u64());
    }
}

/// A hash map keyed by MAC with the cheap [`MacHasher`]: the inventory, the render cache and
/// the last-seen index each hold up to a million of them and look one up per request.
pub type MacMap<V> = std::collections::HashMap<Mac, V, BuildMacHasher>;

/// Builds [`MacHasher`]s with a key drawn once per process, so which MACs share a bucket is
/// not known in advance. The maps it serves hold MACs of known devices, not arbitrary ones a
/// client sends, so a keyed multiply is enough (SipHash costs several times as much per key).
#[derive(Clone, Copy, Debug)]
pub struct BuildMacHasher {
    key: u64,
}

impl Default for BuildMacHasher {
    fn default() -> BuildMacHasher {
        use std::hash::BuildHasher;
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let key = *KEY.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1);
        BuildMacHasher { key }
    }
}

impl std::hash::BuildHasher for BuildMacHasher {
    type Hasher = MacHasher;
    fn build_hasher(&self) -> MacHasher {
        MacHasher { state: self.key }
    }
}

/// A multiply-and-fold hasher for one `u64` (a [`Mac`]); other input is folded in word by word.
#[derive(Clone, Copy, Debug)]
pub struct MacHasher {
    state: u64,
}

impl std::hash::Hasher for MacHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // One round of a 128-bit multiply folded to 64 bits (as wyhash/foldhash do): every input
        // bit reaches both the low bits (the bucket) and the high bits (hashbrown's tag).
        let product = u128::from(self.state ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {input:?}: {reason}")]
pub struct MacError {
    input: String,
    reason: &'static str,
}

impl Mac {
    /// Builds a MAC from its six bytes.
    ///
    /// ```
    /// assert_eq!(sipprov_model::Mac::from_bytes([0, 0x15, 0x65, 1, 2, 3]).to_string(), "001565010203");
    /// ```
    pub const fn from_bytes(bytes: [u8; 6]) -> Self {
        Mac(bytes)
    }

    /// The six bytes.
    pub const fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// The 48 bits as an integer (big-endian: `001565aabbcc` is `0x001565aabbcc`).
    pub const fn as_u64(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The twelve lower-case hex digits followed by `suffix`: a device's own file name, e.g.
    /// `001565aabbcc.cfg`. Built directly, without `format!` (the vendors name the requested
    /// file this way on every request, and the formatting machinery cost ten times as much).
    ///
    /// ```
    /// let mac = sipprov_model::Mac::from_bytes([0, 0x15, 0x65, 0xaa, 0xbb, 0xcc]);
    /// assert_eq!(mac.file_name(".cfg"), "001565aabbcc.cfg");
    /// assert_eq!(mac.file_name(""), mac.to_string());
    /// ```
    pub fn file_name(&self, suffix: &str) -> String {
        let mut name = String::with_capacity(12 + suffix.len());
        // Only ASCII hex digits: `from_utf8` cannot fail.
        name.push_str(std::str::from_utf8(&self.hex()).unwrap_or_default());
        name.push_str(suffix);
        name
    }

    /// The twelve lower-case hex digits.
    fn hex(&self) -> [u8; 12] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 12];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    /// Upper-case hex without separators, as Gigaset and AudioCodes write it.
    pub fn upper(&self) -> String {
        self.to_string().to_ascii_uppercase()
    }

    /// Lower-case hex with colons, as Yealink puts it in its User-Agent.
    pub fn colon(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// The vendor prefix (first three bytes) as 6 lower-case hex digits.
    ///
    /// ```
    /// let mac: sipprov_model::Mac = "001565aabbcc".parse().unwrap();
    /// assert_eq!(mac.oui(), "001565");
    /// ```
    pub fn oui(&self) -> String {
        self.to_string()[..6].to_string()
    }

    /// Parses exactly 12 hex digits with no separators (the form inside file names).
    pub fn from_plain_hex(s: &str) -> Option<Mac> {
        let digits: &[u8; 12] = s.as_bytes().try_into().ok()?;
        Mac::from_hex_digits(digits)
    }

    /// The MAC of 12 hex digits (any case). Runs on every provisioning request (file names,
    /// User-Agents), so it neither allocates nor goes through `from_str_radix`.
    ///
    /// Each digit's value comes from a table, and one test at the end refuses any that is not a
    /// digit ([`HEX_VALUE`]): a branch per digit was about 100 instructions per MAC.
    fn from_hex_digits(digits: &[u8; 12]) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut seen = 0;
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (high, low) = (HEX_VALUE[usize::from(pair[0])], HEX_VALUE[usize::from(pair[1])]);
            seen |= high | low;
            *byte = (high << 4) | (low & 0x0f);
        }
        (seen & !0x0f == 0).then_some(Mac(out))
    }

    /// The usual form in a User-Agent, six pairs split by one separator (`00:15:65:aa:bb:cc`,
    /// `00-15-65-AA-BB-CC`), read in place; `None` for any other form (the general parse
    /// decides, and names what is wrong). Every Yealink request carries one.
    fn from_paired(s: &str) -> Option<Mac> {
        let b: &[u8; 17] = s.as_bytes().try_into().ok()?;
        let sep = b[2];
        if !matches!(sep, b':' | b'-') || [5, 8, 11, 14].iter().any(|&i| b[i] != sep) {
            return None;
        }
        let mut digits = [0u8; 12];
        for (pair, at) in digits.chunks_exact_mut(2).zip((0..17).step_by(3)) {
            pair.copy_from_slice(&b[at..at + 2]);
        }
        Mac::from_hex_digits(&digits)
    }

    /// True for `000000000000` and `ffffffffffff`, which are placeholders, never devices.
    pub fn is_placeholder(&self) -> bool {
        self.0 == [0; 6] || self.0 == [0xff; 6]
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| MacError { input: input.to_string(), reason };
        let trimmed = input.trim();
        if let Some(mac) = Mac::from_paired(trimmed) {
            return Ok(mac);
        }
        // The digits are gathered on the stack: User-Agents carry a MAC on every request.
        let mut digits = [0u8; 12];
        let mut len = 0;
        match separator_of(trimmed) {
            None => {
                if trimmed.len() != 12 {
                    return Err(err("expected 12 hex digits"));
                }
                digits.copy_from_slice(trimmed.as_bytes());
                len = 12;
            }
            Some(sep) => {
                let (groups, size) = if sep == '.' { (3, 4) } else { (6, 2) };
                let mut count = 0;
                for group in trimmed.split(sep) {
                    count += 1;
                    if count > groups || group.len() != size {
                        return Err(err("separators must split it into 6 pairs (or 3 groups of 4 with dots)"));
                    }
                    digits[len..len + size].copy_from_slice(group.as_bytes());
                    len += size;
                }
                if count != groups {
                    return Err(err("separators must split it into 6 pairs (or 3 groups of 4 with dots)"));
                }
            }
        }
        debug_assert_eq!(len, 12);
        Mac::from_hex_digits(&digits).ok_or_else(|| err("contains a character that is not a hex digit"))
    }
}

fn separator_of(s: &str) -> Option<char> {
    s.chars().find(|c| matches!(c, ':' | '-' | '.'))
}

impl fmt::Display for Mac {
    /// Twelve lower-case hex digits, written at once (file names and fetch records format a
    /// MAC per request; six `{:02x}` calls through the formatting machinery cost ten times as much).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&self.hex()).map_err(|_| fmt::Error)?)
    }
}

/// The value of each byte as a hex digit, either case, and [`NOT_HEX`] for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let digit = b as u8;
        table[b] = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => NOT_HEX,
        };
        b += 1;
    }
    table
};

/// [`HEX_VALUE`] of a byte that is not a hex digit: above every digit's value (0 to 15).
const NOT_HEX: u8 = 0xff;

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_ordered_as_their_bytes() {
        // Each byte taking values that differ in its high bit, its low bit and not at all.
        let values = [0x00u8, 0x01, 0x7f, 0x80, 0xfe, 0xff];
        let macs: Vec<Mac> = (0..6)
            .flat_map(|at| values.iter().map(move |&v| (at, v)))
            .flat_map(|(at, v)| {
                values.iter().map(move |&w| {
                    let mut bytes = [w; 6];
                    bytes[at] = v;
                    Mac(bytes)
                })
            })
            .collect();
        for a in &macs {
            for b in &macs {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a} against {b}");
                assert_eq!(a.partial_cmp(b), Some(a.0.cmp(&b.0)));
            }
        }
    }

    #[test]
    fn every_byte_is_read_as_a_hex_digit_or_refused() {
        for b in 0..=255u8 {
            // `u8::is_ascii_hexdigit`: 0-9, a-f and A-F, the digits `from_str_radix` takes.
            let valid = b.is_ascii_hexdigit();
            for at in [0, 1, 6, 11] {
                let mut digits = *b"001565aabbcc";
                digits[at] = b;
                let expected = valid.then(|| String::from_utf8_lossy(&digits).to_ascii_lowercase());
                assert_eq!(Mac::from_hex_digits(&digits).map(|m| m.to_string()), expected, "{b:#04x} at {at}");
            }
        }
    }

    #[test]
    fn file_name_is_the_display_text_and_the_suffix() {
        for bytes in [[0u8; 6], [0xff; 6], [0, 0x15, 0x65, 0xaa, 0xbb, 0xcc], [0x7c, 0x2f, 0x80, 0xe0, 0xd6, 0x05]] {
            let mac = Mac::from_bytes(bytes);
            for suffix in ["", ".cfg", "-local.cfg", "é"] {
                assert_eq!(mac.file_name(suffix), format!("{mac}{suffix}"));
            }
        }
    }

    #[test]
    fn the_mac_hasher_spreads_sequential_and_random_macs_over_buckets() {
        use std::hash::BuildHasher;
        let build = BuildMacHasher::default();
        let n = 1u64 << 16;
        let spread = |macs: &mut dyn Iterator<Item = Mac>| {
            let mut low = std::collections::HashSet::new();
            let mut tags = std::collections::HashSet::new();
            for mac in macs {
                let h = build.hash_one(mac);
                low.insert(h & (n - 1));
                tags.insert(h >> 57);
            }
            (low.len() as u64, tags.len())
        };
        let base = 0x0015_6500_0000_u64;
        let (low, tags) = spread(&mut (0..n).map(|i| mac_of(base + i)));
        // A random function fills about 63 % of n buckets with n keys.
        assert!(low > n / 2, "sequential MACs fill {low} of {n} buckets");
        assert_eq!(tags, 128, "every tag value used");
        let (low, _) = spread(&mut (0..n).map(|i| mac_of(base + (i << 24))));
        assert!(low > n / 2, "MACs differing in high bits fill {low} of {n} buckets");
        assert_eq!(mac_of(0x0015_65aa_bbcc).as_u64(), 0x0015_65aa_bbcc);
    }

    fn mac_of(v: u64) -> Mac {
        let b = v.to_be_bytes();
        Mac::from_bytes([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    #[test]
    fn accepts_every_common_spelling() {
        for s in [
            "001565AABBCC",
            "001565aabbcc",
            "00:15:65:aa:bb:cc",
            "00-15-65-AA-BB-CC",
            "0015.65aa.bbcc",
            " 00:15:65:AA:BB:CC ",
        ] {
            assert_eq!(s.parse::<Mac>().unwrap().to_string(), "001565aabbcc", "{s}");
        }
    }

    #[test]
    fn refuses_malformed_input_with_a_reason() {
        for s in [
            "",
            "001565aabb",
            "001565aabbccdd",
            "00:15:65:aa:bb:c",
            "0g1565aabbcc",
            "00:15-65:aa:bb:cc",
            "00:1565:aa:bb:cc:",
        ] {
            let e = s.parse::<Mac>().unwrap_err();
            assert!(e.to_string().contains("invalid MAC address"), "{s}: {e}");
        }
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!("000000000000".parse::<Mac>().unwrap().is_placeholder());
        assert!(!"001565000000".parse::<Mac>().unwrap().is_placeholder());
    }
}
