//! The DNS probe's wire format: a query for a fresh random name under a zone, and the check
//! that a response proves the query went beyond the resolver.
//!
//! # What a DNS answer can prove (issue 13)
//!
//! The uplink's resolver sits on the ISP's side of the path we want to measure. A fixed name
//! (`ipfire.org`) is answered from the resolver's cache for as long as the record lives, an
//! hour and more after the ISP's transit died, so such an answer proves nothing about the
//! path. The probe therefore asks, every time, a name no cache can hold: a fresh random
//! label under the zone `FAILOVER_CHECK_DNS_NAME` (`c<16 hex digits>.ipfire.org`), and only
//! an answer that the zone's authoritative servers alone can give counts ([`proves_path`]):
//!
//! * **NXDOMAIN (or NODATA) with the zone's SOA in the authority section**: the resolver
//!   had to ask the authority, because no cache holds the random name (RFC 2308 negative
//!   caching is per name, and the name is new). The SOA must be the zone's own: the zone
//!   must exist and be a zone apex (like `ipfire.org`), because a resolver that cached an
//!   NXDOMAIN for a name may deny everything below it from its cache (an NXDOMAIN cut,
//!   RFC 8020), and the SOA of a parent zone is what such a denial carries. NODATA is what
//!   zones with compact denial of existence (RFC 9824, e.g. Cloudflare's) answer for a name
//!   that does not exist.
//! * **An address for the random name** is a DNS-hijacking captive portal or an ISP that
//!   rewrites NXDOMAIN into its own address (they answer every name, random ones included,
//!   with their own address), or a wildcard in the zone: in each case not proof. The zone
//!   must have no wildcard.
//! * **NSEC records spanning other names** in the authority section: a validating resolver
//!   may have synthesized the NXDOMAIN from NSEC records it cached earlier, without asking
//!   anyone (aggressive use of DNSSEC-validated cache, RFC 8198; on by default in Unbound
//!   and BIND). The query sets the DO bit so that these records are shown, and such a
//!   denial is not proof. An NSEC owned by the random name itself (compact denial, signed
//!   online for this very query) cannot come from a cache and is fine. NSEC3 denials are
//!   accepted: most resolvers synthesize from NSEC only (Knot Resolver also from NSEC3).
//!   A zone signed with plain NSEC therefore never proves anything: pick an unsigned,
//!   NSEC3 or compact-denial zone (ipfire.org is the default; `connectd check` shows
//!   which rule a server's answer broke).
//! * **SERVFAIL, REFUSED, any other RCODE, a truncated or malformed response, or an
//!   answer to another question**: not proof. SERVFAIL is what a resolver on the gateway
//!   answers when everything beyond it is black-holed. A resolver that does not speak EDNS
//!   answers FORMERR (`RCODE 1`): rare since the DNS flag day of 2019, and with DNS only
//!   corroborating it costs nothing but the corroboration.
//!
//! Even a proven answer only shows that the resolver reached the zone's authority (the
//! resolver's path, which may differ from ours), so DNS only corroborates the ICMP and TCP
//! targets in the vote (see the monitor).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Record types read here.
const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_OPT: u16 = 41;
const TYPE_NSEC: u16 = 47;

/// The EDNS UDP payload size we announce (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// A fresh random name under `zone`: `c` and 16 hex digits. Random from the process's
/// hash keys (seeded from the OS) and a counter, so it repeats neither within a process
/// nor across restarts.
pub(crate) fn random_name(zone: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r = std::collections::hash_map::RandomState::new().hash_one(n);
    format!("c{r:016x}.{}", zone.trim_end_matches('.'))
}

/// A recursive query for `name`, type A, class IN, with transaction `id`, and an EDNS OPT
/// record with the DO bit so that a resolver shows the NSEC records of a denial.
pub(crate) fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.len() + 2 + 4 + 11);
    q.extend_from_slice(&id.to_be_bytes());
    // RD; one question, one additional record (OPT).
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    // OPT: root owner, type 41, class = payload size, TTL = ext-rcode 0, version 0, DO.
    q.push(0);
    q.extend_from_slice(&TYPE_OPT.to_be_bytes());
    q.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
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

/// One resource record of a response: owner (lower case, no trailing dot) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    owner: String,
    rtype: u16,
    rdata: Vec<u8>,
}

/// The parts of a response the check reads.
#[derive(Debug)]
struct Response {
    rcode: u8,
    truncated: bool,
    question: Option<(String, u16)>,
    answers: Vec<Record>,
    authority: Vec<Record>,
}

