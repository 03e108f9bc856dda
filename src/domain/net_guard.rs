//! The SSRF guard's address rules: which addresses a webhook may not reach,
//! and the networks an enterprise allows anyway.
//!
//! URLs are parsed by the `url` crate, which already reads every IPv4 spelling
//! (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) as the address it means; what
//! is left here is to look through IPv6 forms that carry an IPv4 address
//! (`[::ffff:127.0.0.1]`, NAT64, 6to4, IPv4-compatible) before judging it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an address is refused, or `None` when it is a public one.
pub fn refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => {
            let carried = embedded_v4(v6);
            if carried.is_empty() {
                refusal_v6(v6)
            } else {
                // A translated address reaches what it carries: every IPv4
                // address it may stand for must be public.
                carried.into_iter().find_map(refusal_v4)
            }
        }
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if a == 0 {
        // 0.0.0.0/8: Linux routes 0.0.0.0 to this host.
        Some("unspecified")
    } else if a == 169 && b == 254 {
        if ip == Ipv4Addr::new(169, 254, 169, 254) {
            Some("cloud metadata")
        } else {
            Some("link-local")
        }
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (carrier-grade NAT)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("documentation")
    } else if a >= 224 {
        // Multicast, reserved and broadcast.
        Some("multicast or reserved")
    } else {
        None
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if first & 0xff00 == 0xff00 {
        Some("multicast")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("documentation")
    } else if first == 0x0100 && ip.segments()[1..4] == [0, 0, 0] {
        Some("discard-only")
    } else if ip.segments()[..6] == [0; 6] {
        // ::/96 other than :: and ::1 (handled above) is IPv4-compatible,
        // read by embedded_v4; anything else left in ::/8 is reserved.
        Some("reserved")
    } else {
        None
    }
}

/// The IPv4 addresses an IPv6 form carries, by translation prefix:
/// IPv4-mapped (`::ffff:a.b.c.d`), SIIT (`::ffff:0:a.b.c.d`, RFC 6145),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, and the local-use
/// `64:ff9b:1::/48` of RFC 8215 in both the /96 and the RFC 6052 /48 layouts),
/// 6to4 (`2002::/16`), Teredo (`2001::/32`: the server and the obfuscated
/// client) and ISATAP (`…:0:5efe:a.b.c.d`). Empty for any other address.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let pair = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        vec![v4]
    } else if (s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0)
        || (s[..6] == [0; 6] && !(ip.is_loopback() || ip.is_unspecified()))
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4])
    {
        vec![pair(s[6], s[7])]
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // A /96 inside the local-use prefix carries it in the last 32 bits; the
        // RFC 6052 layout for the /48 itself in bits 48-63 and 72-87. Where
        // both hold bits, both readings are judged.
        let [_, c] = s[4].to_be_bytes();
        let [d, _] = s[5].to_be_bytes();
        let [a, b] = s[3].to_be_bytes();
        let as_96 = pair(s[6], s[7]);
        let as_48 = Ipv4Addr::new(a, b, c, d);
        match (s[3..6] == [0; 3], s[6..] == [0; 2]) {
            (true, _) => vec![as_96],
            (false, true) => vec![as_48],
            (false, false) => vec![as_96, as_48],
        }
    } else if s[0] == 0x2002 {
        vec![pair(s[1], s[2])]
    } else if s[0] == 0x2001 && s[1] == 0 {
        vec![pair(s[2], s[3]), pair(!s[6], !s[7])]
    } else if s[4] & 0xfcff == 0 && s[5] == 0x5efe {
        vec![pair(s[6], s[7])]
    } else {
        Vec::new()
    }
}

/// Addresses no network opens, only the operator naming the exact address:
/// this host (loopback, unspecified) and link-local, where cloud metadata lives.
pub fn needs_exact_allowance(address: IpAddr) -> bool {
    matches!(
        refusal(address),
        Some("loopback" | "unspecified" | "link-local" | "cloud metadata")
    )
}

