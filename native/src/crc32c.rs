//! CRC-32C (Castagnoli), the checksum of Kafka's v2 record batches.
//!
//! With SSE 4.2 (detected at run time) the x86-64 `crc32` instruction takes 8 bytes a
//! step; elsewhere a portable slice-by-8 table version gives the same value.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[0]` is the byte-at-a-time table; `TABLES[k]` advances a byte through k more
/// zero bytes, so eight bytes are folded in one step.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut byte = 0;
    while byte < 256 {
        let mut k = 1;
        while k < 8 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            k += 1;
        }
        byte += 1;
    }
    tables
}

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE 4.2, checked just above.
            return !unsafe { update_sse42(!0, data) };
        }
    }
    !update_portable(!0, data)
}

/// The portable computation, whatever the CPU offers.
#[cfg(test)]
pub fn crc32c_portable(data: &[u8]) -> u32 {
    !update_portable(!0, data)
}

/// The hardware computation, when this CPU has it.
#[cfg(test)]
pub fn crc32c_hardware(data: &[u8]) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE 4.2, checked just above.
            return Some(!unsafe { update_sse42(!0, data) });
        }
    }
    let _ = data;
    None
}

fn update_portable(mut crc: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let low = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ crc;
        let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][(low & 0xff) as usize]
            ^ t[6][((low >> 8) & 0xff) as usize]
            ^ t[5][((low >> 16) & 0xff) as usize]
            ^ t[4][(low >> 24) as usize]
            ^ t[3][(high & 0xff) as usize]
            ^ t[2][((high >> 8) & 0xff) as usize]
            ^ t[1][((high >> 16) & 0xff) as usize]
            ^ t[0][(high >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn update_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut crc = u64::from(crc);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        crc = _mm_crc32_u64(crc, word);
    }
    let mut crc = crc as u32;
    for &byte in chunks.remainder() {
        crc = _mm_crc32_u8(crc, byte);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3720 (iSCSI) B.4 and the usual check value.
    fn vectors() -> Vec<(Vec<u8>, u32)> {
        vec![
            (b"123456789".to_vec(), 0xE306_9283),
            (Vec::new(), 0),
            (b"a".to_vec(), 0xC1D0_4330),
            (vec![0u8; 32], 0x8A91_36AA),
            (vec![0xffu8; 32], 0x62A8_AB43),
            ((0u8..32).collect(), 0x46DD_794E),
            ((0u8..32).rev().collect(), 0x113F_DB5C),
            (
                b"The quick brown fox jumps over the lazy dog".to_vec(),
                0x2262_0404,
            ),
        ]
    }

    #[test]
    fn known_vectors() {
        for (data, expected) in vectors() {
            assert_eq!(crc32c(&data), expected, "{data:?}");
            assert_eq!(crc32c_portable(&data), expected, "{data:?}");
            if let Some(hardware) = crc32c_hardware(&data) {
                assert_eq!(hardware, expected, "{data:?}");
            }
        }
    }

    #[test]
    fn hardware_and_portable_agree_at_every_length_and_alignment() {
        if cfg!(target_arch = "x86_64") {
            // This machine is expected to have SSE 4.2; otherwise the path is untested here.
            assert!(crc32c_hardware(b"x").is_some(), "no SSE 4.2 on this CPU");
        }
        // A deterministic pseudo-random buffer (xorshift).
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let data: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for start in 0..9 {
            for length in (0..300).chain([1000, 4000]) {
                let slice = &data[start..start + length];
                let portable = crc32c_portable(slice);
                assert_eq!(crc32c(slice), portable, "{start} {length}");
                if let Some(hardware) = crc32c_hardware(slice) {
                    assert_eq!(hardware, portable, "{start} {length}");
                }
            }
        }
    }

    #[test]
    fn the_portable_tables_are_the_bitwise_crc() {
        fn bitwise(data: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &byte in data {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ POLY
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(1031).collect();
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1031] {
            assert_eq!(crc32c_portable(&data[..length]), bitwise(&data[..length]));
        }
    }
}
