//! The DHCP pre-test: one DISCOVER, broadcast on a packet socket, and the OFFERs it draws.
//! Never a REQUEST, so no server commits a lease; nothing is configured on the device and
//! no process is started (dhcpcd 9's `--test` leaves its privilege-separation proxy behind).
//!
//! The failback proof (`uplink/proof.rs`) goes one step further with [`lease`]: DISCOVER,
//! OFFER, REQUEST, ACK (RFC 2131 4.4.1), and [`release`] gives the address back when the
//! proof ends, so that IPFire's dhcpcd gets it again at the switch. Nothing but the
//! address is taken from the lease: no route, no resolver, no hook.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::packet::{BROADCAST, ETH_P_IP, Mac, PacketSocket, ether_frame, split_frame};
use crate::sys::clock::{Clock, SystemClock};
use crate::uplink::health::inet_checksum;

const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// What an OFFER said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The offered address.
    pub yiaddr: Ipv4Addr,
    /// Option 3, the first router.
    pub router: Option<Ipv4Addr>,
    /// Option 54, the server.
    pub server: Option<Ipv4Addr>,
}

/// A DHCPDISCOVER (BOOTP payload) from `mac` with transaction `xid`, asking for a broadcast
/// reply (we have no address to receive a unicast one on).
pub(crate) fn discover_payload(mac: [u8; 6], xid: u32) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6;
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[10] = 0x80; // broadcast flag
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&[53, 1, 1]); // DHCPDISCOVER
    b.extend_from_slice(&[55, 4, 1, 3, 6, 54]); // ask for netmask, router, DNS, server id
    b.push(255);
    b.resize(300, 0);
    b
}

/// IPv4 + UDP headers around `payload`, 0.0.0.0:68 → 255.255.255.255:67.
fn udp_broadcast(payload: &[u8]) -> Vec<u8> {
    udp_packet(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, payload)
}

/// IPv4 + UDP headers around `payload`, SRC:68 → DST:67.
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u16;
    let total = 20 + udp_len;
    let mut ip = vec![0x45, 0x10];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&68u16.to_be_bytes());
    ip.extend_from_slice(&67u16.to_be_bytes());
    ip.extend_from_slice(&udp_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]); // UDP checksum optional over IPv4
    ip.extend_from_slice(payload);
    ip
}

fn ip4(b: &[u8]) -> Option<Ipv4Addr> {
    let s = b.get(..4)?;
    Some(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
}

/// What a server's reply (OFFER, ACK, NAK) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) msg_type: u8,
    pub(crate) yiaddr: Ipv4Addr,
    pub(crate) router: Option<Ipv4Addr>,
    pub(crate) server: Option<Ipv4Addr>,
    pub(crate) netmask: Option<Ipv4Addr>,
    pub(crate) lease_secs: Option<u32>,
}

/// Parses a BOOTP payload: an OFFER for `mac` and `xid`.
pub(crate) fn parse_offer(b: &[u8], mac: [u8; 6], xid: u32) -> Option<Offer> {
    let r = parse_reply(b, mac, xid)?;
    (r.msg_type == 2).then_some(Offer {
        yiaddr: r.yiaddr,
        router: r.router,
        server: r.server,
    })
}

/// Parses a BOOTP payload: a server's reply for `mac` and `xid`.
pub(crate) fn parse_reply(b: &[u8], mac: [u8; 6], xid: u32) -> Option<Reply> {
    if b.len() < 240 || b[0] != 2 || b.get(4..8)? != xid.to_be_bytes() || b[28..34] != mac {
        return None;
    }
    if b[236..240] != MAGIC {
        return None;
    }
    let mut msg_type = None;
    let (mut router, mut server, mut netmask, mut lease_secs) = (None, None, None, None);
    let mut at = 240;
    while at < b.len() {
        let code = b[at];
        if code == 255 {
            break;
        }
        if code == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(*b.get(at + 1)?);
        let v = b.get(at + 2..at + 2 + len)?;
        match code {
            53 => msg_type = v.first().copied(),
            1 => netmask = ip4(v),
            3 => router = ip4(v),
            51 => lease_secs = ip4(v).map(u32::from),
            54 => server = ip4(v),
            _ => {}
        }
        at += 2 + len;
    }
    Some(Reply {
        msg_type: msg_type?,
        yiaddr: ip4(&b[16..20]).unwrap_or(Ipv4Addr::UNSPECIFIED),
        router,
        server,
        netmask,
        lease_secs,
    })
}

