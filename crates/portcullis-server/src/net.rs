//! Client addresses: CIDR ranges of trusted proxies, the client behind them,
//! and the key an address is counted under (IPv6 by /64, since one host
//! usually owns a whole /64).

use std::net::IpAddr;
use std::str::FromStr;

/// An address range, e.g. `10.0.0.0/8` or `fd00::/8`; a bare address is a
/// range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Self { network, prefix })
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let (net, _) = bits(self.network);
        let (addr, _) = bits(ip);
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        // IPv4 bits sit in the top 32 of the u128, so one mask serves both.
        net & mask == addr & mask
    }
}

/// The client of a request: the TCP peer, or — when the peer is a trusted
/// proxy — the right-most `X-Forwarded-For` entry that is not itself a
/// trusted proxy. A client can prepend anything it likes to the header, so
/// only entries appended by trusted hops are believed.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let entries = forwarded_for
        .iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            // Garbage where an address should be: stop at the last hop that
            // a trusted proxy vouched for.
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// The key an address is counted under: itself for IPv4, its /64 for IPv6.
pub fn rate_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_ranges() {
        let net: Cidr = "10.1.0.0/16".parse().expect("cidr");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped addresses count as IPv4"
        );
        let v6: Cidr = "fd00::/8".parse().expect("cidr");
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let one: Cidr = "127.0.0.1".parse().expect("cidr");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr")];
        // Untrusted peer: the header is ignored, whatever it says.
        assert_eq!(
            client_address(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        // Trusted peer: the right-most untrusted entry, not the forged left one.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &["6.6.6.6, 198.51.100.7, 10.0.0.5"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // No header, or garbage: the last trusted hop.
        assert_eq!(
            client_address(ip("10.0.0.2"), &[], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["junk"], &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        assert_eq!(
            rate_key(ip("2001:db8:0:0:1::1")),
            rate_key(ip("2001:db8::ffff"))
        );
        assert_ne!(rate_key(ip("2001:db8::1")), rate_key(ip("2001:db8:0:1::1")));
        assert_eq!(rate_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
