//! The digest-signing keys: one RSA key pair per Region (2048-bit, as CloudTrail's), made the first
//! time the Region needs one and valid from the emulator's start (or kept in the state file), and
//! ListPublicKeys answering with their public halves: PKCS#1 DER, validity and the fingerprint the
//! digests name.

use std::collections::BTreeMap;

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use aws_smithy_types::DateTime;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    ctx::Ctx,
    ids::hex,
    wire::{self, ApiError},
};

/// One Region's key pair.
pub(crate) struct RegionKey {
    pair: RsaKeyPair,
    /// The private key as PKCS#8 DER, for the state file.
    pkcs8: Vec<u8>,
    valid_from: DateTime,
}

impl RegionKey {
    /// The public key as CloudTrail publishes it: PKCS#1 `RSAPublicKey`, DER.
    pub(crate) fn public_der(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// What the digests name the key by: hex of the first 16 bytes of its DER's SHA-256 (32 hex
    /// digits, the length of CloudTrail's fingerprints).
    pub(crate) fn fingerprint(&self) -> String {
        hex(&Sha256::digest(self.public_der())[..16])
    }

    /// SHA256withRSA (PKCS #1 v1.5) of `message`, hex-encoded as CloudTrail puts it in a digest's
    /// `x-amz-meta-signature`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String, ApiError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| ApiError::new("InternalFailure", "signing the digest failed"))?;
        Ok(hex(&signature))
    }
}

/// A key as the state file keeps it.
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct SavedKey {
    pkcs8: String,
    valid_from: f64,
}

/// Never the private key, in a log or a panic message.
impl std::fmt::Debug for SavedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedKey(redacted)")
    }
}

/// Every Region's key pair.
pub(crate) struct KeyRing {
    /// When keys made from now on become valid: the emulator's start.
    started: DateTime,
    regions: BTreeMap<String, RegionKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("regions", &self.regions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    pub(crate) fn new(started: DateTime) -> Self {
        KeyRing {
            started,
            regions: BTreeMap::new(),
        }
    }

    /// The Region's key pair, made on first use.
    pub(crate) fn key(&mut self, region: &str) -> Result<&RegionKey, ApiError> {
        if !self.regions.contains_key(region) {
            let failed = || ApiError::new("InternalFailure", "making the Region's key pair failed");
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed())?;
            let pkcs8 = pair.as_der().map_err(|_| failed())?.as_ref().to_vec();
            let key = RegionKey {
                pair,
                pkcs8,
                valid_from: self.started,
            };
            self.regions.insert(region.to_owned(), key);
        }
        self.regions
            .get(region)
            .ok_or_else(|| ApiError::new("InternalFailure", "no key"))
    }

    /// The keys for the state file.
    pub(crate) fn saved(&self) -> BTreeMap<String, SavedKey> {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.regions
            .iter()
            .map(|(region, key)| {
                let saved = SavedKey {
                    pkcs8: b64.encode(&key.pkcs8),
                    valid_from: key.valid_from.as_secs_f64(),
                };
                (region.clone(), saved)
            })
            .collect()
    }

    /// Puts back keys read from the state file; one that does not parse is made anew.
    pub(crate) fn restore(&mut self, saved: BTreeMap<String, SavedKey>) {
        let b64 = base64::engine::general_purpose::STANDARD;
        for (region, key) in saved {
            let Ok(pkcs8) = b64.decode(&key.pkcs8) else {
                continue;
            };
            let Ok(pair) = RsaKeyPair::from_pkcs8(&pkcs8) else {
                continue;
            };
            let key = RegionKey {
                pair,
                pkcs8,
                valid_from: DateTime::from_secs_f64(key.valid_from),
            };
            self.regions.insert(region, key);
        }
    }

    /// ListPublicKeys: the Region's key when its validity overlaps the range asked for.
    pub(crate) fn list(&mut self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let Ctx { region, now, .. } = *ctx;
        let (start, end) = wire::time_range(body, now)?;
        if body
            .get("NextToken")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(ApiError::new("InvalidTokenException", "Invalid NextToken."));
        }
        let key = self.key(region)?;
        // Valid from `valid_from` on; a range wholly before that (or in the future) has none.
        let overlaps = end.unwrap_or(now) >= key.valid_from && start.unwrap_or(now) <= now;
        let keys = if overlaps {
            vec![json!({
                "Value": base64::engine::general_purpose::STANDARD.encode(key.public_der()),
                "ValidityStartTime": key.valid_from.as_secs_f64(),
                "Fingerprint": key.fingerprint(),
            })]
        } else {
            Vec::new()
        };
        Ok(json!({ "PublicKeyList": keys }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    #[test]
    fn keys_are_per_region_and_sign_verifiably() {
        let mut ring = KeyRing::new(DateTime::from_secs(1_700_000_000));
        let east = ring.key("us-east-1").unwrap();
        let (der, fingerprint) = (east.public_der().to_vec(), east.fingerprint());
        let signature = east.sign(b"to sign").unwrap();
        assert_eq!(fingerprint.len(), 32);
        assert_ne!(ring.key("eu-west-1").unwrap().fingerprint(), fingerprint);
        assert_eq!(ring.key("us-east-1").unwrap().fingerprint(), fingerprint);
        let raw: Vec<u8> = (0..signature.len() / 2)
            .map(|i| u8::from_str_radix(&signature[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der);
        assert!(public.verify(b"to sign", &raw).is_ok());
        assert!(public.verify(b"changed", &raw).is_err());
        // Kept and restored: the same key.
        let mut again = KeyRing::new(DateTime::from_secs(1));
        again.restore(ring.saved());
        assert_eq!(again.key("us-east-1").unwrap().fingerprint(), fingerprint);
    }

    #[test]
    fn time_ranges_select_the_key() {
        let mut ring = KeyRing::new(DateTime::from_secs(1_700_000_000));
        let ctx = Ctx {
            account: "123456789012",
            region: "r",
            now: DateTime::from_secs(1_800_000_000),
        };
        let mut count = |body: Value| {
            ring.list(&ctx, &body).unwrap()["PublicKeyList"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count(json!({})), 1);
        assert_eq!(
            count(json!({"StartTime": 1_600_000_000.0, "EndTime": 1_650_000_000.0})),
            0
        );
        assert!(
            ring.list(&ctx, &json!({"StartTime": 2.0, "EndTime": 1.0}))
                .is_err()
        );
    }
}
