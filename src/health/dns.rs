//! A minimal DNS query (one A question) and the check that a datagram answers it.

/// A recursive query for `name`, type A, class IN, with transaction `id`.
pub(crate) fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The transaction ID of `msg` when it is a well-formed response (QR set, one question at
/// least, header complete). Any RCODE counts: the server answered.
pub(crate) fn response_id(msg: &[u8]) -> Option<u16> {
    if msg.len() < 12 || msg[2] & 0x80 == 0 {
        return None;
    }
    Some(u16::from_be_bytes([msg[0], msg[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_well_formed_and_responses_are_recognised() {
        let q = query(0xabcd, "ipfire.org");
        assert_eq!(&q[..4], &[0xab, 0xcd, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x06ipfire\x03org\x00\x00\x01\x00\x01");
        assert_eq!(response_id(&q), None, "a query is no response");
        let mut r = q.clone();
        r[2] |= 0x80;
        r[3] = 0x83; // NXDOMAIN still proves the server answered
        assert_eq!(response_id(&r), Some(0xabcd));
        assert_eq!(response_id(&r[..5]), None);
    }
}
