//! A principal's name as STS will carry it. STS allows `[\w+=,.@-]` in a SourceIdentity (2-256
//! characters) and a RoleSessionName (2-64), and `[\p{L}\p{Z}\p{N}_.:/=+\-@]` in session tag values
//! (up to 256): a SPIFFE id (`spiffe://td/ns/x/sa/y`) or `auth0|123` fits none as is. Each mapping
//! below is documented in the README ("Accounts"):
//!
//! - **SourceIdentity**: the principal with every character outside `[A-Za-z0-9_+,.@-]` (and `=`
//!   itself) written `=XX` (its UTF-8 bytes in upper-case hex). Reversible, so two principals never
//!   share one. Longer than 256: the first 190 characters, `==`, and the principal's whole SHA-256
//!   in hex (`==` never occurs in an escaped name). A one-character principal gets `=.` after it
//!   (escaping never writes `=` before anything but hex digits).
//! - **RoleSessionName** (what LookupEvents shows as `Username`): the principal as is when it fits
//!   `[\w+=,.@-]{2,64}` and does not end like a hashed name; else its allowed characters with `-` for
//!   the others, cut to 31, then `-` and 192 bits of its SHA-256 in base64url (32 characters).
//!   Hashed names and kept names cannot meet, and two hashed ones differ unless SHA-256 collides.
//!
//! Digests are long enough that a birthday search is out of reach (2^96 work or more): 64 bits
//! were not, two `sub`s sharing one Username and SourceIdentity were found in minutes.
//! - **Session tag `principal`**: the principal as is when it fits the tag alphabet and 256
//!   characters, else escaped the same way for the tag alphabet.

use base64::Engine;
use sha2::{Digest, Sha256};

fn sts_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// The principal's whole SHA-256, 64 hex digits.
fn hash_hex(principal: &str) -> String {
    Sha256::digest(principal.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long the hash of a session name is: 24 bytes of SHA-256 in base64url.
const SESSION_HASH: usize = 32;

/// 192 bits of the principal's SHA-256 in base64url (`[A-Za-z0-9_-]`, all STS characters).
fn hash_session(principal: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(&Sha256::digest(principal.as_bytes())[..24])
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// `=XX` for every character `allowed` does not take, and for `=`.
fn escaped(principal: &str, allowed: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(principal.len());
    for c in principal.chars() {
        if allowed(c) && c != '=' {
            out.push(c);
        } else {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

/// `principal` escaped for `allowed`, at most 256 characters (then ending `==` and a hash).
fn escaped_within_256(principal: &str, allowed: fn(char) -> bool) -> String {
    let mut id = escaped(principal, allowed);
    if id.chars().count() > 256 {
        // Tag values may hold multi-byte letters: cut at a character, not a byte.
        id = id.chars().take(190).collect();
        id.push_str("==");
        id.push_str(&hash_hex(principal));
    }
    id
}

/// The SourceIdentity for `principal` (2-256 of `[\w+=,.@-]`).
pub fn source_identity(principal: &str) -> String {
    let mut id = escaped_within_256(principal, sts_char);
    if id.len() < 2 {
        id.push_str("=."); // escaping never writes `=` before anything but hex: still unique
    }
    id
}

/// Whether `name` ends like a hashed session name (`-` and `SESSION_HASH` base64url characters).
fn ends_like_hash(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > SESSION_HASH
        && bytes[bytes.len() - SESSION_HASH - 1] == b'-'
        && bytes[bytes.len() - SESSION_HASH..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The RoleSessionName for `principal` (2-64 of `[\w+=,.@-]`).
pub fn session_name(principal: &str) -> String {
    let length = principal.chars().count();
    let fits = (2..=64).contains(&length) && principal.chars().all(sts_char);
    if fits && !ends_like_hash(principal) {
        return principal.to_owned();
    }
    let mut readable: String = principal
        .chars()
        .map(|c| if sts_char(c) { c } else { '-' })
        .take(64 - SESSION_HASH - 1)
        .collect();
    if readable.is_empty() {
        readable.push('p');
    }
    format!("{readable}-{}", hash_session(principal))
}

/// The value of the `principal` session tag.
pub fn tag_value(principal: &str) -> String {
    if principal.chars().count() <= 256 && principal.chars().all(tag_char) {
        principal.to_owned()
    } else {
        escaped_within_256(principal, tag_char)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_that_fit_are_kept() {
        assert_eq!(source_identity("team-a"), "team-a");
        assert_eq!(session_name("team-a"), "team-a");
        assert_eq!(session_name("alice@example.com"), "alice@example.com");
        assert_eq!(tag_value("spiffe://td/ns/x/sa/y"), "spiffe://td/ns/x/sa/y");
    }

    #[test]
    fn names_that_do_not_fit_are_mapped_as_documented() {
        let spiffe = "spiffe://td/ns/x/sa/y";
        assert_eq!(
            source_identity(spiffe),
            "spiffe=3A=2F=2Ftd=2Fns=2Fx=2Fsa=2Fy"
        );
        let session = session_name(spiffe);
        assert!(session.starts_with("spiffe---td-ns-x-sa-y-"), "{session}");
        assert_eq!(session.len(), "spiffe---td-ns-x-sa-y-".len() + 32);
        assert_eq!(source_identity("a=b"), "a=3Db");
        assert_eq!(source_identity("x"), "x=.");
        assert_ne!(source_identity("x"), source_identity("x\0"));
        assert_eq!(tag_value("auth0|123"), "auth0=7C123");
        let long = "p".repeat(300);
        assert_eq!(source_identity(&long).len(), 256);
        assert!(session_name(&long).len() <= 64);
        // A kept name never looks hashed: one that does is hashed itself.
        let hashed = session_name(spiffe);
        assert_ne!(session_name(&hashed), hashed);
    }

    /// The attack: two long `sub`s found by a birthday search on the 64-bit suffix mapped to the
    /// same Username and SourceIdentity. They share a 16-hex-digit prefix of SHA-256 here; the
    /// mapping now carries 192 bits (session name) and 256 bits (SourceIdentity).
    #[test]
    fn names_carry_a_collision_resistant_digest() {
        let long = "x".repeat(300);
        let id = source_identity(&long);
        assert_eq!(id.len(), 256);
        assert!(id.ends_with(&format!("=={}", hash_hex(&long))), "{id}");
        let session = session_name(&long);
        assert_eq!(session.len(), 64);
        assert!(session.ends_with(&hash_session(&long)), "{session}");
        // Names differing only past the cut still differ in full-length digests.
        let (a, b) = (format!("{long}a"), format!("{long}b"));
        assert_ne!(source_identity(&a), source_identity(&b));
        assert_ne!(session_name(&a), session_name(&b));
        assert_eq!(hash_session(&a).len(), SESSION_HASH);
        assert_eq!(hash_hex(&a).len(), 64);
    }

    fn sts_valid(s: &str, min: usize, max: usize) -> bool {
        (min..=max).contains(&s.chars().count()) && s.chars().all(sts_char)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn mappings_are_valid_and_never_collide(a in ".{1,300}", b in ".{1,300}") {
            for p in [&a, &b] {
                prop_assert!(sts_valid(&source_identity(p), 2, 256));
                prop_assert!(sts_valid(&session_name(p), 2, 64));
                let tag = tag_value(p);
                prop_assert!(tag.chars().count() <= 256 && tag.chars().all(tag_char));
            }
            if a != b {
                prop_assert_ne!(source_identity(&a), source_identity(&b));
                prop_assert_ne!(session_name(&a), session_name(&b));
            }
        }
    }
}
