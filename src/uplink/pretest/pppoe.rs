//! PPPoE discovery (RFC 2516): packets, the client side (PADI → PADO, and PADR → PADS for
//! the lab), and a minimal access concentrator for the lab (`examples/lab-pppoe.rs`).
//!
//! The pre-test stops at the PADO: an access concentrator answered on the line, no session
//! is opened, nothing at the ISP or on the box changes.

use std::time::Duration;

use super::packet::{BROADCAST, ETH_P_PPP_DISC, PacketSocket, ether_frame, split_frame};
use crate::sys::clock::{Clock, SystemClock};

/// PPPoE Active Discovery Initiation.
pub const PADI: u8 = 0x09;
/// PPPoE Active Discovery Offer.
pub const PADO: u8 = 0x07;
/// PPPoE Active Discovery Request.
pub const PADR: u8 = 0x19;
/// PPPoE Active Discovery Session-confirmation.
pub(crate) const PADS: u8 = 0x65;
/// PPPoE Active Discovery Terminate.
pub const PADT: u8 = 0xa7;

/// Tag: Service-Name.
pub(crate) const TAG_SERVICE_NAME: u16 = 0x0101;
/// Tag: AC-Name.
pub(crate) const TAG_AC_NAME: u16 = 0x0102;
/// Tag: Host-Uniq.
pub(crate) const TAG_HOST_UNIQ: u16 = 0x0103;
/// Tag: AC-Cookie.
pub(crate) const TAG_AC_COOKIE: u16 = 0x0104;
/// Tag: Service-Name-Error.
pub(crate) const TAG_SERVICE_NAME_ERROR: u16 = 0x0201;

/// A PPPoE discovery packet (the part after the Ethernet header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// PADI, PADO, PADR, PADS or PADT.
    pub code: u8,
    /// Session ID (0 until PADS).
    pub session: u16,
    /// Tags in order.
    pub tags: Vec<(u16, Vec<u8>)>,
}

impl Packet {
    /// A packet with no tags.
    pub fn new(code: u8, session: u16) -> Packet {
        Packet {
            code,
            session,
            tags: Vec::new(),
        }
    }

    /// Adds a tag.
    pub(crate) fn tag(mut self, ty: u16, value: &[u8]) -> Packet {
        self.tags.push((ty, value.to_vec()));
        self
    }

    /// The first tag of type `ty`.
    pub fn get(&self, ty: u16) -> Option<&[u8]> {
        self.tags
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, v)| v.as_slice())
    }

    /// Every tag of type `ty`, as text.
    pub(crate) fn texts(&self, ty: u16) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The wire form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (ty, v) in &self.tags {
            let len = v.len().min(1400);
            body.extend_from_slice(&ty.to_be_bytes());
            body.extend_from_slice(&(len as u16).to_be_bytes());
            body.extend_from_slice(&v[..len]);
        }
        let mut p = vec![0x11, self.code];
        p.extend_from_slice(&self.session.to_be_bytes());
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&body);
        p
    }

    /// Parses the wire form (trailing Ethernet padding ignored).
    pub fn parse(b: &[u8]) -> Option<Packet> {
        if b.len() < 6 || b[0] != 0x11 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
        let body = b.get(6..6 + len)?;
        let mut tags = Vec::new();
        let mut at = 0;
        while at + 4 <= body.len() {
            let ty = u16::from_be_bytes([body[at], body[at + 1]]);
            let l = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
            let v = body.get(at + 4..at + 4 + l)?;
            if ty == 0 {
                break; // End-Of-List
            }
            tags.push((ty, v.to_vec()));
            at += 4 + l;
        }
        Some(Packet {
            code: b[1],
            session: u16::from_be_bytes([b[2], b[3]]),
            tags,
        })
    }

    /// As a whole Ethernet frame.
    pub(crate) fn frame(&self, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        ether_frame(dst, src, ETH_P_PPP_DISC, &self.encode())
    }
}

/// Parses an Ethernet frame carrying PPPoE discovery: (destination, source, packet).
pub(crate) fn parse_frame(f: &[u8]) -> Option<([u8; 6], [u8; 6], Packet)> {
    let (dst, src, ty, payload) = split_frame(f)?;
    if ty != ETH_P_PPP_DISC {
        return None;
    }
    Some((dst, src, Packet::parse(payload)?))
}

/// An access concentrator's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The AC's MAC.
    pub ac_mac: [u8; 6],
    /// AC-Name.
    pub ac_name: String,
    /// Service-Name tags offered.
    pub services: Vec<String>,
    /// AC-Cookie to echo in the PADR.
    pub cookie: Option<Vec<u8>>,
}

fn host_uniq() -> [u8; 4] {
    let s = u32::from(crate::uplink::health::probe_seed());
    (s.rotate_left(13) ^ std::process::id()).to_be_bytes()
}

