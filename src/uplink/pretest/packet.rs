//! An AF_PACKET socket on one device for one ethertype: what the pre-tests (PPPoE discovery,
//! DHCP DISCOVER, ARP) and the lab's PPPoE responder send and receive whole Ethernet frames
//! on. It needs no address on the device and bypasses routing and the firewall, so it never
//! touches the active uplink's configuration.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use crate::sys::clock::{Clock, SystemClock};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Ethertype of PPPoE discovery.
pub(crate) const ETH_P_PPP_DISC: u16 = 0x8863;
/// Ethertype of IPv4.
pub(crate) const ETH_P_IP: u16 = 0x0800;
/// Ethertype of ARP.
pub(crate) const ETH_P_ARP: u16 = 0x0806;
/// The broadcast MAC.
pub(crate) const BROADCAST: [u8; 6] = [0xff; 6];

/// A bound packet socket.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    sock: Socket,
    mac: [u8; 6],
    device: String,
}

/// `sockaddr_ll` for `ifindex` and `ethertype`.
#[allow(unsafe_code)]
fn link_addr(ifindex: u32, ethertype: u16) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("ifindex out of range"))?;
    let ll = nix::libc::sockaddr_ll {
        sll_family: nix::libc::AF_PACKET as u16,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `try_init` hands us a zeroed `sockaddr_storage`, which is larger than and
    // suitably aligned for `sockaddr_ll`; we write one complete `sockaddr_ll` into it and set
    // the length to exactly its size, so every byte `SockAddr` will read is initialised.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            storage.cast::<nix::libc::sockaddr_ll>().write(ll);
            *len = std::mem::size_of::<nix::libc::sockaddr_ll>() as nix::libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// The MAC of `device` (from getifaddrs, i.e. netlink in the caller's network namespace;
/// sysfs would show the namespace it was mounted in).
fn hardware_address(device: &str) -> Option<[u8; 6]> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        if ifa.interface_name != device {
            return None;
        }
        ifa.address?.as_link_addr()?.addr()
    })
}

impl PacketSocket {
    /// Opens a raw packet socket on `device` receiving frames of `ethertype`.
    pub fn open(device: &str, ethertype: u16) -> io::Result<PacketSocket> {
        let ifindex = nix::net::if_::if_nametoindex(device)
            .map_err(|e| io::Error::other(format!("no interface {device}: {e}")))?;
        let sock = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(ethertype.to_be()))),
        )?;
        sock.bind(&link_addr(ifindex, ethertype)?)?;
        sock.set_nonblocking(true)?;
        let mac = hardware_address(device)
            .ok_or_else(|| io::Error::other(format!("{device} has no hardware address")))?;
        let s = PacketSocket {
            sock,
            mac,
            device: device.to_string(),
        };
        // Frames of other devices may have queued between socket() and bind(): drop them.
        let mut buf = [0u8; 2048];
        while s.try_recv(&mut buf).is_some() {}
        Ok(s)
    }

    /// The device's MAC address.
    pub(crate) fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The device name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Sends one complete Ethernet frame.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }

    fn try_recv(&self, buf: &mut [u8]) -> Option<usize> {
        nix::sys::socket::recv(
            self.sock.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::empty(),
        )
        .ok()
    }

    /// Receives frames until `accept` returns `Some` or `deadline` passes (`None`).
    pub(crate) fn recv_until<T>(
        &self,
        deadline: Instant,
        mut accept: impl FnMut(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(n) = self.try_recv(&mut buf) {
                if let Some(t) = accept(&buf[..n]) {
                    return Some(t);
                }
            }
            let now = SystemClock.now();
            if now >= deadline {
                return None;
            }
            let ms =
                i32::try_from((deadline - now).as_millis().saturating_add(1)).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            let t = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            match nix::poll::poll(&mut fds, t) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return None,
            }
        }
    }
}

/// An Ethernet header followed by `payload`.
pub(crate) fn ether_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len().max(46));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0); // minimum Ethernet frame; parsers use the inner lengths
    }
    f
}

/// A MAC address.
pub(crate) type Mac = [u8; 6];

/// Splits a frame into (destination, source, ethertype, payload).
pub(crate) fn split_frame(f: &[u8]) -> Option<(Mac, Mac, u16, &[u8])> {
    if f.len() < 14 {
        return None;
    }
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&f[0..6]);
    src.copy_from_slice(&f[6..12]);
    Some((dst, src, u16::from_be_bytes([f[12], f[13]]), &f[14..]))
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
