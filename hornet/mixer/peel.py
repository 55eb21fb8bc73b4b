"""Peeling one onion message (BOLT 4 §Onion Messages, reader), keeping what the mixer
needs: its own hop's ``encrypted_data_tlv`` (whose odd records carry a payment or a
bundle ticket) and the hash an ``onion_message_drop`` names the message by.
Sans-IO; raises only ``RemoteProtocolError``s on untrusted bytes.
"""

from __future__ import annotations

import attrs

from hornet.core import crypto
from hornet.core.blinding import EncryptedData
from hornet.core.onion_message import OnionMessagePayload, peel_onion_message
from hornet.mixer.protocol import shared_secret_hash


@attrs.frozen
class PeeledMessage:
    """One hop's view: our decrypted ``encrypted_data_tlv``, the ``onionmsg_tlv``, the
    message for the next hop (None if we are final) and the onion_message_drop hash."""

    path_key: bytes
    data: EncryptedData
    tlv: OnionMessagePayload = attrs.field(repr=False)  # a request may carry a payment id
    next_message: bytes | None = attrs.field(repr=False)
    ss_hash: bytes = attrs.field(repr=False, eq=False)


def peel_message(node_key: crypto.SecretKey, message: bytes) -> PeeledMessage:
    """``process_onion_message`` that also returns the hop's ``encrypted_data_tlv``
    (its odd records carry the mixer payment). Raises only ``RemoteProtocolError``s."""
    peeled = peel_onion_message(node_key, message)
    return PeeledMessage(peeled.path_key, peeled.data, peeled.tlv, peeled.next_message,
                         shared_secret_hash(peeled.shared_secret))


__all__ = ["PeeledMessage", "peel_message"]
