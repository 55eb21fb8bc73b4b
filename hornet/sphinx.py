"""Public Sphinx API (BOLT 4-compatible): ``from hornet.sphinx import create_onion, peel_onion``.

The implementation lives in the sans-IO core, ``hornet.core.sphinx``.
"""

from hornet.core.crypto import SecretKey
from hornet.core.onion_message import create_message_path, create_onion_message
from hornet.core.sphinx import (
    DEFAULT_PAYLOAD_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_PAYLOAD_SIZE,
    ONION_MESSAGE_LARGE_PAYLOAD_SIZE,
    PeeledOnion,
    create_onion,
    hop_frame_size,
    packet_size,
    peel_onion,
)

__all__ = [
    "DEFAULT_PAYLOAD_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MIN_PAYLOAD_SIZE",
    "ONION_MESSAGE_LARGE_PAYLOAD_SIZE",
    "PeeledOnion",
    "SecretKey",
    "create_message_path",
    "create_onion",
    "create_onion_message",
    "hop_frame_size",
    "packet_size",
    "peel_onion",
]
