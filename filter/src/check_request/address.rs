//! The peers' addresses as a CheckRequest carries them, from the text Envoy's properties hold.

/// An IP socket address as Envoy's `SocketAddress` carries it: address and port apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAddress<'a> {
    pub address: &'a [u8],
    pub port: u32,
}

impl<'a> SocketAddress<'a> {
    /// Splits Envoy's `ip:port` / `[ipv6]:port` text. Anything else (a pipe path) is kept whole
    /// as the address, with port 0.
    pub fn parse(text: &'a [u8]) -> Self {
        Self::parse_ip(text).unwrap_or(Self {
            address: text,
            port: 0,
        })
    }

    /// `ip:port` or `[ipv6]:port`, or `None` for anything else.
    fn parse_ip(text: &'a [u8]) -> Option<Self> {
        let colon = text.iter().rposition(|&b| b == b':')?;
        let (host, port) = (&text[..colon], &text[colon + 1..]);
        // As u64, the module's one integer parser, then narrowed: the same ports pass.
        let port = u16::try_from(std::str::from_utf8(port).ok()?.parse::<u64>().ok()?).ok()?;
        let host = match host {
            [b'[', inner @ .., b']'] => inner,
            _ if host.contains(&b':') => return None,
            _ => host,
        };
        Some(Self {
            address: host,
            port: u32::from(port),
        })
    }

    /// The `source.address` to send, from Envoy's stream-level remote address (the `source.address`
    /// property), which is not always the connection's peer that native sends.
    ///
    /// Envoy replaces the stream's remote address with one it reads from the request: from
    /// `x-forwarded-for` under the default `use_remote_address: false` (or with
    /// `xff_num_trusted_hops`), or from an `original_ip_detection_extensions` header. Such an
    /// address has port 0, which no TCP or UDP peer has, and a wasm filter has no other way to
    /// tell it apart or to read the peer. Under `use_remote_address: false` the client writes that
    /// header itself, so the address is left out unless `include_forwarded` says the operator
    /// trusts what Envoy derived; an auth server that allows by address then sees none.
    pub fn source(text: &'a [u8], include_forwarded: bool) -> Option<Self> {
        match Self::parse_ip(text) {
            Some(address) if address.port == 0 && !include_forwarded => None,
            Some(address) => Some(address),
            None => Some(Self::parse(text)),
        }
    }
}
