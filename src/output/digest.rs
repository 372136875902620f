//! The SHA-256 seal of the files smflow trusts again (`partials.json`, `progress.json`
//! and the job stores): a digest over a canonical serialisation that detects any edit
//! made after the run (not a signature).

/// Prefix of the digest string; names the algorithm and the serialisation.
pub const DIGEST_PREFIX: &str = "sha256:";

/// `sha256:` and the 64 hex digits of the SHA-256 of `bytes` (also seals progress.json).
pub fn digest_of(bytes: &[u8]) -> String {
    let mut s = String::from(DIGEST_PREFIX);
    for b in sha256(bytes) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SHA-256 (FIPS 180-4), from the `sha2` crate.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::sha256;

    fn hex(b: [u8; 32]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }
}
