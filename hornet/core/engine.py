"""Which engine runs the data plane: the native extension or the Python reference.

The per-packet functions exist twice, byte for byte alike: the readable reference in
``hornet.core`` (``relay.py``, ``onion.py``, ``replay.py``) and the compiled fast path in
``hornet._native`` (the Rust crate in ``native/``), built by ``pip install .`` when a Rust
toolchain is present. This module is the one place that chooses between them:

- ``active()`` names the engine new objects get: ``"native"`` when the extension is
  importable, else ``"python"``. ``hornet/__init__.py`` applies ``HORNET_ENGINE``
  (``python`` forces the reference, ``native`` insists on the extension) through ``use``.
- Objects choose once, when built (``Relay(..., engine=...)``, ``forward_onion``,
  ``backward_onion``); an explicit ``engine`` argument overrides the default, which is
  how the differential tests run both engines side by side.

Golden vectors and a differential fuzz test (``tests/core/test_engine.py``) hold the two
engines to the same bytes and the same decisions, drop reasons included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from hornet.core import onion
from hornet.core.fs import HopKeys
from hornet.core.params import Profile
from hornet.errors import LocalProtocolError

if TYPE_CHECKING:
    from hornet import _native

EngineName = Literal["native", "python"]
ENGINES: Final = ("native", "python")

try:
    from hornet import _native as native
except ImportError:  # built without a Rust toolchain: the reference engine only
    native = None  # type: ignore[assignment]

_active: EngineName = "native" if native is not None else "python"


def available() -> tuple[EngineName, ...]:
    """The engines this installation has."""
    return ("native", "python") if native is not None else ("python",)


def active() -> EngineName:
    return _active


def use(name: str) -> None:
    """Make ``name`` (``native``, ``python`` or ``auto``) the engine of new objects."""
    global _active  # noqa: PLW0603  (the one process-wide choice)
    if name == "auto":
        _active = "native" if native is not None else "python"
    elif name == "python":
        _active = "python"
    elif name == "native":
        if native is None:
            raise LocalProtocolError(
                "HORNET_ENGINE=native, but hornet._native was not built (no Rust toolchain "
                "at install time)"
            )
        _active = "native"
    else:
        raise LocalProtocolError(f"unknown engine {name!r}: use native, python or auto")


def resolve(engine: str | None) -> EngineName:
    """``engine``, or the active engine when None (checked against what is built)."""
    if engine is None:
        return _active
    if engine == "python":
        return "python"
    if engine == "native" and native is not None:
        return "native"
    raise LocalProtocolError(f"engine {engine!r} is not available here")


def describe() -> str:
    """One line for ``hornet info`` / ``--version``."""
    built = "built" if native is not None else "not built"
    return f"engine: {_active} (native extension {built})"


class ForwardWrap(Protocol):
    def wrap(self, iv: bytes, message: bytes, padding: bytes) -> tuple[bytes, bytes, bytes]: ...


class BackwardUnwrap(Protocol):
    def unwrap(self, iv: bytes, payload: bytes) -> bytes: ...


def forward_onion(
    profile: Profile, hop_keys: Sequence[HopKeys], max_hops: int, engine: str | None = None
) -> ForwardWrap:
    """The source's forward onion (``onion.ForwardOnion``) in the chosen engine."""
    if resolve(engine) == "python" or native is None:
        return onion.ForwardOnion(profile, hop_keys, max_hops)
    return native.ForwardOnion(
        hardened=profile is Profile.HARDENED,
        hop_keys=[(k.prp, k.enc, k.tag, k.gcm) for k in hop_keys],
        max_hops=max_hops,
    )


def backward_onion(hop_keys: Sequence[HopKeys], engine: str | None = None) -> BackwardUnwrap:
    """The source's backward onion (``onion.BackwardOnion``) in the chosen engine."""
    if resolve(engine) == "python" or native is None:
        return onion.BackwardOnion(hop_keys)
    return native.BackwardOnion([(k.prp, k.enc) for k in hop_keys])


def data_plane(
    engine: EngineName,
    *,
    max_hops: int,
    hardened: bool,
    epoch_s: int,
    skew: int,
    fs_tail: int,
    cache_size: int,
    replay_filter: tuple[int, int, int, int, int] | None,
    forward: type,
    deliver: type,
    drops: list[object],
) -> _native.DataPlane | None:
    """A relay's native data plane (``relay.Relay``), or None for the reference engine.
    ``forward``, ``deliver`` and ``drops`` (one ``Drop`` per reason, in the engine's
    order) are the results it returns."""
    if engine == "python" or native is None:
        return None
    return native.DataPlane(
        max_hops=max_hops,
        hardened=hardened,
        epoch_s=epoch_s,
        skew=skew,
        fs_tail=fs_tail,
        cache_size=cache_size,
        replay_filter=replay_filter,
        forward=forward,
        deliver=deliver,
        drops=drops,
    )


def link_session(
    send_key: bytes, receive_key: bytes, send_type: int, limit: int
) -> _native.LinkSession:
    """A link session's native data path (``hornet.link.channel.NativeChannelSession``)."""
    if native is None:
        raise LocalProtocolError("the native engine is not built")
    return native.LinkSession(send_key, receive_key, send_type, limit)


def relay_loop(fd: int, **kwargs: Any) -> _native.RelayLoop:
    """A native data loop on socket descriptor ``fd`` (``hornet.transport.native_loop``);
    ``kwargs`` are ``RelayLoop``'s."""
    if native is None:
        raise LocalProtocolError("the native engine is not built")
    return native.RelayLoop(fd, **kwargs)
