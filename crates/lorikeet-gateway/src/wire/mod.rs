//! The Semtech UDP packet-forwarder protocol on the wire: pure functions from
//! datagram bytes to typed values and back. No sockets, no clock (the reception
//! time is an argument).
//!
//! Every datagram starts with a 4-byte header: protocol version, a 2-byte token and
//! the packet type. Upstream packets (PUSH_DATA, PULL_DATA, TX_ACK) then carry the
//! gateway EUI in bytes 4–11, most significant byte first.

use lorikeet_lorawan::Eui64;

mod json;
pub mod pull_resp;
pub mod push_data;
pub mod tx_ack;

pub use pull_resp::{
    decode_pull_resp, encode_pull_resp, parse_pull_resp_datagram, PullRespError, TxPacket,
    TxPacketError,
};
pub use push_data::{decode_push_data, encode_push_data, PushData, RxpkError, StatError};
pub use tx_ack::{decode_tx_ack, encode_tx_ack, TxAckDecodeError};

/// The protocol version current forwarders speak.
pub const PROTOCOL_VERSION: u8 = 2;
/// The older version, accepted for PUSH_DATA and PULL_DATA. It has no TX_ACK.
pub const PROTOCOL_VERSION_1: u8 = 1;

/// Version, token and type.
pub const HEADER_LEN: usize = 4;
/// Header plus gateway EUI: the shortest valid upstream packet.
pub const HEADER_WITH_EUI_LEN: usize = 12;

/// The six packet types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Gateway → server: received packets and status.
    PushData,
    /// Server → gateway: PUSH_DATA received.
    PushAck,
    /// Gateway → server: keepalive; its source address is the downlink path.
    PullData,
    /// Server → gateway: a packet to transmit.
    PullResp,
    /// Server → gateway: PULL_DATA received.
    PullAck,
    /// Gateway → server: what became of a PULL_RESP.
    TxAck,
}

impl PacketType {
    /// The identifier byte (byte 3 of the header).
    pub fn id(self) -> u8 {
        match self {
            PacketType::PushData => 0x00,
            PacketType::PushAck => 0x01,
            PacketType::PullData => 0x02,
            PacketType::PullResp => 0x03,
            PacketType::PullAck => 0x04,
            PacketType::TxAck => 0x05,
        }
    }

    /// The type for an identifier byte, if it is one.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x00 => PacketType::PushData,
            0x01 => PacketType::PushAck,
            0x02 => PacketType::PullData,
            0x03 => PacketType::PullResp,
            0x04 => PacketType::PullAck,
            0x05 => PacketType::TxAck,
            _ => return None,
        })
    }

    /// A stable lower-case name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PacketType::PushData => "push_data",
            PacketType::PushAck => "push_ack",
            PacketType::PullData => "pull_data",
            PacketType::PullResp => "pull_resp",
            PacketType::PullAck => "pull_ack",
            PacketType::TxAck => "tx_ack",
        }
    }
}

/// The first four bytes of every datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version (1 or 2).
    pub version: u8,
    /// Token chosen by the sender; acks echo it.
    pub token: u16,
    /// What follows.
    pub packet_type: PacketType,
}

impl Header {
    /// The header as bytes.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let [hi, lo] = self.token.to_be_bytes();
        [self.version, hi, lo, self.packet_type.id()]
    }
}

/// An upstream datagram whose header has been checked; the JSON is not parsed yet,
/// so the caller can apply its gateway policy first and skip the work for rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream<'a> {
    /// Received packets and/or status.
    PushData {
        /// Header.
        header: Header,
        /// Sending gateway.
        gateway_id: Eui64,
        /// The JSON object, trailing NUL bytes removed.
        json: &'a [u8],
    },
    /// Keepalive that opens the downlink path.
    PullData {
        /// Header.
        header: Header,
        /// Sending gateway.
        gateway_id: Eui64,
    },
    /// Result of a PULL_RESP.
    TxAck {
        /// Header; its token is the one of the PULL_RESP.
        header: Header,
        /// Sending gateway.
        gateway_id: Eui64,
        /// The optional JSON object (may be empty), trailing NUL bytes removed.
        json: &'a [u8],
    },
}

impl Upstream<'_> {
    /// The datagram header.
    pub fn header(&self) -> Header {
        match self {
            Upstream::PushData { header, .. }
            | Upstream::PullData { header, .. }
            | Upstream::TxAck { header, .. } => *header,
        }
    }

    /// The gateway named in the datagram.
    pub fn gateway_id(&self) -> Eui64 {
        match self {
            Upstream::PushData { gateway_id, .. }
            | Upstream::PullData { gateway_id, .. }
            | Upstream::TxAck { gateway_id, .. } => *gateway_id,
        }
    }
}

