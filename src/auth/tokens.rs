//! Static bearer tokens. Configuration holds only their SHA-256 (hex), never the tokens; a presented
//! token is hashed and compared in constant time against every entry.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One configured token: `[[tokens]] principal = "ci", sha256 = "<hex>", roles = ["reader"]`, and
/// optionally where its principal may call (`accounts`, `regions`; absent: wherever its roles may).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub principal: String,
    pub sha256: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Accounts its calls may target (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Regions its calls may target (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid setting `tokens[{index}].sha256`: expected 64 hex digits (the SHA-256 of the token)"
)]
pub struct BadHash {
    pub index: usize,
}

#[derive(Debug, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], usize)>,
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal without an early exit, so timing tells nothing about where two hashes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    pub fn new(entries: &[TokenEntry]) -> Result<Tokens, BadHash> {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(index, e)| {
                parse_hex(&e.sha256)
                    .map(|h| (h, index))
                    .ok_or(BadHash { index })
            })
            .collect::<Result<_, _>>()?;
        Ok(Tokens { entries })
    }

    /// The index of the entry whose hash matches `token`; every entry is compared.
    pub fn find(&self, token: &str) -> Option<usize> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, index) in &self.entries {
            if constant_time_eq(hash, &presented) {
                found = Some(*index);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str) -> TokenEntry {
        let hash: String = Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        TokenEntry {
            principal: token.to_uppercase(),
            sha256: hash,
            roles: vec![],
            accounts: Vec::new(),
            regions: Vec::new(),
        }
    }

    #[test]
    fn tokens_match_by_hash_only() {
        let tokens = Tokens::new(&[entry("alpha"), entry("beta")]).unwrap();
        assert_eq!(tokens.find("beta"), Some(1));
        assert_eq!(tokens.find("gamma"), None);
        assert_eq!(tokens.find(""), None);
    }

    #[test]
    fn malformed_hashes_name_their_entry() {
        let mut bad = entry("x");
        bad.sha256 = "abc".into();
        let err = Tokens::new(&[entry("ok"), bad]).unwrap_err().to_string();
        assert!(err.contains("tokens[1].sha256"), "{err}");
    }
}