/// Reads a (possibly compressed) name at `pos`; returns it and the position after it.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut after = None;
    let mut jumps = 0;
    let mut len = 0usize;
    loop {
        let b = *msg.get(pos)?;
        match b & 0xc0 {
            0xc0 => {
                let ptr = usize::from(u16::from_be_bytes([b & 0x3f, *msg.get(pos + 1)?]));
                after.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > 64 || ptr >= msg.len() {
                    return None;
                }
                pos = ptr;
            }
            0x00 if b == 0 => {
                let end = after.unwrap_or(pos + 1);
                return Some((labels.join("."), end));
            }
            0x00 => {
                let l = usize::from(b);
                let label = msg.get(pos + 1..pos + 1 + l)?;
                len += l + 1;
                if len > 255 {
                    return None;
                }
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                pos += 1 + l;
            }
            _ => return None, // extended label types: not used
        }
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]))
}

fn read_records(msg: &[u8], mut pos: usize, count: u16) -> Option<(Vec<Record>, usize)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let (owner, p) = read_name(msg, pos)?;
        let rtype = u16_at(msg, p)?;
        let rdlen = usize::from(u16_at(msg, p + 8)?);
        let rdata = msg.get(p + 10..p + 10 + rdlen)?.to_vec();
        out.push(Record {
            owner,
            rtype,
            rdata,
        });
        pos = p + 10 + rdlen;
    }
    Some((out, pos))
}

fn parse(msg: &[u8]) -> Option<Response> {
    response_id(msg)?;
    let count = |i: usize| u16_at(msg, 4 + 2 * i);
    let (qd, an, ns) = (count(0)?, count(1)?, count(2)?);
    let mut pos = 12;
    let mut question = None;
    for k in 0..qd {
        let (name, p) = read_name(msg, pos)?;
        let qtype = u16_at(msg, p)?;
        u16_at(msg, p + 2)?;
        if k == 0 {
            question = Some((name, qtype));
        }
        pos = p + 4;
    }
    let (answers, pos) = read_records(msg, pos, an)?;
    let (authority, _) = read_records(msg, pos, ns)?;
    Some(Response {
        rcode: msg[3] & 0x0f,
        truncated: msg[2] & 0x02 != 0,
        question,
        answers,
        authority,
    })
}