/// Parses an Ethernet frame: a DHCP OFFER to UDP port 68 for `mac` and `xid`.
fn offer_in_frame(f: &[u8], mac: [u8; 6], xid: u32) -> Option<Offer> {
    parse_offer(bootp_in_frame(f)?.1, mac, xid)
}

/// The sender's MAC and the BOOTP payload of a frame to UDP port 68.
fn bootp_in_frame(f: &[u8]) -> Option<(Mac, &[u8])> {
    let (_, src, ty, ip) = split_frame(f)?;
    if ty != ETH_P_IP {
        return None;
    }
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if *ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    if udp.get(2..4)? != 68u16.to_be_bytes() {
        return None;
    }
    Some((src, udp.get(8..)?))
}

/// A DHCP message from `mac` (BOOTREQUEST) of type `msg` with `ciaddr` and options.
fn request_payload(mac: Mac, xid: u32, msg: u8, ciaddr: Ipv4Addr, opts: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 236];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    if ciaddr.is_unspecified() {
        b[10] = 0x80; // broadcast reply: no address to receive a unicast one on yet
    }
    b[12..16].copy_from_slice(&ciaddr.octets());
    b[28..34].copy_from_slice(&mac);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&[53, 1, msg]);
    b.extend_from_slice(opts);
    b.push(255);
    if b.len() < 300 {
        b.resize(300, 0);
    }
    b
}

/// A lease taken for the failback proof ([`lease`]); give it back with [`release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub address: Ipv4Addr,
    /// Option 1 (a /32 when absent).
    pub netmask: Option<Ipv4Addr>,
    /// Option 3, the first router.
    pub router: Ipv4Addr,
    /// Option 54, the server.
    pub server: Ipv4Addr,
    /// The server's (or relay's) MAC: where the RELEASE goes.
    pub server_mac: [u8; 6],
    /// Option 51, seconds.
    pub lease_secs: Option<u32>,
    mac: [u8; 6],
}

/// DISCOVER, OFFER (with a router), REQUEST, ACK on `device` within `timeout`.
pub fn lease(device: &str, timeout: Duration) -> Result<Lease, String> {
    let sock = PacketSocket::open(device, ETH_P_IP).map_err(|e| format!("{device}: {e}"))?;
    let mac = sock.mac();
    let xid = (u32::from(crate::uplink::health::probe_seed()) << 16)
        ^ std::process::id().rotate_left(11)
        ^ u32::from(mac[4]);
    let end = SystemClock.now() + timeout;
    let discover = ether_frame(
        BROADCAST,
        mac,
        ETH_P_IP,
        &udp_broadcast(&discover_payload(mac, xid)),
    );
    let mut offer = None;
    while offer.is_none() && SystemClock.now() < end {
        sock.send(&discover)
            .map_err(|e| format!("cannot send DHCPDISCOVER on {device}: {e}"))?;
        let until = (SystemClock.now() + Duration::from_secs(2)).min(end);
        offer = sock.recv_until(until, |f| {
            let r = parse_reply(bootp_in_frame(f)?.1, mac, xid)?;
            (r.msg_type == 2 && r.router.is_some() && r.server.is_some()).then_some(r)
        });
    }
    let Some(o) = offer else {
        return Err(format!(
            "no DHCP offer with a router on {device} within {} ms",
            timeout.as_millis()
        ));
    };
    let (yiaddr, server) = (o.yiaddr, o.server.unwrap_or(Ipv4Addr::UNSPECIFIED));
    let mut opts = vec![50, 4];
    opts.extend_from_slice(&yiaddr.octets());
    opts.extend_from_slice(&[54, 4]);
    opts.extend_from_slice(&server.octets());
    opts.extend_from_slice(&[55, 4, 1, 3, 6, 51]);
    let request = ether_frame(
        BROADCAST,
        mac,
        ETH_P_IP,
        &udp_broadcast(&request_payload(mac, xid, 3, Ipv4Addr::UNSPECIFIED, &opts)),
    );
    while SystemClock.now() < end {
        sock.send(&request)
            .map_err(|e| format!("cannot send DHCPREQUEST on {device}: {e}"))?;
        let until = (SystemClock.now() + Duration::from_secs(2)).min(end);
        let got = sock.recv_until(until, |f| {
            let (src, b) = bootp_in_frame(f)?;
            let r = parse_reply(b, mac, xid)?;
            matches!(r.msg_type, 5 | 6).then_some((src, r))
        });
        match got {
            Some((_, r)) if r.msg_type == 6 => {
                return Err(format!("the DHCP server {server} refused {yiaddr} (NAK)"));
            }
            Some((src, r)) => {
                return Ok(Lease {
                    address: r.yiaddr,
                    netmask: r.netmask.or(o.netmask),
                    router: r.router.or(o.router).unwrap_or(server),
                    server: r.server.unwrap_or(server),
                    server_mac: src,
                    lease_secs: r.lease_secs.or(o.lease_secs),
                    mac,
                });
            }
            None => {}
        }
    }
    Err(format!(
        "no DHCPACK for {yiaddr} from {server} on {device} within {} ms",
        timeout.as_millis()
    ))
}

