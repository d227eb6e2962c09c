//! Random identifiers in the shapes AWS uses: request and event ids (UUID v4), access key ids and
//! user ids (base32 upper case), secrets. From the thread-local CSPRNG: no system call per id.

use rand::Rng;

/// A random UUID v4, hyphenated.
pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let mut id = String::with_capacity(36);
    for (i, group) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            id.push('-');
        }
        id.push_str(&hex(group));
    }
    id
}

/// `len` characters drawn from `alphabet`.
fn drawn(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// `len` characters of upper-case letters and digits 2-7, as in access key ids.
pub fn base32(len: usize) -> String {
    drawn(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", len)
}

/// `len` letters and digits, as the unique part of a log file's name.
pub fn alphanumeric(len: usize) -> String {
    drawn(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        len,
    )
}

/// `len` characters of the base64 alphabet, as in secret access keys.
pub fn base64(len: usize) -> String {
    drawn(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        len,
    )
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(uuid(), id);
        assert_eq!(base32(16).len(), 16);
        assert!(
            base32(40)
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(hex(&[0, 255]), "00ff");
    }
}
