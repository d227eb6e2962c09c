//! ListPublicKeys: one stable digest-signing public key per Region.
//!
//! The embedded CloudTrail writes no digest files, so no private key exists; the key is a well-formed
//! DER PKCS#1 RSA public key (2048-bit modulus, exponent 65537) derived from the Region's name, so it
//! is the same on every call and every start.

use aws_smithy_types::DateTime;
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    ctx::Ctx,
    ids::hex,
    wire::{self, ApiError},
};

/// When every Region's key became valid (2024-01-01T00:00:00Z); it has not been rotated since.
const VALID_FROM: i64 = 1_704_067_200;

fn public_key(region: &str) -> Vec<u8> {
    let mut modulus = Vec::with_capacity(256);
    let mut block = Sha256::digest(format!("cloudtrail-gateway digest key {region}").as_bytes());
    while modulus.len() < 256 {
        modulus.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    modulus[0] |= 0x80; // a full 2048-bit modulus
    modulus[255] |= 0x01; // odd, as an RSA modulus is
    // SEQUENCE { INTEGER modulus (0x00-prefixed: positive), INTEGER 65537 }
    let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
    der.extend_from_slice(&modulus);
    der.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
    der
}

pub fn list(ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
    let Ctx { region, now, .. } = *ctx;
    let (start, end) = wire::time_range(body, now)?;
    if body
        .get("NextToken")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return Err(ApiError::new("InvalidTokenException", "Invalid NextToken."));
    }
    let valid_from = DateTime::from_secs(VALID_FROM);
    // The key is valid from VALID_FROM on; a range wholly before that (or in the future) has none.
    let overlaps = end.unwrap_or(now) >= valid_from && start.unwrap_or(now) <= now;
    let keys = if overlaps {
        let value = public_key(region);
        vec![json!({
            "Value": base64::engine::general_purpose::STANDARD.encode(&value),
            "ValidityStartTime": VALID_FROM,
            "Fingerprint": hex(&Sha256::digest(&value)[..16]),
        })]
    } else {
        Vec::new()
    };
    Ok(json!({ "PublicKeyList": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_region_and_well_formed() {
        assert_eq!(public_key("us-east-1"), public_key("us-east-1"));
        assert_ne!(public_key("us-east-1"), public_key("eu-west-1"));
        let der = public_key("us-east-1");
        assert_eq!(der.len(), 4 + 0x10a);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
    }

    #[test]
    fn time_ranges_select_the_key() {
        let ctx = Ctx {
            account: "123456789012",
            region: "r",
            now: DateTime::from_secs(1_800_000_000),
        };
        let count = |body: Value| {
            list(&ctx, &body).unwrap()["PublicKeyList"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count(json!({})), 1);
        assert_eq!(
            count(json!({"StartTime": 1_600_000_000.0, "EndTime": 1_650_000_000.0})),
            0
        );
        assert!(list(&ctx, &json!({"StartTime": 2.0, "EndTime": 1.0})).is_err());
    }
}