/// Sends PADI on `device` (resent every 500 ms) until a PADO with our Host-Uniq arrives that
/// matches `service` and `ac_name` when given, or `timeout` passes. Offers that do not
/// match are listed in the error.
pub(crate) fn discover(
    device: &str,
    service: Option<&str>,
    ac_name: Option<&str>,
    timeout: Duration,
) -> Result<Offer, String> {
    let sock = PacketSocket::open(device, ETH_P_PPP_DISC).map_err(|e| format!("{device}: {e}"))?;
    discover_on(&sock, service, ac_name, timeout, &host_uniq())
}

fn discover_on(
    sock: &PacketSocket,
    service: Option<&str>,
    ac_name: Option<&str>,
    timeout: Duration,
    uniq: &[u8],
) -> Result<Offer, String> {
    let padi = Packet::new(PADI, 0)
        .tag(TAG_SERVICE_NAME, service.unwrap_or("").as_bytes())
        .tag(TAG_HOST_UNIQ, uniq)
        .frame(BROADCAST, sock.mac());
    let end = SystemClock.now() + timeout;
    let mut rejected: Vec<String> = Vec::new();
    while SystemClock.now() < end {
        sock.send(&padi)
            .map_err(|e| format!("cannot send PADI on {}: {e}", sock.device()))?;
        let until = (SystemClock.now() + Duration::from_millis(500)).min(end);
        let got = sock.recv_until(until, |f| {
            let (dst, src, p) = parse_frame(f)?;
            if p.code != PADO || dst != sock.mac() || p.get(TAG_HOST_UNIQ) != Some(uniq) {
                return None;
            }
            let offer = Offer {
                ac_mac: src,
                ac_name: p.texts(TAG_AC_NAME).into_iter().next().unwrap_or_default(),
                services: p.texts(TAG_SERVICE_NAME),
                cookie: p.get(TAG_AC_COOKIE).map(<[u8]>::to_vec),
            };
            let name_ok = ac_name.is_none_or_eq(&offer.ac_name);
            let svc_ok = match service {
                None => true,
                Some(s) => offer.services.iter().any(|o| o == s),
            };
            if name_ok && svc_ok {
                Some(offer)
            } else {
                rejected.push(format!(
                    "{} (services {:?})",
                    if offer.ac_name.is_empty() {
                        "unnamed AC".to_string()
                    } else {
                        format!("AC {:?}", offer.ac_name)
                    },
                    offer.services
                ));
                None
            }
        });
        if let Some(o) = got {
            return Ok(o);
        }
    }
    rejected.dedup();
    let wanted = match (service, ac_name) {
        (None, None) => String::new(),
        (s, a) => format!(
            " matching{}{}",
            s.map(|s| format!(" SERVICENAME={s:?}")).unwrap_or_default(),
            a.map(|a| format!(" CONCENTRATORNAME={a:?}"))
                .unwrap_or_default()
        ),
    };
    let mut msg = format!(
        "no PADO{wanted} on {} within {} ms",
        sock.device(),
        timeout.as_millis()
    );
    if !rejected.is_empty() {
        msg.push_str(&format!(
            "; offers that did not match: {}",
            rejected.join(", ")
        ));
    }
    Err(msg)
}

trait OptEq {
    fn is_none_or_eq(&self, v: &str) -> bool;
}

impl OptEq for Option<&str> {
    fn is_none_or_eq(&self, v: &str) -> bool {
        match self {
            None => true,
            Some(x) => *x == v,
        }
    }
}

/// The lab client: discovery, then PADR → PADS. Returns the session ID.
pub fn open_session(device: &str, timeout: Duration) -> Result<u16, String> {
    let sock = PacketSocket::open(device, ETH_P_PPP_DISC).map_err(|e| format!("{device}: {e}"))?;
    let uniq = host_uniq();
    let end = SystemClock.now() + timeout;
    let offer = discover_on(&sock, None, None, timeout, &uniq)?;
    let service = offer.services.first().cloned().unwrap_or_default();
    let mut padr = Packet::new(PADR, 0)
        .tag(TAG_SERVICE_NAME, service.as_bytes())
        .tag(TAG_HOST_UNIQ, &uniq);
    if let Some(c) = &offer.cookie {
        padr = padr.tag(TAG_AC_COOKIE, c);
    }
    let frame = padr.frame(offer.ac_mac, sock.mac());
    while SystemClock.now() < end {
        sock.send(&frame)
            .map_err(|e| format!("cannot send PADR: {e}"))?;
        let until = (SystemClock.now() + Duration::from_millis(500)).min(end);
        let got = sock.recv_until(until, |f| {
            let (dst, src, p) = parse_frame(f)?;
            (p.code == PADS
                && dst == sock.mac()
                && src == offer.ac_mac
                && p.get(TAG_HOST_UNIQ) == Some(&uniq[..]))
            .then_some(p)
        });
        if let Some(p) = got {
            if p.session == 0 || p.get(TAG_SERVICE_NAME_ERROR).is_some() {
                return Err(format!("AC {:?} refused the session", offer.ac_name));
            }
            return Ok(p.session);
        }
    }
    Err(format!(
        "AC {:?} did not confirm a session (no PADS) within {} ms",
        offer.ac_name,
        timeout.as_millis()
    ))
}

