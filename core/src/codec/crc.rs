//! The CGM E2E-CRC.
//!
//! The Continuous Glucose Monitoring Service (CGMS v1.0.1, §3.1.1.x "E2E-CRC")
//! protects records with CRC-CCITT (generator polynomial x^16 + x^12 + x^5 + 1,
//! seed 0xFFFF), processed least-significant bit first, with no final XOR; in
//! the catalogue of CRC parameter sets this is CRC-16/MCRF4XX. The CRC covers
//! every byte of the record before it and travels little-endian at its end.

/// CRC-16/MCRF4XX over `bytes` (reflected polynomial 0x8408, seed 0xFFFF).
pub fn e2e_crc(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_catalogue_check_value() {
        // The standard check input "123456789" gives 0x6F91 for CRC-16/MCRF4XX.
        assert_eq!(e2e_crc(b"123456789"), 0x6F91);
    }

    #[test]
    fn empty_input_is_the_seed() {
        assert_eq!(e2e_crc(&[]), 0xFFFF);
    }
}