/// A downstream datagram, as a gateway (or a test pretending to be one) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downstream<'a> {
    /// Acknowledges a PUSH_DATA.
    PushAck(Header),
    /// Acknowledges a PULL_DATA.
    PullAck(Header),
    /// A packet to transmit; decode the JSON with [`decode_pull_resp`].
    PullResp {
        /// Header; TX_ACK must echo its token.
        header: Header,
        /// The JSON object.
        json: &'a [u8],
    },
}

/// Why a datagram was not accepted as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DatagramError {
    /// Shorter than its header.
    #[error("datagram of {len_bytes} bytes is shorter than the {needed_bytes} its type needs")]
    Truncated {
        /// Bytes received.
        len_bytes: usize,
        /// Bytes the header needs.
        needed_bytes: usize,
    },
    /// Not protocol version 1 or 2.
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The type byte is none of the six types.
    #[error("unknown packet type {id:#04x}")]
    UnknownType {
        /// The type byte.
        id: u8,
    },
    /// A type that flows the other way (e.g. a PULL_RESP sent to the server).
    #[error("{} is not expected in this direction", packet_type.as_str())]
    UnexpectedType {
        /// The type received.
        packet_type: PacketType,
    },
    /// The JSON body is not valid JSON of the expected shape (or not UTF-8).
    #[error("invalid JSON body: {0}")]
    InvalidJson(#[source] serde_json::Error),
}

fn parse_header(datagram: &[u8]) -> Result<Header, DatagramError> {
    let [version, hi, lo, id, ..] = *datagram else {
        return Err(DatagramError::Truncated {
            len_bytes: datagram.len(),
            needed_bytes: HEADER_LEN,
        });
    };
    if version != PROTOCOL_VERSION && version != PROTOCOL_VERSION_1 {
        return Err(DatagramError::UnsupportedVersion { version });
    }
    let packet_type = PacketType::from_id(id).ok_or(DatagramError::UnknownType { id })?;
    Ok(Header {
        version,
        token: u16::from_be_bytes([hi, lo]),
        packet_type,
    })
}

fn read_eui(datagram: &[u8]) -> Result<(Eui64, &[u8]), DatagramError> {
    let truncated = || DatagramError::Truncated {
        len_bytes: datagram.len(),
        needed_bytes: HEADER_WITH_EUI_LEN,
    };
    let eui_bytes = datagram
        .get(HEADER_LEN..HEADER_WITH_EUI_LEN)
        .ok_or_else(truncated)?;
    let eui: [u8; 8] = eui_bytes.try_into().map_err(|_| truncated())?;
    let rest = datagram.get(HEADER_WITH_EUI_LEN..).unwrap_or_default();
    Ok((Eui64(eui), rest))
}

/// Some forwarders NUL-terminate their JSON; `serde_json` would call that trailing garbage.
fn trim_nul(json: &[u8]) -> &[u8] {
    let end = json.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    json.get(..end).unwrap_or_default()
}

/// Checks the header of a datagram received by the server and splits off the EUI
/// and JSON body. Downstream types and TX_ACK in protocol v1 (which has none) are
/// rejected.
pub fn parse_upstream(datagram: &[u8]) -> Result<Upstream<'_>, DatagramError> {
    let header = parse_header(datagram)?;
    match header.packet_type {
        PacketType::PushData => {
            let (gateway_id, rest) = read_eui(datagram)?;
            Ok(Upstream::PushData {
                header,
                gateway_id,
                json: trim_nul(rest),
            })
        }
        PacketType::PullData => {
            let (gateway_id, _) = read_eui(datagram)?;
            Ok(Upstream::PullData { header, gateway_id })
        }
        PacketType::TxAck if header.version == PROTOCOL_VERSION => {
            let (gateway_id, rest) = read_eui(datagram)?;
            Ok(Upstream::TxAck {
                header,
                gateway_id,
                json: trim_nul(rest),
            })
        }
        packet_type => Err(DatagramError::UnexpectedType { packet_type }),
    }
}

/// Checks a datagram received by a gateway (used by test gateways and tools).
pub fn parse_downstream(datagram: &[u8]) -> Result<Downstream<'_>, DatagramError> {
    let header = parse_header(datagram)?;
    let rest = datagram.get(HEADER_LEN..).unwrap_or_default();
    match header.packet_type {
        PacketType::PushAck => Ok(Downstream::PushAck(header)),
        PacketType::PullAck => Ok(Downstream::PullAck(header)),
        PacketType::PullResp => Ok(Downstream::PullResp {
            header,
            json: trim_nul(rest),
        }),
        packet_type => Err(DatagramError::UnexpectedType { packet_type }),
    }
}