/// DHCPRELEASE of `l` on `device` (unicast to the server, RFC 2131 4.4.6; no answer).
pub fn release(device: &str, l: &Lease) -> Result<(), String> {
    let sock = PacketSocket::open(device, ETH_P_IP).map_err(|e| format!("{device}: {e}"))?;
    let xid = u32::from(crate::uplink::health::probe_seed()).rotate_left(9);
    let mut opts = vec![54, 4];
    opts.extend_from_slice(&l.server.octets());
    let payload = request_payload(l.mac, xid, 7, l.address, &opts);
    let frame = ether_frame(
        l.server_mac,
        l.mac,
        ETH_P_IP,
        &udp_packet(l.address, l.server, &payload),
    );
    sock.send(&frame)
        .map_err(|e| format!("cannot send DHCPRELEASE on {device}: {e}"))
}

/// Broadcasts a DISCOVER on `device` (again every 2 s) and waits up to `timeout` for an
/// OFFER that names a router.
pub fn pretest(device: &str, timeout: Duration) -> Result<Offer, String> {
    let sock = PacketSocket::open(device, ETH_P_IP).map_err(|e| format!("{device}: {e}"))?;
    let mac = sock.mac();
    let xid = (u32::from(crate::uplink::health::probe_seed()) << 16)
        ^ std::process::id().rotate_left(7)
        ^ u32::from(mac[5]);
    let frame = ether_frame(
        BROADCAST,
        mac,
        ETH_P_IP,
        &udp_broadcast(&discover_payload(mac, xid)),
    );
    let end = SystemClock.now() + timeout;
    let mut routerless = None;
    while SystemClock.now() < end {
        sock.send(&frame)
            .map_err(|e| format!("cannot send DHCPDISCOVER on {device}: {e}"))?;
        let until = (SystemClock.now() + Duration::from_secs(2)).min(end);
        let got = sock.recv_until(until, |f| {
            let o = offer_in_frame(f, mac, xid)?;
            if o.router.is_some() {
                Some(o)
            } else {
                routerless = Some(o);
                None
            }
        });
        if let Some(o) = got {
            return Ok(o);
        }
    }
    Err(match routerless {
        Some(o) => format!(
            "the DHCP offer of {} on {device} names no router",
            o.server
                .map(|s| s.to_string())
                .unwrap_or_else(|| "a server".into())
        ),
        None => format!(
            "no DHCP offer on {device} within {} ms",
            timeout.as_millis()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_and_offer_parse() {
        let mac = [2, 0, 0, 0, 0, 7];
        let d = discover_payload(mac, 0xdead_beef);
        assert_eq!(d.len(), 300);
        assert_eq!(&d[236..243], &[99, 130, 83, 99, 53, 1, 1]);
        let ip = udp_broadcast(&d);
        assert_eq!(inet_checksum(&ip[..20]), 0);
        // Turn it into an offer.
        let mut o = d.clone();
        o[0] = 2;
        o[16..20].copy_from_slice(&[192, 0, 2, 50]);
        o.truncate(240);
        o.extend_from_slice(&[53, 1, 2, 3, 4, 192, 0, 2, 1, 54, 4, 192, 0, 2, 1, 255]);
        let offer = parse_offer(&o, mac, 0xdead_beef).unwrap();
        assert_eq!(offer.router, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(offer.yiaddr, Ipv4Addr::new(192, 0, 2, 50));
        assert_eq!(parse_offer(&o, mac, 1), None, "other xid");
        assert_eq!(parse_offer(&o, [9; 6], 0xdead_beef), None, "other client");
        assert_eq!(
            parse_offer(&d, mac, 0xdead_beef),
            None,
            "a discover is no offer"
        );
    }
}
