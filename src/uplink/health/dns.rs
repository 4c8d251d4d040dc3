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

/// The transaction ID of `msg` when it is a well-formed response (QR set, header
/// complete).
pub(crate) fn response_id(msg: &[u8]) -> Option<u16> {
    if msg.len() < 12 || msg[2] & 0x80 == 0 {
        return None;
    }
    Some(u16::from_be_bytes([msg[0], msg[1]]))
}

/// Whether a response proves the resolver reached the internet: NOERROR or NXDOMAIN.
/// SERVFAIL and REFUSED are what a resolver on the gateway answers when everything beyond
/// it is black-holed, so they must not keep a dead uplink "healthy". `Err` names the RCODE.
pub(crate) fn resolved(msg: &[u8]) -> Result<(), String> {
    match msg.get(3).map(|b| b & 0x0f) {
        Some(0 | 3) => Ok(()),
        Some(2) => Err("SERVFAIL".into()),
        Some(5) => Err("REFUSED".into()),
        Some(r) => Err(format!("RCODE {r}")),
        None => Err("truncated response".into()),
    }
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
        r[3] = 0x83; // NXDOMAIN: the resolver reached the authority
        assert_eq!(response_id(&r), Some(0xabcd));
        assert_eq!(resolved(&r), Ok(()));
        assert_eq!(response_id(&r[..5]), None);
        r[3] = 0x82; // SERVFAIL: the resolver could not reach anything beyond the gateway
        assert_eq!(resolved(&r), Err("SERVFAIL".into()));
        r[3] = 0x85;
        assert_eq!(resolved(&r), Err("REFUSED".into()));
    }
}
