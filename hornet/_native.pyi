"""Type stub for the native data plane (the Rust crate in ``native/``; see core/engine.py)."""

__version__: str

class DataPlane:
    def __init__(
        self,
        *,
        max_hops: int,
        hardened: bool,
        authenticated_tags: bool,
        epoch_s: int,
        skew: int,
        fs_tail: int,
        cache_size: int,
        replay_filter: tuple[int, int, int] | None,
    ) -> None: ...
    def set_epoch(self, epoch: int, prp_key: bytes) -> None: ...
    @property
    def cached_circuits(self) -> int: ...
    @property
    def replay_memory_bytes(self) -> int: ...
    def process(self, packet: bytes, now: float) -> tuple[object, ...]: ...

class ForwardOnion:
    def __init__(
        self,
        *,
        hardened: bool,
        authenticated_tags: bool,
        hop_keys: list[tuple[bytes, bytes, bytes]],
        max_hops: int,
    ) -> None: ...
    def wrap(self, iv: bytes, message: bytes, padding: bytes) -> tuple[bytes, bytes, bytes]: ...

class BackwardOnion:
    def __init__(self, hop_keys: list[tuple[bytes, bytes]]) -> None: ...
    def unwrap(self, iv: bytes, payload: bytes) -> bytes: ...

class Aes256Gcm:
    def __init__(self, key: bytes) -> None: ...
    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes: ...
    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes | None = None) -> bytes: ...
