//! ICMP echo packets: building requests, reading replies and errors. Pure byte work; the
//! socket lives in [`super::probe`].

use std::net::Ipv4Addr;

/// The Internet checksum (RFC 1071) of `data`.
pub(crate) fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request with our identifier and sequence number and a short fixed payload.
pub(crate) fn echo_request(ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"connectd");
    let c = inet_checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// What an incoming ICMP message says about one of our requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// An echo reply from `from` to request (`ident`, `seq`).
    Echo {
        from: Ipv4Addr,
        ident: u16,
        seq: u16,
    },
    /// An error (unreachable, time exceeded) from `from` about request (`ident`, `seq`)
    /// sent to `to`.
    Error {
        from: Ipv4Addr,
        to: Ipv4Addr,
        ident: u16,
        seq: u16,
        reason: String,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s = b.get(at..at + 4)?;
    Some(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
}

/// Splits an IPv4 packet into (source, destination, protocol, payload).
pub(crate) fn split_ipv4(b: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, &[u8])> {
    let first = *b.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let total = usize::from(be16(b, 2)?).min(b.len());
    let payload = b.get(ihl..total.max(ihl))?;
    Some((ipv4_at(b, 12)?, ipv4_at(b, 16)?, *b.get(9)?, payload))
}

fn error_reason(ty: u8, code: u8) -> String {
    match (ty, code) {
        (3, 0) => "network unreachable".into(),
        (3, 1) => "host unreachable".into(),
        (3, 3) => "port unreachable".into(),
        (3, 9) | (3, 10) | (3, 13) => "administratively prohibited".into(),
        (3, c) => format!("destination unreachable (code {c})"),
        (11, _) => "time to live exceeded".into(),
        (t, c) => format!("ICMP type {t} code {c}"),
    }
}

/// Parses an ICMP message (without IP header) that arrived from `from`.
pub(crate) fn parse_icmp(from: Ipv4Addr, icmp: &[u8]) -> Option<Reply> {
    let ty = *icmp.first()?;
    let code = *icmp.get(1)?;
    match ty {
        0 => Some(Reply::Echo {
            from,
            ident: be16(icmp, 4)?,
            seq: be16(icmp, 6)?,
        }),
        3 | 11 => {
            let (_, to, proto, inner) = split_ipv4_lenient(icmp.get(8..)?)?;
            if proto != 1 || *inner.first()? != 8 {
                return None;
            }
            Some(Reply::Error {
                from,
                to,
                ident: be16(inner, 4)?,
                seq: be16(inner, 6)?,
                reason: format!("{} from {from}", error_reason(ty, code)),
            })
        }
        _ => None,
    }
}

/// Like [`split_ipv4`] but ignores the total length (the quoted packet is truncated).
fn split_ipv4_lenient(b: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, &[u8])> {
    let first = *b.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 {
        return None;
    }
    Some((ipv4_at(b, 12)?, ipv4_at(b, 16)?, *b.get(9)?, b.get(ihl..)?))
}

/// Parses what a raw ICMP socket delivers: the IP packet with its header.
pub(crate) fn parse_raw(packet: &[u8]) -> Option<Reply> {
    let (src, _, proto, icmp) = split_ipv4(packet)?;
    if proto != 1 {
        return None;
    }
    parse_icmp(src, icmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> Vec<u8> {
        let total = (20 + payload_len) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    #[test]
    fn checksum_of_a_request_verifies_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(inet_checksum(&p), 0);
        assert_eq!(inet_checksum(&[0x45, 0x00, 0x00]), !0x4500);
    }

    #[test]
    fn echo_reply_is_matched_by_ident_and_seq() {
        let mut reply = echo_request(0xbeef, 42);
        reply[0] = 0;
        let mut pkt = ip_header([203, 0, 113, 1], [198, 51, 100, 2], 1, reply.len());
        pkt.extend_from_slice(&reply);
        assert_eq!(
            parse_raw(&pkt),
            Some(Reply::Echo {
                from: Ipv4Addr::new(203, 0, 113, 1),
                ident: 0xbeef,
                seq: 42
            })
        );
        // A request seen on the socket (ours or someone's) is no reply.
        let mut req = ip_header([1, 1, 1, 1], [2, 2, 2, 2], 1, 16);
        req.extend_from_slice(&echo_request(1, 1));
        assert_eq!(parse_raw(&req), None);
        assert_eq!(parse_raw(&[0x45, 0]), None);
    }

    #[test]
    fn unreachable_names_the_quoted_request() {
        let req = echo_request(0xbeef, 9);
        let mut quoted = ip_header([198, 51, 100, 2], [203, 0, 113, 9], 1, req.len());
        quoted.extend_from_slice(&req[..8]);
        let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted);
        let mut pkt = ip_header([198, 51, 100, 1], [198, 51, 100, 2], 1, icmp.len());
        pkt.extend_from_slice(&icmp);
        let Some(Reply::Error {
            to,
            ident,
            seq,
            reason,
            ..
        }) = parse_raw(&pkt)
        else {
            panic!("not parsed")
        };
        assert_eq!((to, ident, seq), (Ipv4Addr::new(203, 0, 113, 9), 0xbeef, 9));
        assert_eq!(reason, "host unreachable from 198.51.100.1");
    }
}