/// An IP network in CIDR notation (`10.20.0.0/16`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Shortest prefixes an operator may open (a /1 split is "everything").
    pub const MIN_V4_PREFIX: u8 = 8;
    pub const MIN_V6_PREFIX: u8 = 16;

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether the network is too broad for an allow-list (e.g. `0.0.0.0/1`,
    /// `::/1`): a split of "every address".
    pub fn is_too_broad(&self) -> bool {
        match self.address {
            IpAddr::V4(_) => self.prefix < Self::MIN_V4_PREFIX,
            IpAddr::V6(_) => self.prefix < Self::MIN_V6_PREFIX,
        }
    }

    /// Exactly `address`, nothing around it.
    pub fn is_exactly(&self, address: IpAddr) -> bool {
        let single = match self.address {
            IpAddr::V4(_) => self.prefix == 32,
            IpAddr::V6(_) => self.prefix == 128,
        };
        single && self.contains(address)
    }

    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &Network) -> bool {
        self.prefix <= other.prefix
            && self.address.is_ipv4() == other.address.is_ipv4()
            && self.contains(other.address)
    }

    pub fn contains(&self, candidate: IpAddr) -> bool {
        let candidate = match candidate {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(candidate),
            v4 => v4,
        };
        match (self.address, candidate) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        if prefix == 0 {
            return Err(format!(
                "{text:?} would allow every address; name the networks your receivers are in"
            ));
        }
        Ok(Network { address, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Network> for String {
    fn from(network: Network) -> String {
        network.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// An IPv4 address is judged the same in every IPv6 form that carries it.
        #[test]
        fn ipv6_forms_of_an_ipv4_address_are_judged_alike(octets in any::<[u8; 4]>()) {
            let v4 = Ipv4Addr::from(octets);
            let verdict = refusal(IpAddr::V4(v4)).is_some();
            let [a, b, c, d] = octets;
            let hi = u16::from_be_bytes([a, b]);
            let lo = u16::from_be_bytes([c, d]);
            // A public Teredo server (Microsoft's), so only the client decides.
            let (server_hi, server_lo) = (0x4136, 0xe378);
            for v6 in [
                v4.to_ipv6_mapped(),
                Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
                Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
                Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, hi, lo),
                Ipv6Addr::new(0x64, 0xff9b, 1, hi, lo >> 8, (lo & 0xff) << 8, 0, 0),
                Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0, server_hi, server_lo, 0x8000, 0x1234, !hi, !lo),
                Ipv6Addr::new(0x2001, 0x4860, 0, 0, 0, 0x5efe, hi, lo),
                Ipv6Addr::new(0x2001, 0x4860, 0, 0, 0x0200, 0x5efe, hi, lo),
            ] {
                prop_assert_eq!(refusal(IpAddr::V6(v6)).is_some(), verdict, "{}", v6);
            }
        }

        /// Whatever an admin types, the network parser answers without panicking,
        /// and what it accepts prints back to itself.
        #[test]
        fn any_text_parses_as_a_network_or_is_refused(text in "\\PC{0,40}") {
            if let Ok(network) = text.parse::<Network>() {
                prop_assert_eq!(network.to_string().parse::<Network>(), Ok(network));
            }
        }
    }

    fn host_of(url: &str) -> IpAddr {
        match url::Url::parse(url).unwrap().host().unwrap() {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(d) => panic!("{url} parsed as the domain {d}"),
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[64:ff9b:1::7f00:1]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[64:ff9b:1:7f00:1::]/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "http://[2001:0:a00:1:8000:63bf:3ffe:fffe]/",
            "http://[2001:db9::5efe:7f00:1]/",
            "http://169.254.169.254/",
            "http://[::ffff:169.254.169.254]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://[fe80::1]/",
            "http://[fd12:3456::1]/",
            "http://[ff02::1]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
        ] {
            assert!(refusal(host_of(url)).is_some(), "{url} was allowed");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for url in [
            "https://93.184.215.14/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://[2606:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
        ] {
            assert_eq!(refusal(host_of(url)), None, "{url}");
        }
    }

    #[test]
    fn networks_parse_and_match() {
        let net: Network = "10.20.0.0/16".parse().unwrap();
        assert!(net.contains("10.20.3.4".parse().unwrap()));
        assert!(net.contains("::ffff:10.20.3.4".parse().unwrap()));
        assert!(!net.contains("10.21.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Network = "[fd00::]/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<Network>().is_err());
        assert!("::/0".parse::<Network>().is_err());
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("intranet".parse::<Network>().is_err());
    }
}
