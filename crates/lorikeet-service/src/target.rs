//! Where a webhook may connect (the SSRF guard): one rule for the API, which checks
//! a target when it is created or updated, and for the webhook worker, which checks
//! every address again when it connects (a name may resolve elsewhere by then: DNS
//! rebinding).
//!
//! - A target set with a tenant's API key may only reach global unicast addresses:
//!   loopback, private (RFC 1918, `fc00::/7`), shared (CGNAT `100.64.0.0/10`),
//!   link-local, multicast, unspecified, broadcast, documentation and other reserved
//!   addresses are refused.
//! - A target set with the admin token may also reach loopback, private, shared and
//!   link-local addresses (a local receiver, `lorikeet sim`).
//! - Cloud metadata addresses (`169.254.169.254`, `fd00:ec2::254`, …) are refused
//!   for everyone, as are multicast, unspecified and broadcast addresses.
//! - The operator allowlist (`[security] allowed_target_networks`) permits its
//!   networks for everyone, before any of the above.
//!
//! IPv4 addresses embedded in IPv6 ones (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`) are judged as the IPv4 address they lead to.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use lorikeet_storage::IntegrationOwner;

/// What kind of address an IP is, for the guard's decision and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Reachable on the internet.
    Global,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), unique local `fc00::/7`,
    /// deprecated site-local `fec0::/10`.
    Private,
    /// Shared address space `100.64.0.0/10` (carrier-grade NAT).
    Shared,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's instance metadata service.
    CloudMetadata,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation ranges (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`).
    Documentation,
    /// Other special-purpose ranges (benchmarking, `240/4`, IETF protocol assignments,
    /// Teredo, discard-only, outside `2000::/3`, …).
    Reserved,
}

impl AddressClass {
    /// How the class reads in a message: "target address 10.0.0.5 is {this}".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Global => "global",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::Shared => "shared (carrier-grade NAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "reserved for documentation",
            AddressClass::Reserved => "reserved",
        }
    }

    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            AddressClass::Global => "global",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::Shared => "shared",
            AddressClass::LinkLocal => "link_local",
            AddressClass::CloudMetadata => "cloud_metadata",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation",
            AddressClass::Reserved => "reserved",
        }
    }

    /// Whether a target set by `owner` may reach an address of this class (without
    /// an allowlist entry).
    pub fn permitted_for(self, owner: IntegrationOwner) -> bool {
        match self {
            AddressClass::Global => true,
            AddressClass::Loopback
            | AddressClass::Private
            | AddressClass::Shared
            | AddressClass::LinkLocal
            | AddressClass::Documentation
            | AddressClass::Reserved => owner == IntegrationOwner::Admin,
            AddressClass::CloudMetadata
            | AddressClass::Multicast
            | AddressClass::Unspecified
            | AddressClass::Broadcast => false,
        }
    }
}

/// Cloud instance metadata services: AWS, Azure, GCP, Oracle, DigitalOcean
/// (`169.254.169.254`), AWS ECS task credentials (`169.254.170.2`), Alibaba
/// (`100.100.100.200`).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
];

/// AWS's IPv6 instance metadata service.
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// The class of `ip`.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if METADATA_V4.contains(&ip) {
        return AddressClass::CloudMetadata;
    }
    match (a, b, c) {
        (0, ..) => AddressClass::Unspecified,
        (10, ..) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::Shared,
        (127, ..) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (172, 16..=31, _) => AddressClass::Private,
        (192, 0, 0) => AddressClass::Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (192, 88, 99) => AddressClass::Reserved,
        (192, 168, _) => AddressClass::Private,
        (198, 18..=19, _) => AddressClass::Reserved,
        (224..=239, ..) => AddressClass::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => AddressClass::Broadcast,
        (240..=255, ..) => AddressClass::Reserved,
        _ => AddressClass::Global,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if METADATA_V6.contains(&ip) {
        return AddressClass::CloudMetadata;
    }
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let s = ip.segments();
    let o = ip.octets();
    let embedded = |i: usize| Ipv4Addr::new(o[i], o[i + 1], o[i + 2], o[i + 3]);
    // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64) reach the IPv4 address.
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(12));
    }
    // 6to4: 2002:AABB:CCDD::/48 leads to AA.BB.CC.DD.
    if s[0] == 0x2002 {
        return classify_v4(embedded(2));
    }
    match s[0] {
        0xff00..=0xffff => AddressClass::Multicast,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfec0..=0xfeff | 0xfc00..=0xfdff => AddressClass::Private,
        // 2001:db8::/32
        0x2001 if s[1] == 0x0db8 => AddressClass::Documentation,
        // Teredo 2001::/32 and the IETF protocol assignments 2001::/23 beneath it
        // (its global exceptions are anycast services, not webhooks).
        0x2001 if s[1] < 0x0200 => AddressClass::Reserved,
        0x2000..=0x3fff => AddressClass::Global,
        // ::/8 (IPv4-compatible, discard-only 100::/64, …) and everything outside
        // the global unicast block.
        _ => AddressClass::Reserved,
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32
/// or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

/// A malformed CIDR string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a network in CIDR notation ({reason}); write e.g. 10.1.0.0/16 or fd00:1::/64"
)]
pub struct CidrError {
    /// The text as given.
    pub text: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl FromStr for IpNetwork {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| CidrError {
            text: s.to_owned(),
            reason,
        };
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("the prefix length is not a number"));
                }
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(bad("the prefix length is too long for the address")),
                }
            }
        };
        let net = IpNetwork { addr, prefix };
        if net.network() != addr {
            return Err(bad(
                "host bits are set: the address is not the start of the network",
            ));
        }
        Ok(net)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNetwork {
    fn mask_v4(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    fn mask_v6(prefix: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & Self::mask_v4(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & Self::mask_v6(self.prefix))),
        }
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as its
    /// IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = Self::mask_v4(self.prefix);
                u32::from(a) & m == u32::from(n)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = Self::mask_v6(self.prefix);
                u128::from(a) & m == u128::from(n)
            }
            _ => false,
        }
    }
}

/// Why a target address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target address {addr} is {} and not allowlisted", class.describe())]
pub struct TargetRefused {
    /// The address.
    pub addr: IpAddr,
    /// Its class.
    pub class: AddressClass,
}

/// The address rule: the allowlist and the per-owner classes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNetwork>,
}

impl TargetPolicy {
    /// A policy permitting `allowed` networks for everyone.
    pub fn new(allowed: Vec<IpNetwork>) -> Self {
        TargetPolicy { allowed }
    }

    /// Parses `[security] allowed_target_networks`; the error names the bad entry.
    pub fn from_cidrs<S: AsRef<str>>(cidrs: &[S]) -> Result<Self, CidrError> {
        let allowed = cidrs
            .iter()
            .map(|c| c.as_ref().parse())
            .collect::<Result<Vec<IpNetwork>, CidrError>>()?;
        Ok(TargetPolicy { allowed })
    }

    /// The allowlisted networks.
    pub fn allowed(&self) -> &[IpNetwork] {
        &self.allowed
    }

    /// Whether a target set by `owner` may connect to `ip`.
    pub fn check(&self, owner: IntegrationOwner, ip: IpAddr) -> Result<(), TargetRefused> {
        if self.allowed.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        let class = classify(ip);
        if class.permitted_for(owner) {
            Ok(())
        } else {
            Err(TargetRefused { addr: ip, class })
        }
    }
}

/// The future of a [`Resolver`] lookup.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. The system's resolver in production; tests
/// pass their own (as a value, never a global) to play DNS rebinding.
pub trait Resolver: Send + Sync + fmt::Debug {
    /// Every address of `host`.
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Why a host name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// One of its addresses is refused.
    #[error(transparent)]
    Refused(#[from] TargetRefused),
    /// It does not resolve (or the lookup failed).
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// It resolves to no address.
    #[error("{host:?} has no address")]
    NoAddress {
        /// The host.
        host: String,
    },
    /// The lookup took too long.
    #[error("resolving {host:?} took longer than {} s", timeout.as_secs_f32())]
    Timeout {
        /// The host.
        host: String,
        /// The limit.
        timeout: Duration,
    },
}

/// The policy with a resolver: what the API and the webhook worker hold.
#[derive(Debug, Clone)]
pub struct TargetGuard {
    policy: Arc<TargetPolicy>,
    resolver: Arc<dyn Resolver>,
}

impl Default for TargetGuard {
    /// No allowlist, the system resolver.
    fn default() -> Self {
        TargetGuard::new(TargetPolicy::default(), Arc::new(SystemResolver))
    }
}

/// How long a lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

impl TargetGuard {
    /// `policy`, resolving names with `resolver`.
    pub fn new(policy: TargetPolicy, resolver: Arc<dyn Resolver>) -> Self {
        TargetGuard {
            policy: Arc::new(policy),
            resolver,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// Whether a target set by `owner` may connect to `ip`.
    pub fn check_ip(&self, owner: IntegrationOwner, ip: IpAddr) -> Result<(), TargetRefused> {
        self.policy.check(owner, ip)
    }

    /// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and
    /// checks every address: all of them, or an error naming the first refused one.
    /// Connect only to the addresses returned.
    pub async fn resolve(
        &self,
        owner: IntegrationOwner,
        host: &str,
    ) -> Result<Vec<IpAddr>, GuardError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(owner, ip)?;
            return Ok(vec![ip]);
        }
        let addrs = match tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.lookup(host)).await {
            Ok(Ok(a)) => a,
            Ok(Err(source)) => {
                return Err(GuardError::Resolve {
                    host: host.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(GuardError::Timeout {
                    host: host.to_owned(),
                    timeout: LOOKUP_TIMEOUT,
                })
            }
        };
        if addrs.is_empty() {
            return Err(GuardError::NoAddress {
                host: host.to_owned(),
            });
        }
        for ip in &addrs {
            self.check_ip(owner, *ip)?;
        }
        Ok(addrs)
    }

    /// The check of a webhook URL when it is set: an IP literal is checked; a name
    /// is resolved and each address checked. A name that does not resolve (yet) is
    /// accepted: every connection checks again.
    pub async fn check_url(
        &self,
        owner: IntegrationOwner,
        url: &url::Url,
    ) -> Result<(), TargetRefused> {
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) => return self.check_ip(owner, IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => return self.check_ip(owner, IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => d,
            None => return Ok(()),
        };
        match self.resolve(owner, host).await {
            Err(GuardError::Refused(r)) => Err(r),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IntegrationOwner::{Admin, Tenant};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classes() {
        for (addr, class) in [
            ("8.8.8.8", AddressClass::Global),
            ("93.184.216.34", AddressClass::Global),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("10.0.0.5", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("172.32.0.1", AddressClass::Global),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Shared),
            ("100.127.255.255", AddressClass::Shared),
            ("100.128.0.1", AddressClass::Global),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::CloudMetadata),
            ("100.100.100.200", AddressClass::CloudMetadata),
            ("224.0.0.1", AddressClass::Multicast),
            ("0.0.0.0", AddressClass::Unspecified),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Documentation),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fd00::1", AddressClass::Private),
            ("fc00::1", AddressClass::Private),
            ("fe80::1", AddressClass::LinkLocal),
            ("ff02::1", AddressClass::Multicast),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            ("2001:db8::1", AddressClass::Documentation),
            ("2001::1", AddressClass::Reserved),
            ("2606:4700::1111", AddressClass::Global),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::CloudMetadata),
            ("::ffff:8.8.8.8", AddressClass::Global),
            ("64:ff9b::a9fe:a9fe", AddressClass::CloudMetadata),
            ("2002:0a00:0001::1", AddressClass::Private),
            ("2002:0808:0808::1", AddressClass::Global),
            ("::127.0.0.1", AddressClass::Reserved),
            ("100::1", AddressClass::Reserved),
        ] {
            assert_eq!(classify(ip(addr)), class, "{addr}");
        }
    }

    #[test]
    fn owners_and_allowlist() {
        let p = TargetPolicy::default();
        assert!(p.check(Tenant, ip("8.8.8.8")).is_ok());
        for a in ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "fd12::1"] {
            assert!(p.check(Tenant, ip(a)).is_err(), "{a}");
        }
        for a in ["127.0.0.1", "10.0.0.5", "::1", "192.168.0.1", "169.254.3.4"] {
            assert!(p.check(Admin, ip(a)).is_ok(), "{a}");
        }
        for a in ["169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1"] {
            assert!(p.check(Admin, ip(a)).is_err(), "{a}");
        }
        let e = p.check(Tenant, ip("10.0.0.5")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "target address 10.0.0.5 is private and not allowlisted"
        );
        let e = p.check(Admin, ip("169.254.169.254")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "target address 169.254.169.254 is a cloud metadata address and not allowlisted"
        );

        let p =
            TargetPolicy::from_cidrs(&["10.1.0.0/16", "169.254.169.254/32", "fd00::/8"]).unwrap();
        assert!(p.check(Tenant, ip("10.1.2.3")).is_ok());
        assert!(p.check(Tenant, ip("::ffff:10.1.2.3")).is_ok());
        assert!(p.check(Tenant, ip("10.2.0.1")).is_err());
        assert!(p.check(Admin, ip("169.254.169.254")).is_ok());
        assert!(p.check(Tenant, ip("fd00:ec2::254")).is_ok());
    }

    #[test]
    fn cidr_parsing() {
        for good in [
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::/0",
            "fd00::/8",
            "1.2.3.4",
            "::1/128",
        ] {
            good.parse::<IpNetwork>()
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0/8",
            "",
            "fd00::/129",
            "example.com/8",
            "10.0.0.0/+8",
        ] {
            let e = bad.parse::<IpNetwork>().unwrap_err();
            assert!(e.to_string().contains("CIDR"), "{bad}: {e}");
        }
        let n: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(n.contains(ip("8.8.8.8")));
        assert!(!n.contains(ip("::1")));
    }

    #[derive(Debug)]
    struct Fixed(Vec<IpAddr>);
    impl Resolver for Fixed {
        fn lookup<'a>(&'a self, _host: &'a str) -> Lookup<'a> {
            let v = self.0.clone();
            Box::pin(async move { Ok(v) })
        }
    }

    #[tokio::test]
    async fn every_resolved_address_is_checked() {
        let g = TargetGuard::new(
            TargetPolicy::default(),
            Arc::new(Fixed(vec![ip("8.8.8.8"), ip("10.0.0.5")])),
        );
        let e = g.resolve(Tenant, "mixed.example").await.unwrap_err();
        assert!(e.to_string().contains("10.0.0.5 is private"), "{e}");
        assert_eq!(g.resolve(Admin, "mixed.example").await.unwrap().len(), 2);
        assert!(g.resolve(Tenant, "[::1]").await.is_err());
        let url = url::Url::parse("http://mixed.example/").unwrap();
        assert!(g.check_url(Tenant, &url).await.is_err());
        let url = url::Url::parse("http://2130706433/").unwrap();
        assert!(
            g.check_url(Tenant, &url).await.is_err(),
            "decimal 127.0.0.1"
        );
    }
}