/// A minimal access concentrator: answers PADI with PADO and PADR with PADS.
#[derive(Debug)]
pub struct AccessConcentrator {
    sock: PacketSocket,
    /// AC-Name sent in every PADO/PADS.
    pub ac_name: String,
    /// The one service offered; `None`: any requested service (or the empty one) is offered.
    pub service: Option<String>,
    next_session: u16,
}

impl AccessConcentrator {
    /// Listens on `device`.
    pub fn open(
        device: &str,
        ac_name: &str,
        service: Option<&str>,
    ) -> std::io::Result<AccessConcentrator> {
        Ok(AccessConcentrator {
            sock: PacketSocket::open(device, ETH_P_PPP_DISC)?,
            ac_name: ac_name.to_string(),
            service: service.map(String::from),
            next_session: 1,
        })
    }

    /// The reply to one packet from `peer`, if any.
    pub fn answer(&mut self, peer: [u8; 6], p: &Packet) -> Option<Packet> {
        let requested = p
            .get(TAG_SERVICE_NAME)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let offered = match &self.service {
            Some(s) if requested.is_empty() || requested == *s => s.clone(),
            Some(_) => return None, // a service we do not offer: stay silent, as ACs do
            None => requested,
        };
        let code = match p.code {
            PADI => PADO,
            PADR => PADS,
            _ => return None,
        };
        let session = if code == PADS {
            let s = self.next_session;
            self.next_session = self.next_session.checked_add(1).unwrap_or(1);
            s
        } else {
            0
        };
        let mut r = Packet::new(code, session)
            .tag(TAG_SERVICE_NAME, offered.as_bytes())
            .tag(TAG_AC_NAME, self.ac_name.as_bytes());
        if let Some(u) = p.get(TAG_HOST_UNIQ) {
            r = r.tag(TAG_HOST_UNIQ, u);
        }
        if code == PADO {
            r = r.tag(TAG_AC_COOKIE, &peer);
        }
        Some(r)
    }

    /// Answers discovery forever (until the process is killed); `log` gets one line per answer.
    pub fn serve(&mut self, mut log: impl FnMut(&str)) -> ! {
        loop {
            let far = SystemClock.now() + Duration::from_secs(3600);
            let got = self.sock.recv_until(far, |f| {
                let (_, src, p) = parse_frame(f)?;
                Some((src, p))
            });
            let Some((src, p)) = got else { continue };
            if src == self.sock.mac() {
                continue;
            }
            if let Some(r) = self.answer(src, &p) {
                let frame = r.frame(src, self.sock.mac());
                match self.sock.send(&frame) {
                    Ok(()) => log(&format!(
                        "{} to {} session {}",
                        if r.code == PADO { "PADO" } else { "PADS" },
                        super::packet::fmt_mac(&src),
                        r.session
                    )),
                    Err(e) => log(&format!("send failed: {e}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_padding_is_ignored() {
        let p = Packet::new(PADI, 0)
            .tag(TAG_SERVICE_NAME, b"")
            .tag(TAG_HOST_UNIQ, &[1, 2, 3, 4]);
        let mac = [2, 0, 0, 0, 0, 1];
        let f = p.frame(BROADCAST, mac);
        assert_eq!(f.len(), 60, "padded to the Ethernet minimum");
        assert_eq!(&f[12..16], &[0x88, 0x63, 0x11, PADI]);
        let (dst, src, q) = parse_frame(&f).unwrap();
        assert_eq!((dst, src), (BROADCAST, mac));
        assert_eq!(q, p);
        assert!(
            Packet::parse(&[0x11, PADO, 0, 0, 0, 9, 1]).is_none(),
            "truncated"
        );
    }

    #[test]
    fn the_ac_offers_its_service_echoes_host_uniq_and_numbers_sessions() {
        // The AC logic without a socket.
        let mut ac = AccessConcentrator {
            sock: match PacketSocket::open("lo", ETH_P_PPP_DISC) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipped: no packet socket on lo: {e}");
                    return;
                }
            },
            ac_name: "LAB".into(),
            service: Some("inet".into()),
            next_session: 1,
        };
        let peer = [2, 0, 0, 0, 0, 9];
        let padi = Packet::new(PADI, 0)
            .tag(TAG_SERVICE_NAME, b"")
            .tag(TAG_HOST_UNIQ, b"xy");
        let pado = ac.answer(peer, &padi).unwrap();
        assert_eq!(pado.code, PADO);
        assert_eq!(pado.texts(TAG_SERVICE_NAME), vec!["inet"]);
        assert_eq!(pado.texts(TAG_AC_NAME), vec!["LAB"]);
        assert_eq!(pado.get(TAG_HOST_UNIQ), Some(&b"xy"[..]));
        let other = Packet::new(PADI, 0).tag(TAG_SERVICE_NAME, b"iptv");
        assert_eq!(ac.answer(peer, &other), None);
        let padr = Packet::new(PADR, 0).tag(TAG_SERVICE_NAME, b"inet");
        assert_eq!(ac.answer(peer, &padr).unwrap().session, 1);
        assert_eq!(ac.answer(peer, &padr).unwrap().session, 2);
    }
}