/// The acknowledgement of an upstream header: PUSH_ACK for PUSH_DATA, PULL_ACK for
/// PULL_DATA, same version and token. `None` for types that are not acknowledged.
pub fn encode_ack(request: Header) -> Option<[u8; HEADER_LEN]> {
    let packet_type = match request.packet_type {
        PacketType::PushData => PacketType::PushAck,
        PacketType::PullData => PacketType::PullAck,
        _ => return None,
    };
    Some(
        Header {
            packet_type,
            ..request
        }
        .encode(),
    )
}

/// A PULL_DATA keepalive (what a gateway sends; used by tests and tools).
pub fn encode_pull_data(version: u8, token: u16, gateway_id: Eui64) -> [u8; HEADER_WITH_EUI_LEN] {
    let mut out = [0u8; HEADER_WITH_EUI_LEN];
    let header = Header {
        version,
        token,
        packet_type: PacketType::PullData,
    }
    .encode();
    out[..HEADER_LEN].copy_from_slice(&header);
    out[HEADER_LEN..].copy_from_slice(&gateway_id.0);
    out
}

/// Header and EUI for an upstream packet with a JSON body.
pub(crate) fn upstream_prefix(
    version: u8,
    token: u16,
    packet_type: PacketType,
    gateway_id: Eui64,
    json_len_bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_WITH_EUI_LEN + json_len_bytes);
    out.extend_from_slice(
        &Header {
            version,
            token,
            packet_type,
        }
        .encode(),
    );
    out.extend_from_slice(&gateway_id.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUI: Eui64 = Eui64([0xaa, 0x55, 0x5a, 0, 0, 0, 0, 1]);

    #[test]
    fn pull_data_round_trips_and_is_acked_with_the_same_token() {
        let dgram = encode_pull_data(2, 0xbeef, EUI);
        let up = parse_upstream(&dgram).unwrap();
        assert_eq!(
            up,
            Upstream::PullData {
                header: Header {
                    version: 2,
                    token: 0xbeef,
                    packet_type: PacketType::PullData
                },
                gateway_id: EUI
            }
        );
        assert_eq!(encode_ack(up.header()), Some([2, 0xbe, 0xef, 4]));
        match parse_downstream(&encode_ack(up.header()).unwrap()).unwrap() {
            Downstream::PullAck(h) => assert_eq!(h.token, 0xbeef),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v1_is_accepted_for_push_and_pull_but_has_no_tx_ack() {
        let dgram = encode_pull_data(1, 7, EUI);
        assert_eq!(parse_upstream(&dgram).unwrap().header().version, 1);
        assert_eq!(
            encode_ack(parse_upstream(&dgram).unwrap().header()),
            Some([1, 0, 7, 4])
        );
        let mut tx_ack = dgram;
        tx_ack[3] = 5;
        assert!(matches!(
            parse_upstream(&tx_ack),
            Err(DatagramError::UnexpectedType {
                packet_type: PacketType::TxAck
            })
        ));
    }

    #[test]
    fn header_errors_are_typed() {
        assert!(matches!(
            parse_upstream(&[2, 0, 0]),
            Err(DatagramError::Truncated {
                len_bytes: 3,
                needed_bytes: 4
            })
        ));
        assert!(matches!(
            parse_upstream(&[2, 0, 0, 0, 1, 2]),
            Err(DatagramError::Truncated {
                len_bytes: 6,
                needed_bytes: 12
            })
        ));
        assert!(matches!(
            parse_upstream(&[3, 0, 0, 2]),
            Err(DatagramError::UnsupportedVersion { version: 3 })
        ));
        assert!(matches!(
            parse_upstream(&[2, 0, 0, 9]),
            Err(DatagramError::UnknownType { id: 9 })
        ));
        assert!(matches!(
            parse_upstream(&[2, 0, 0, 3, b'{', b'}']),
            Err(DatagramError::UnexpectedType {
                packet_type: PacketType::PullResp
            })
        ));
        assert!(parse_upstream(&[]).is_err());
    }

    #[test]
    fn nul_terminated_json_is_trimmed() {
        let mut dgram = encode_pull_data(2, 1, EUI).to_vec();
        dgram[3] = 0;
        dgram.extend_from_slice(b"{}\0\0");
        match parse_upstream(&dgram).unwrap() {
            Upstream::PushData { json, .. } => assert_eq!(json, b"{}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(trim_nul(b"\0\0"), b"");
    }
}
