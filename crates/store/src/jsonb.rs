//! Batches for SQLite written in its binary JSON form (JSONB), ready for `jsonb_each`.
//!
//! A campaign's outcome and history-event batches reach SQLite as one bound value each (see
//! `campaigns`), unpacked by `jsonb_each` and `->>`. Bound as JSON text, SQLite first translated
//! the whole text into JSONB, and the Rust side escaped every string into it: together about a
//! tenth of a campaign's instructions per NOTIFY (callgrind, bench/sip-instructions.sh). Written
//! here as JSONB and bound as a BLOB, neither happens: SQLite takes a BLOB whose first element's
//! header spans it exactly as JSONB as it is (`jsonArgIsJsonb` in SQLite's `json.c`), and strings
//! go in as "raw" text, which needs no escaping.
//!
//! The format (<https://sqlite.org/jsonb.html>, stable since SQLite 3.45): each element is a
//! header, then its payload. The header's first byte holds the element's type in its low four
//! bits and, in its high four bits, the payload's size when it is 0 to 11, or 12, 13, 14, 15 for
//! a size in the 1, 2, 4 or 8 bytes that follow (big-endian). Only the types used here:
//! NULL (0, no payload), INT (3, the integer as ASCII decimal), TEXTRAW (10, UTF-8 text taken
//! as it is), ARRAY (11, the elements one after another) and OBJECT (12, label and value
//! alternating, each label a text element).

const NULL: u8 = 0;
const INT: u8 = 3;
const TEXTRAW: u8 = 10;
const ARRAY: u8 = 11;
const OBJECT: u8 = 12;

