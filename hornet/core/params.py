"""HORNET sizes and constants (paper symbols in comments), and the two data profiles.

Every size below is in bytes. One network uses one ``Params``: all its setup packets
have one size, and all data packets of one payload class have one size, whatever the
real path length (HORNET §5.2).

Packets fit the path (SPEC.md §3.4): a data packet travels as one UDP datagram inside
the link layer, and IP must never fragment it (a lost fragment loses the packet, and
many firewalls drop fragments). ``Params.max_payload(path_mtu)`` is the largest payload
class whose packet, link header included, fits one datagram on a path of that MTU; the
runtime's default class is the one for a 1500-byte IPv4 (Ethernet) path, and
``max_payload(IPV6_MIN_MTU, ipv6=True)`` fits any IPv6 path. r = 5 keeps the header
budget small enough for a useful payload in both.
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

from hornet.errors import LocalProtocolError

K: Final = 16  # k: key and MAC length
FS_LEN: Final = 32  # |FS| = s (16) ‖ R (12) ‖ EXP (4)
MAC_LEN: Final = K  # γ: AHDR and FS-payload MACs
C: Final = FS_LEN + MAC_LEN  # c = |FS| + k: one AHDR / FS-payload block
CHDR_LEN: Final = 18  # type (1) ‖ hops (1) ‖ EXP or IV (16)
IV_LEN: Final = 16
ROUTE_LEN: Final = 12  # R = next hop (8) ‖ flags (1) ‖ reserved (3)
NODE_ID_LEN: Final = 8
TAG_LEN: Final = 16  # hardened profile: per-hop payload tag
DEFAULT_MAX_HOPS: Final = 5  # r: 4 relays and the destination (the paper's 7 counts AS hops)
MAX_MAX_HOPS: Final = 16
LINK_OVERHEAD: Final = 25  # a link DATA datagram's header (9) and AEAD tag (16)
UDP_IPV4_OVERHEAD: Final = 20 + 8  # IPv4 header without options, UDP header
UDP_IPV6_OVERHEAD: Final = 40 + 8  # IPv6 header without extensions, UDP header
ETHERNET_MTU: Final = 1500  # the default path MTU
IPV6_MIN_MTU: Final = 1280  # every IPv6 link carries this much (RFC 8200 §5)
DEFAULT_EPOCH_S: Final = 3600  # relay key epoch length
DEFAULT_MAX_SKEW_S: Final = 30  # tolerated clock difference between any two nodes
EXP_GRANULARITY_S: Final = 10  # every EXP is a multiple of this
LIFETIMES_S: Final = (10, 60, 600)  # the circuit lifetimes a source may ask for


class Profile(enum.Enum):
    """Data-plane profiles (SPEC.md §5).

    PAPER: the CCS 2015 design. Onion layers are AES-CTR with no per-hop integrity: a
    corrupt first relay can XOR a pattern into the payload that a corrupt destination
    reads (Kuhn, Beck, Strufe, S&P 2020).
    HARDENED (default): forward layers are AES-GCM, each hop's tag carried in a shifting
    tag array, so the next honest relay drops a tampered packet.
    """

    PAPER = "paper"
    HARDENED = "hardened"


@attrs.frozen
class Params:
    """Network-wide parameters. Both ends and every relay must agree on them."""

    max_hops: int = DEFAULT_MAX_HOPS  # r
    profile: Profile = Profile.HARDENED
    #: Relay keys rotate every ``epoch_s`` seconds; epoch e covers [e·epoch_s, (e+1)·epoch_s).
    epoch_s: int = DEFAULT_EPOCH_S
    #: Clocks may differ by up to this much (SPEC.md §7.2).
    max_skew_s: int = DEFAULT_MAX_SKEW_S

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.max_hops <= MAX_MAX_HOPS:
            raise LocalProtocolError(f"max_hops must be in [1, {MAX_MAX_HOPS}]")
        if not 0 <= self.max_skew_s <= 300:
            raise LocalProtocolError("max_skew_s must be in [0, 300]")
        if self.epoch_s < self.max_lifetime_s + 2 * self.max_skew_s + EXP_GRANULARITY_S:
            # A circuit must expire before the epoch after next, so that a relay never
            # needs more than the current and previous epoch's secrets for data.
            raise LocalProtocolError("epoch_s must exceed the longest lifetime plus 2·skew")

    @property
    def max_lifetime_s(self) -> int:
        return max(LIFETIMES_S)

    def epoch_of(self, now: float) -> int:
        """The key epoch at time ``now``."""
        return int(now // self.epoch_s)

    def max_exp(self, now: float) -> float:
        """The latest EXP a relay accepts at ``now``: longest lifetime, rounding and skew."""
        return now + self.max_lifetime_s + EXP_GRANULARITY_S + self.max_skew_s

    @property
    def ahdr_len(self) -> int:
        """|AHDR| = r·c."""
        return self.max_hops * C

    @property
    def nested_ahdr_len(self) -> int:
        """A nested AHDR (rendezvous, Alg. 5): 2r·c."""
        return 2 * self.max_hops * C

    @property
    def rendezvous_header_len(self) -> int:
        """RH = FS_RP ‖ γ_RP ‖ AHDR^b: (r+1)·c (SPEC.md §6.2)."""
        return (self.max_hops + 1) * C

    @property
    def tag_array_len(self) -> int:
        return self.max_hops * TAG_LEN if self.profile is Profile.HARDENED else 0

    @property
    def sphinx_payload_size(self) -> int:
        """L for setup Sphinx headers: r frames of BigSize(14) ‖ TLV(2 ‖ R) ‖ HMAC(32)."""
        return self.max_hops * SETUP_HOP_FRAME

    @property
    def shdr_len(self) -> int:
        return self.sphinx_payload_size + 66

    @property
    def sp_plain_len(self) -> int:
        """Setup-payload plaintext: SHDR^b ‖ R^b_0 ‖ X_S (forward); P^f ‖ Y_D (backward)."""
        return max(self.shdr_len + NODE_ID_LEN + 33, self.ahdr_len + 33)

    @property
    def sp_len(self) -> int:
        """|SP| = plaintext + 16-byte AEAD tag."""
        return self.sp_plain_len + 16

    @property
    def setup_packet_len(self) -> int:
        return CHDR_LEN + self.shdr_len + self.sp_len + self.ahdr_len

    def data_packet_len(self, payload_size: int, *, nested: bool = False) -> int:
        header = self.nested_ahdr_len if nested else self.ahdr_len
        return CHDR_LEN + header + self.tag_array_len + payload_size

    def max_payload(
        self, path_mtu: int = ETHERNET_MTU, *, ipv6: bool = False, nested: bool = False
    ) -> int:
        """The largest payload class whose data packet (nested: a rendezvous packet,
        the larger of the two a rendezvous circuit carries) fits one link-encrypted UDP
        datagram on a path of ``path_mtu`` bytes, IPv4 or IPv6, without fragments."""
        ip_udp = UDP_IPV6_OVERHEAD if ipv6 else UDP_IPV4_OVERHEAD
        payload = path_mtu - ip_udp - LINK_OVERHEAD - self.data_packet_len(0, nested=nested)
        if payload < self.ahdr_len + 64:
            raise LocalProtocolError(f"a path MTU of {path_mtu} leaves no useful payload")
        return payload

    @property
    def default_payload_size(self) -> int:
        """The runtime's payload class for circuits: fits a 1500-byte IPv4 path."""
        return self.max_payload()

    @property
    def default_rendezvous_payload_size(self) -> int:
        """The runtime's payload class for hidden destinations (nested headers)."""
        return self.max_payload(nested=True)


#: One setup hop frame in the Sphinx header: BigSize(14) + TLV type 2, length 12, R + HMAC.
SETUP_HOP_FRAME: Final = 1 + 2 + ROUTE_LEN + 32
