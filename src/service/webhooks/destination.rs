//! Where a webhook may be delivered: the URL read as the guard reads it, and
//! every address it resolves to public or inside the operator's allowed
//! networks (`domain::net_guard`), checked at registration and again at each
//! delivery.

use super::*;

/// Why a destination is refused, for the admin (at registration) and for the
/// delivery log (at delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// A webhook URL as the guard reads it.
pub struct Destination {
    pub url: url::Url,
    pub host: url::Host<String>,
    pub port: u16,
}

/// Parses a URL and checks what does not need the network.
pub fn parse_destination(raw: &str) -> Result<Destination, Refusal> {
    if raw.len() > MAX_URL {
        return Err(Refusal(format!(
            "the URL is longer than {MAX_URL} characters"
        )));
    }
    let url = url::Url::parse(raw.trim())
        .map_err(|e| Refusal(format!("not a valid absolute URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Refusal("the URL must start with https://".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal(
            "the URL must not carry credentials; authenticate deliveries by their signature".into(),
        ));
    }
    let host = url
        .host()
        .map(|h| h.to_owned())
        .ok_or_else(|| Refusal("the URL has no host".into()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Refusal("the URL has no port".into()))?;
    Ok(Destination { url, host, port })
}

/// Where a checked destination is: only public addresses, or some inside the
/// operator's allowed networks (whose answers a tenant does not get to read).
#[derive(Debug, Clone)]
pub struct Checked {
    pub addresses: Vec<SocketAddr>,
    pub internal: bool,
}

/// Whether a non-public address may receive webhooks: the operator opened it
/// (`webhooks.allowed_networks`; this host and link-local only when named
/// exactly) and the enterprise chose it among the operator's networks.
pub(super) fn internal_allowed(
    address: IpAddr,
    operator: &[Network],
    settings: &NotificationSettings,
) -> Result<(), &'static str> {
    let exact = net_guard::needs_exact_allowance(address);
    let opened = operator.iter().any(|network| {
        if exact {
            network.is_exactly(address)
        } else {
            network.contains(address)
        }
    });
    if !opened {
        return Err("operator");
    }
    if !settings.allows(address) {
        return Err("enterprise");
    }
    Ok(())
}

/// Resolves the destination (every A and AAAA record) and checks each
/// address: all must be public, or allowed ([`internal_allowed`]). The
/// addresses returned are the only ones a delivery may connect to, so a DNS
/// answer that changes after the check (rebinding) cannot redirect it.
pub async fn check_destination(
    destination: &Destination,
    settings: &NotificationSettings,
    operator: &[Network],
) -> Result<Checked, Refusal> {
    let addresses: Vec<IpAddr> = match &destination.host {
        url::Host::Ipv4(v4) => vec![IpAddr::V4(*v4)],
        url::Host::Ipv6(v6) => vec![IpAddr::V6(*v6)],
        url::Host::Domain(name) => {
            let lookup = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                tokio::net::lookup_host((name.as_str(), destination.port)),
            )
            .await
            .map_err(|_| Refusal(format!("resolving {name} timed out")))?
            .map_err(|e| Refusal(format!("{name} does not resolve ({e})")))?;
            let mut found: Vec<IpAddr> = lookup.map(|a| a.ip()).collect();
            found.sort();
            found.dedup();
            found
        }
    };
    if addresses.is_empty() {
        return Err(Refusal("the host has no address".into()));
    }
    let mut internal = false;
    let mut all_internal = true;
    for address in &addresses {
        let Some(why) = net_guard::refusal(*address) else {
            all_internal = false;
            continue;
        };
        match internal_allowed(*address, operator, settings) {
            Ok(()) => internal = true,
            Err("operator") => {
                return Err(Refusal(format!(
                    "{address} is a {why} address; only the appliance's operator can open \
                     non-public networks to webhooks (webhooks.allowed_networks)"
                )))
            }
            Err(_) => {
                return Err(Refusal(format!(
                    "{address} is a {why} address; add its network to the enterprise's \
                     allowed webhook networks if the receiver is yours"
                )))
            }
        }
    }
    if destination.url.scheme() == "http" && !all_internal {
        return Err(Refusal(
            "the URL must use https:// (plain http:// is only for allowed networks)".into(),
        ));
    }
    Ok(Checked {
        addresses: addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, destination.port))
            .collect(),
        internal,
    })
}
