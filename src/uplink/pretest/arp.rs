//! The STATIC pre-test: who-has GATEWAY on the device; a reply proves the line and the
//! gateway are there. The request carries the profile's own address as sender (what the
//! gateway will see once the profile is active anyway); 0.0.0.0 when unknown (an RFC 5227
//! probe, which some routers ignore).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::packet::{BROADCAST, ETH_P_ARP, PacketSocket, ether_frame, fmt_mac, split_frame};
use crate::sys::clock::{Clock, SystemClock};

/// An ARP request (payload after the Ethernet header).
pub fn request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1];
    p.extend_from_slice(&mac);
    p.extend_from_slice(&sender.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target.octets());
    p
}

/// The sender MAC of an ARP reply from `ip`.
pub(crate) fn reply_from(payload: &[u8], ip: Ipv4Addr) -> Option<[u8; 6]> {
    if payload.len() < 28 || payload[..8] != [0, 1, 8, 0, 6, 4, 0, 2] {
        return None;
    }
    if payload[14..18] != ip.octets() {
        return None;
    }
    let mut m = [0u8; 6];
    m.copy_from_slice(&payload[8..14]);
    Some(m)
}

/// Asks for `gateway` on `device` (again every 300 ms) until a reply or `timeout`.
/// Returns the gateway's MAC as text.
pub fn pretest(
    device: &str,
    sender: Option<Ipv4Addr>,
    gateway: Ipv4Addr,
    timeout: Duration,
) -> Result<String, String> {
    let sock = PacketSocket::open(device, ETH_P_ARP).map_err(|e| format!("{device}: {e}"))?;
    let frame = ether_frame(
        BROADCAST,
        sock.mac(),
        ETH_P_ARP,
        &request(sock.mac(), sender.unwrap_or(Ipv4Addr::UNSPECIFIED), gateway),
    );
    let end = SystemClock.now() + timeout;
    while SystemClock.now() < end {
        sock.send(&frame)
            .map_err(|e| format!("cannot send ARP request on {device}: {e}"))?;
        let until = (SystemClock.now() + Duration::from_millis(300)).min(end);
        let got = sock.recv_until(until, |f| {
            let (_, _, ty, payload) = split_frame(f)?;
            if ty != ETH_P_ARP {
                return None;
            }
            reply_from(payload, gateway)
        });
        if let Some(mac) = got {
            return Ok(fmt_mac(&mac));
        }
    }
    Err(format!(
        "no ARP reply from gateway {gateway} on {device} within {} ms",
        timeout.as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_reply() {
        let mac = [2, 0, 0, 0, 0, 1];
        let gw = Ipv4Addr::new(192, 0, 2, 1);
        let req = request(mac, Ipv4Addr::new(192, 0, 2, 10), gw);
        assert_eq!(req.len(), 28);
        assert_eq!(reply_from(&req, gw), None, "a request is no reply");
        let mut rep = req.clone();
        rep[7] = 2;
        rep[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        rep[14..18].copy_from_slice(&gw.octets());
        assert_eq!(reply_from(&rep, gw), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(reply_from(&rep, Ipv4Addr::new(192, 0, 2, 9)), None);
    }
}
