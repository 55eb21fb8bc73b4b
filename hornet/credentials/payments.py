"""Payment backends: turn "paid N units" into an issuance.

Strategy: a backend answers one question, ``paid_amount(payment_id) -> units``. It
does not enforce one-time use: ``SpentSerialStore.record`` claims the payment id in
the same transaction that caches the issuance response, so a payment id buys exactly
one issuance (an identical retry gets the same response).

- ``VoucherPayments``: the operator mints one-time voucher codes (32 random bytes,
  handed out of band); only SHA-256(code) and the amount are stored, in the same
  SQLite database as the spent serials. The voucher code is the payment id.
- ``ClnPayments``: a Core Lightning node through ``pyln-client`` (imported lazily:
  ``pip install hornet-onion[lightning]``). ``create_invoice`` makes a BOLT 11 invoice
  labelled ``hornet-<payment id hex>``; the client pays it and sends the payment id
  in its issuance request; ``paid_amount`` reads the invoice status
  (``listinvoices``) and ``wait_paid`` blocks on ``waitinvoice``.

Invariants: plain synchronous code; randomness passed in; voucher codes never logged.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from hornet.credentials.transcript import Rng
from hornet.errors import LocalProtocolError, PaymentRequiredError

PAYMENT_ID_LEN: Final = 32
_VOUCHER_TAG: Final = b"hornet/credentials/v1/voucher"
_LABEL_PREFIX: Final = "hornet-"


class PaymentBackend(Protocol):
    """Turns "paid N" into an issuance: how much a payment id has paid (in units)."""

    def paid_amount(self, payment_id: bytes) -> int:
        """Units paid for ``payment_id``; raise ``PaymentRequiredError`` if none."""
        ...


def _check_payment_id(payment_id: bytes) -> None:
    if len(payment_id) != PAYMENT_ID_LEN:
        raise PaymentRequiredError("payment id must be 32 bytes")


class VoucherPayments:
    """One-time voucher codes minted by the operator (local use and tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vouchers (code BLOB PRIMARY KEY, amount INTEGER NOT NULL)"
            " WITHOUT ROWID"
        )

    def mint(self, amount: int, rng: Rng) -> bytes:
        """A new voucher code worth ``amount`` units (give it to the buyer, keep no copy)."""
        if amount <= 0 or amount >= (1 << 62):
            raise LocalProtocolError("voucher amount must be positive")
        code = rng.randbytes(PAYMENT_ID_LEN)
        with self._lock:
            self._conn.execute("INSERT INTO vouchers VALUES (?, ?)", (self._key(code), amount))
        return code

    @staticmethod
    def _key(code: bytes) -> bytes:
        return hashlib.sha256(_VOUCHER_TAG + code).digest()

    def paid_amount(self, payment_id: bytes) -> int:
        _check_payment_id(payment_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT amount FROM vouchers WHERE code = ?", (self._key(payment_id),)
            ).fetchone()
        if row is None:
            raise PaymentRequiredError("unknown voucher")
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"VoucherPayments({self.path!r})"


@attrs.frozen
class Invoice:
    """A Lightning invoice for ``units``; the client pays ``bolt11`` then sends ``payment_id``
    (a bearer secret once paid: kept out of ``repr``)."""

    payment_id: bytes = attrs.field(repr=False)
    bolt11: str
    units: int
    payment_hash: str


class ClnPayments:
    """Core Lightning adapter over its JSON-RPC unix socket (``pyln-client``).

    ``unit_msat`` is the price of one credential unit in millisatoshi. ``rpc`` may be
    passed in (any object with ``invoice``/``listinvoices``/``waitinvoice``);
    otherwise ``pyln.client.LightningRpc(rpc_path)`` is created lazily.
    """

    def __init__(self, rpc_path: str | Path | None = None, *, unit_msat: int,
                 rpc: Any = None) -> None:
        if unit_msat <= 0:
            raise LocalProtocolError("unit_msat must be positive")
        if rpc is None:
            if rpc_path is None:
                raise LocalProtocolError("give rpc_path or rpc")
            from pyln.client import LightningRpc  # noqa: PLC0415  (optional dependency)

            rpc = LightningRpc(str(rpc_path))
        self._rpc = rpc
        self.unit_msat = unit_msat

    @staticmethod
    def label(payment_id: bytes) -> str:
        return _LABEL_PREFIX + payment_id.hex()

    def create_invoice(self, units: int, *, rng: Rng, description: str = "hornet credits",
                       expiry_s: int = 3600) -> Invoice:
        """``invoice`` RPC for ``units`` × ``unit_msat``, labelled by a fresh payment id."""
        if units <= 0:
            raise LocalProtocolError("units must be positive")
        payment_id = rng.randbytes(PAYMENT_ID_LEN)
        result = self._rpc.invoice(
            amount_msat=units * self.unit_msat,
            label=self.label(payment_id),
            description=description,
            expiry=expiry_s,
        )
        return Invoice(payment_id, str(result["bolt11"]), units, str(result["payment_hash"]))

    def _units(self, invoice: Any) -> int:
        if not isinstance(invoice, dict) or invoice.get("status") != "paid":
            raise PaymentRequiredError("invoice is not paid")
        received: Any = invoice.get("amount_received_msat", invoice.get("amount_msat", 0))
        try:
            return int(received) // self.unit_msat
        except (TypeError, ValueError) as exc:
            raise PaymentRequiredError("invoice amount is unreadable") from exc

    def paid_amount(self, payment_id: bytes) -> int:
        """Units received for ``payment_id``'s invoice; ``PaymentRequiredError`` if unpaid."""
        _check_payment_id(payment_id)
        result = self._rpc.listinvoices(label=self.label(payment_id))
        invoices = result.get("invoices", []) if isinstance(result, dict) else []
        if not invoices:
            raise PaymentRequiredError("unknown invoice")
        return self._units(invoices[0])

    def wait_paid(self, payment_id: bytes) -> int:
        """Block until the invoice is paid (``waitinvoice``); raise if it expires."""
        _check_payment_id(payment_id)
        try:
            result = self._rpc.waitinvoice(self.label(payment_id))
        except Exception as exc:  # pyln RpcError: expired or deleted invoice
            raise PaymentRequiredError("invoice expired or unknown") from exc
        return self._units(result)

    def __repr__(self) -> str:
        return f"ClnPayments(unit_msat={self.unit_msat})"