/// Whether the response `msg` to our query for the random `qname` (under `zone`) proves
/// that the query went beyond the resolver, to the zone's authority (the rules are in the
/// module documentation). `Err` says which rule the answer broke.
pub(crate) fn proves_path(msg: &[u8], qname: &str, zone: &str) -> Result<(), String> {
    let qname = qname.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let r = parse(msg).ok_or("malformed response")?;
    match r.rcode {
        0 | 3 => {}
        2 => return Err("SERVFAIL".into()),
        5 => return Err("REFUSED".into()),
        n => return Err(format!("RCODE {n}")),
    }
    if r.truncated {
        return Err("truncated response".into());
    }
    match &r.question {
        Some((name, TYPE_A)) if *name == qname => {}
        _ => return Err("answer to another question".into()),
    }
    if let Some(rr) = r.answers.first() {
        let what = match (rr.rtype, rr.rdata.as_slice()) {
            (TYPE_A, &[a, b, c, d]) => format!("address {a}.{b}.{c}.{d}"),
            (t, _) => format!("a record of type {t}"),
        };
        return Err(format!(
            "a random name was answered with {what}: a DNS-hijacking captive portal or \
             resolver (or a wildcard in {zone})"
        ));
    }
    let rc = if r.rcode == 3 { "NXDOMAIN" } else { "NODATA" };
    match r.authority.iter().find(|rr| rr.rtype == TYPE_SOA) {
        None => {
            return Err(format!(
                "{rc} without an SOA: not an answer from the authority of {zone}"
            ));
        }
        Some(soa) if soa.owner != zone => {
            return Err(format!(
                "{rc} with the SOA of {}, not of {zone}: FAILOVER_CHECK_DNS_NAME must be a \
                 zone that exists (below a name that does not, a cache may deny everything, \
                 RFC 8020)",
                if soa.owner.is_empty() {
                    "."
                } else {
                    &soa.owner
                }
            ));
        }
        Some(_) => {}
    }
    if let Some(nsec) = r
        .authority
        .iter()
        .find(|rr| rr.rtype == TYPE_NSEC && rr.owner != qname)
    {
        return Err(format!(
            "denied by the NSEC record of {}: a validating resolver can synthesize that \
             from its cache (RFC 8198); use an unsigned or NSEC3-signed zone",
            nsec.owner
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A response builder for the tests: the answer to `query(id, qname)`.
    pub(crate) struct Reply {
        msg: Vec<u8>,
        an: u16,
        ns: u16,
    }

    fn name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    impl Reply {
        /// The header and question of a reply to `qname` with `rcode`.
        pub(crate) fn new(id: u16, qname: &str, rcode: u8) -> Reply {
            let mut msg = id.to_be_bytes().to_vec();
            msg.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0]);
            msg.extend_from_slice(&name(qname));
            msg.extend_from_slice(&[0, 1, 0, 1]);
            Reply { msg, an: 0, ns: 0 }
        }

        fn rr(mut self, owner: &[u8], rtype: u16, rdata: &[u8], authority: bool) -> Reply {
            self.msg.extend_from_slice(owner);
            self.msg.extend_from_slice(&rtype.to_be_bytes());
            self.msg.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
            self.msg
                .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            self.msg.extend_from_slice(rdata);
            if authority {
                self.ns += 1;
            } else {
                assert_eq!(self.ns, 0, "answers before authority");
                self.an += 1;
            }
            self
        }

        /// An A record for the question's name (a compression pointer to it).
        pub(crate) fn a(self, addr: [u8; 4]) -> Reply {
            self.rr(&[0xc0, 12], TYPE_A, &addr, false)
        }

        /// An SOA record owned by `zone` in the authority section.
        pub(crate) fn soa(self, zone: &str) -> Reply {
            let mut rdata = name(&format!("ns.{zone}"));
            rdata.extend_from_slice(&name(&format!("hostmaster.{zone}")));
            rdata.extend_from_slice(&[0; 20]);
            self.rr(&name(zone), TYPE_SOA, &rdata, true)
        }

        /// An NSEC record owned by `owner` in the authority section.
        pub(crate) fn nsec(self, owner: &str, next: &str) -> Reply {
            let mut rdata = name(next);
            rdata.extend_from_slice(&[0, 1, 0x40]);
            self.rr(&name(owner), TYPE_NSEC, &rdata, true)
        }

        pub(crate) fn bytes(mut self) -> Vec<u8> {
            self.msg[6..8].copy_from_slice(&self.an.to_be_bytes());
            self.msg[8..10].copy_from_slice(&self.ns.to_be_bytes());
            self.msg
        }
    }

    const Q: &str = "c0123456789abcdef.ipfire.org";
    const ZONE: &str = "ipfire.org";

    #[test]
    fn query_is_well_formed_with_edns_do() {
        let q = query(0xabcd, "ipfire.org");
        assert_eq!(&q[..4], &[0xab, 0xcd, 0x01, 0x00]);
        assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&q[12..28], b"\x06ipfire\x03org\x00\x00\x01\x00\x01");
        assert_eq!(&q[28..], &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(response_id(&q), None, "a query is no response");
    }

    #[test]
    fn random_names_are_fresh_labels_under_the_zone() {
        let a = random_name("ipfire.org.");
        let b = random_name("ipfire.org");
        assert_ne!(a, b);
        for n in [&a, &b] {
            let (label, zone) = n.split_once('.').unwrap();
            assert_eq!(zone, "ipfire.org");
            assert_eq!(label.len(), 17, "{n}");
            assert!(label.starts_with('c') && label[1..].chars().all(|c| c.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn nxdomain_with_the_zones_soa_proves_the_path() {
        let r = Reply::new(7, Q, 3).soa(ZONE).bytes();
        assert_eq!(response_id(&r), Some(7));
        assert_eq!(proves_path(&r, Q, ZONE), Ok(()));
        // Case does not matter (0x20 randomising resolvers), nor a trailing dot.
        assert_eq!(
            proves_path(&r, &Q.to_ascii_uppercase(), "IPFire.org."),
            Ok(())
        );
    }

    #[test]
    fn nodata_with_the_soa_is_compact_denial_and_proves_the_path() {
        // RFC 9824: NOERROR, no answer, SOA and an NSEC owned by the name itself, signed
        // online for this query: no cache can have it.
        let r = Reply::new(7, Q, 0).soa(ZONE).nsec(Q, &format!("\\000.{Q}"));
        assert_eq!(proves_path(&r.bytes(), Q, ZONE), Ok(()));
    }

    #[test]
    fn the_isp_resolvers_warm_cache_cannot_answer_a_random_name() {
        // What the cache holds: ipfire.org's address. The answer to another name (a
        // resolver answering the cached name, or a stale reply to an earlier query) is no
        // answer to ours.
        let r = Reply::new(7, "ipfire.org", 0).a([203, 0, 113, 80]).bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert_eq!(e, "answer to another question");
    }

    #[test]
    fn a_hijacking_captive_portal_answering_every_name_is_not_proof() {
        let r = Reply::new(7, Q, 0).a([192, 0, 2, 1]).bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(
            e.contains("address 192.0.2.1") && e.contains("captive portal"),
            "{e}"
        );
    }

    #[test]
    fn a_denial_without_the_zones_soa_is_not_from_its_authority() {
        // A portal or a broken middlebox answering NXDOMAIN on its own.
        let r = Reply::new(7, Q, 3).bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(e.contains("NXDOMAIN without an SOA"), "{e}");
        let r = Reply::new(7, Q, 0).bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(e.contains("NODATA without an SOA"), "{e}");
        // Another zone's SOA.
        let r = Reply::new(7, Q, 3).soa("portal.example").bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(
            e.contains("the SOA of portal.example, not of ipfire.org"),
            "{e}"
        );
    }

    #[test]
    fn negative_caching_cannot_answer_a_fresh_name_but_an_nxdomain_cut_could() {
        // RFC 2308 caches a denial per name: the random label is new at every query, so a
        // correct denial comes from the authority. Below a name that does not exist, a
        // resolver may deny everything from one cached NXDOMAIN (RFC 8020); such a denial
        // carries the parent zone's SOA, so the zone must be an apex that exists.
        let q = "c0123456789abcdef.nosuch.ipfire.org";
        let r = Reply::new(7, q, 3).soa("ipfire.org").bytes();
        let e = proves_path(&r, q, "nosuch.ipfire.org").unwrap_err();
        assert!(e.contains("RFC 8020"), "{e}");
        let r = Reply::new(7, Q, 3).soa("org").bytes();
        assert!(proves_path(&r, Q, ZONE).is_err());
        let r = Reply::new(7, Q, 3).soa("").bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(e.contains("the SOA of ., not"), "{e}");
    }

    #[test]
    fn an_nsec_denial_a_resolver_could_synthesize_is_not_proof() {
        // RFC 8198: a validating resolver that cached the NSEC spanning blog..www answers
        // every random name between them without asking.
        let r = Reply::new(7, Q, 3)
            .soa(ZONE)
            .nsec("blog.ipfire.org", "www.ipfire.org")
            .bytes();
        let e = proves_path(&r, Q, ZONE).unwrap_err();
        assert!(
            e.contains("NSEC record of blog.ipfire.org") && e.contains("RFC 8198"),
            "{e}"
        );
    }

    #[test]
    fn any_bytes_are_judged_without_panicking() {
        // Every truncation and every single-byte change of a valid denial: a result, never
        // a panic (the parser reads untrusted datagrams).
        let r = Reply::new(7, Q, 3).soa(ZONE).nsec(Q, "\\000.x").bytes();
        for cut in 0..r.len() {
            let _ = proves_path(&r[..cut], Q, ZONE);
        }
        for i in 0..r.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0x80, 0xc0, 0xff] {
                let mut m = r.clone();
                m[i] = v;
                let _ = proves_path(&m, Q, ZONE);
            }
        }
    }

    #[test]
    fn servfail_refused_and_broken_responses_are_not_proof() {
        for (rcode, want) in [(2, "SERVFAIL"), (5, "REFUSED"), (1, "RCODE 1")] {
            let r = Reply::new(7, Q, rcode).soa(ZONE).bytes();
            assert_eq!(proves_path(&r, Q, ZONE), Err(want.to_string()));
        }
        let mut r = Reply::new(7, Q, 3).soa(ZONE).bytes();
        r[2] |= 0x02;
        assert_eq!(
            proves_path(&r, Q, ZONE),
            Err("truncated response".to_string())
        );
        let r = Reply::new(7, Q, 3).soa(ZONE).bytes();
        for cut in [5, 13, 30, r.len() - 1] {
            assert_eq!(
                proves_path(&r[..cut], Q, ZONE),
                Err("malformed response".to_string()),
                "cut at {cut}"
            );
        }
        // A compression loop.
        let mut r = Reply::new(7, Q, 0).bytes();
        r[6..8].copy_from_slice(&[0, 1]);
        r.extend_from_slice(&[0xc0, r.len() as u8]);
        assert_eq!(
            proves_path(&r, Q, ZONE),
            Err("malformed response".to_string())
        );
    }
}
