//! Callback signatures: HMAC-SHA256 over the raw request body with the system's shared secret,
//! sent as `X-Cpq-Signature: sha256=<lowercase hex>` next to `X-Cpq-System: <system>`. The
//! receiver recomputes it over the bytes it received (never over re-serialised JSON).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-cpq-signature";
pub const SYSTEM_HEADER: &str = "x-cpq-system";
const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (longer keys are hashed), so this cannot fail.
    match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// The `X-Cpq-Signature` value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("{PREFIX}{}", hex::encode(m.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` (constant-time comparison).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix(PREFIX) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 4231 test case 2.
    #[test]
    fn matches_the_rfc_4231_vector() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn refuses_other_prefixes_and_garbage() {
        let good = sign(b"k", b"{}");
        assert!(verify(b"k", b"{}", &good));
        assert!(!verify(b"k", b"{}", good.trim_start_matches("sha256=")));
        assert!(!verify(b"k", b"{}", "sha256=zz"));
        assert!(!verify(b"k", b"{}", &good.to_uppercase()));
        assert!(!verify(b"k", b"{}", ""));
    }

    proptest! {
        #[test]
        fn verifies_its_own_signature_and_nothing_else(
            secret in proptest::collection::vec(any::<u8>(), 0..80),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<usize>(),
        ) {
            let sig = sign(&secret, &body);
            prop_assert!(sig.starts_with("sha256="));
            prop_assert_eq!(sig.len(), 7 + 64);
            prop_assert!(sig[7..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
            prop_assert!(verify(&secret, &body, &sig));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip % changed.len();
                changed[i] ^= 0x01;
                prop_assert!(!verify(&secret, &changed, &sig));
            }
            let mut other = secret.clone();
            other.push(1);
            prop_assert!(!verify(&other, &body, &sig));
        }
    }
}