/// Appends the header of an element of type `kind` whose payload is `size` bytes.
fn header(out: &mut Vec<u8>, kind: u8, size: usize) {
    match size {
        0..=11 => out.push(((size as u8) << 4) | kind),
        12..=0xff => out.extend_from_slice(&[0xc0 | kind, size as u8]),
        0x100..=0xffff => {
            out.push(0xd0 | kind);
            out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => match u32::try_from(size) {
            Ok(size) => {
                out.push(0xe0 | kind);
                out.extend_from_slice(&size.to_be_bytes());
            }
            Err(_) => {
                out.push(0xf0 | kind);
                out.extend_from_slice(&(size as u64).to_be_bytes());
            }
        },
    }
}

/// One row of a batch: an array of values, appended in order.
#[derive(Default)]
pub(crate) struct Row {
    payload: Vec<u8>,
}

impl Row {
    /// Appends a text, taken as it is (`->>` gives it back unchanged).
    pub(crate) fn text(&mut self, text: &str) -> &mut Row {
        header(&mut self.payload, TEXTRAW, text.len());
        self.payload.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends an integer.
    pub(crate) fn int(&mut self, n: i64) -> &mut Row {
        let mut buf = [0u8; 20];
        let digits = itoa(n, &mut buf);
        header(&mut self.payload, INT, digits.len());
        self.payload.extend_from_slice(digits);
        self
    }

    /// Appends a MAC as its text, twelve lower-case hex digits (as `Mac`'s `Display` writes
    /// it), without formatting a `String` first.
    pub(crate) fn mac(&mut self, mac: sipprov_model::Mac) -> &mut Row {
        header(&mut self.payload, TEXTRAW, 12);
        self.payload.extend_from_slice(&mac_text(mac));
        self
    }

    /// Appends a text, or NULL.
    pub(crate) fn opt_text(&mut self, text: Option<&str>) -> &mut Row {
        match text {
            Some(text) => self.text(text),
            None => self.null(),
        }
    }

    fn null(&mut self) -> &mut Row {
        self.payload.push(NULL);
        self
    }
}

/// A MAC's twelve lower-case hex digits, as `Mac`'s `Display` writes them and the store keeps
/// them.
pub(crate) fn mac_text(mac: sipprov_model::Mac) -> [u8; 12] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 12];
    for (i, b) in mac.bytes().into_iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// The ASCII decimal digits of `n` (what JSONB's INT holds), written at the end of `buf`.
fn itoa(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        // 19 digits at most for an i64, so there is room for the sign.
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// A batch: an array of rows, each an array.
#[derive(Default)]
pub(crate) struct Batch {
    payload: Vec<u8>,
    row: Row,
}

impl Batch {
    /// A batch with room for about `rows` rows of `row_bytes` bytes.
    pub(crate) fn with_capacity(rows: usize, row_bytes: usize) -> Batch {
        Batch { payload: Vec::with_capacity(rows * row_bytes), row: Row::default() }
    }

    /// Appends the row that `fill` writes.
    pub(crate) fn row(&mut self, fill: impl FnOnce(&mut Row)) {
        self.row.payload.clear();
        fill(&mut self.row);
        header(&mut self.payload, ARRAY, self.row.payload.len());
        self.payload.extend_from_slice(&self.row.payload);
    }

    /// The whole batch as one JSONB array, to bind as a BLOB.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 9);
        header(&mut out, ARRAY, self.payload.len());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// A batch keyed by MAC: one JSONB object whose labels are MACs and whose values are integers,
/// for `jsonb_each`, whose `key` and `value` columns give both without a `->>` (about 800
/// instructions each in SQLite's `jsonExtractFunc`, with a copy of the row for each). Labels
/// may repeat: `jsonb_each` gives every entry, in order.
#[derive(Default)]
pub(crate) struct ByMac {
    payload: Vec<u8>,
}

impl ByMac {
    /// A batch with room for about `entries` entries.
    pub(crate) fn with_capacity(entries: usize) -> ByMac {
        ByMac { payload: Vec::with_capacity(entries * 30) }
    }

    /// Appends the entry `mac`: `n`.
    pub(crate) fn int(&mut self, mac: sipprov_model::Mac, n: i64) {
        header(&mut self.payload, TEXTRAW, 12);
        self.payload.extend_from_slice(&mac_text(mac));
        let mut buf = [0u8; 20];
        let digits = itoa(n, &mut buf);
        header(&mut self.payload, INT, digits.len());
        self.payload.extend_from_slice(digits);
    }

    /// The whole batch as one JSONB object, to bind as a BLOB.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 9);
        header(&mut out, OBJECT, self.payload.len());
        out.extend_from_slice(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_the_smallest_size_field() {
        let sizes = [(0, vec![0x0a]), (11, vec![0xba]), (12, vec![0xca, 12]), (255, vec![0xca, 0xff])];
        for (size, expected) in sizes {
            let mut out = Vec::new();
            header(&mut out, TEXTRAW, size);
            assert_eq!(out, expected, "{size}");
        }
        let mut out = Vec::new();
        header(&mut out, ARRAY, 0x1234);
        assert_eq!(out, [0xdb, 0x12, 0x34]);
        out.clear();
        header(&mut out, ARRAY, 0x12_3456);
        assert_eq!(out, [0xeb, 0x00, 0x12, 0x34, 0x56]);
    }

    #[test]
    fn integers_are_their_decimal_digits() {
        for n in [0, 7, -7, 1_733_480_000_000, i64::MIN, i64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn a_mac_is_its_display_text() {
        for mac in ["00:15:65:aa:bb:cc", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "7C:2F:80:E0:D6:05"] {
            let mac: sipprov_model::Mac = mac.parse().unwrap();
            let (mut by_hand, mut as_text) = (Row::default(), Row::default());
            by_hand.mac(mac);
            as_text.text(&mac.to_string());
            assert_eq!(by_hand.payload, as_text.payload);
        }
    }

    #[test]
    fn a_batch_by_mac_is_an_object_of_integers() {
        let mut batch = ByMac::default();
        batch.int("00:15:65:aa:bb:cc".parse().unwrap(), 42);
        let mut want = vec![0xcc, 17, 0xca, 12];
        want.extend_from_slice(b"001565aabbcc");
        want.extend_from_slice(&[0x23, b'4', b'2']);
        assert_eq!(batch.finish(), want);
    }

    #[test]
    fn a_batch_is_an_array_of_arrays() {
        let mut batch = Batch::default();
        batch.row(|r| {
            r.text("a\"b").int(42).opt_text(None).opt_text(Some(""));
        });
        // The batch (10 bytes), its one row (9 bytes): a text of 3, an integer of 2 digits,
        // NULL, an empty text.
        assert_eq!(batch.finish(), [0xab, 0x9b, 0x3a, b'a', b'"', b'b', 0x23, b'4', b'2', 0x00, 0x0a]);
    }
}
