"""Payment backends: vouchers, and the Core Lightning adapter against a fake RPC socket."""

from __future__ import annotations

import json
import random
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from hornet.credentials.payments import ClnPayments, VoucherPayments
from hornet.errors import LocalProtocolError, PaymentRequiredError


def test_voucher_mint_and_lookup(tmp_path: Path) -> None:
    vouchers = VoucherPayments(tmp_path / "v.db")
    rng = random.Random(1)
    code = vouchers.mint(25, rng)
    assert vouchers.paid_amount(code) == 25
    with pytest.raises(PaymentRequiredError):
        vouchers.paid_amount(bytes(32))
    with pytest.raises(PaymentRequiredError):
        vouchers.paid_amount(b"short")
    with pytest.raises(LocalProtocolError):
        vouchers.mint(0, rng)
    reopened = VoucherPayments(tmp_path / "v.db")  # durable
    assert reopened.paid_amount(code) == 25


class FakeLightningd:
    """A JSON-RPC 2.0 server on a unix socket answering like lightningd.

    Implements ``invoice``, ``listinvoices`` and ``waitinvoice`` over an in-memory
    invoice table; ``pay(label, msat)`` marks an invoice paid (what a payer would do).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.invoices: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._paid = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def pay(self, label: str, msat: int) -> None:
        with self._paid:
            inv = self.invoices[label]
            inv["status"] = "paid"
            inv["amount_received_msat"] = msat
            self._paid.notify_all()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        decoder = json.JSONDecoder()
        buf = ""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk.decode()
                while True:
                    buf = buf.lstrip()
                    try:
                        request, end = decoder.raw_decode(buf)
                    except ValueError:
                        break
                    buf = buf[end:]
                    reply = self._dispatch(request)
                    conn.sendall(json.dumps(reply).encode() + b"\n\n")

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", {})
        self.calls.append(method)
        if isinstance(params, list):
            params = {"label": params[0]} if params else {}
        if method == "invoice":
            label = params["label"]
            if label in self.invoices:
                return {"jsonrpc": "2.0", "id": request["id"],
                        "error": {"code": 900, "message": "Duplicate label"}}
            self.invoices[label] = {"label": label, "status": "unpaid",
                                    "amount_msat": params["amount_msat"],
                                    "payment_hash": "ab" * 32}
            result: dict[str, Any] = {"bolt11": "lnbcrt1fake" + label[-8:],
                                      "payment_hash": "ab" * 32, "expires_at": 0}
        elif method == "listinvoices":
            inv = self.invoices.get(params.get("label", ""))
            result = {"invoices": [inv] if inv else []}
        elif method == "waitinvoice":
            label = params["label"]
            with self._paid:
                if label not in self.invoices:
                    return {"jsonrpc": "2.0", "id": request["id"],
                            "error": {"code": -1, "message": "Unknown invoice"}}
                self._paid.wait_for(lambda: self.invoices[label]["status"] == "paid",
                                    timeout=10)
                result = dict(self.invoices[label])
        else:
            return {"jsonrpc": "2.0", "id": request["id"],
                    "error": {"code": -32601, "message": "Unknown command"}}
        return {"jsonrpc": "2.0", "id": request["id"], "result": result}

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def lightningd(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = FakeLightningd(tmp_path / "lightning-rpc")
    yield server
    server.close()


def test_cln_invoice_then_payment_turns_into_units(lightningd: FakeLightningd) -> None:
    cln = ClnPayments(lightningd.path, unit_msat=1000)
    invoice = cln.create_invoice(12, rng=random.Random(2))
    assert invoice.units == 12 and invoice.bolt11.startswith("lnbcrt1")
    label = ClnPayments.label(invoice.payment_id)
    assert lightningd.invoices[label]["amount_msat"] == 12_000
    with pytest.raises(PaymentRequiredError):
        cln.paid_amount(invoice.payment_id)  # not paid yet
    threading.Timer(0.05, lightningd.pay, args=(label, 12_000)).start()
    assert cln.wait_paid(invoice.payment_id) == 12
    assert cln.paid_amount(invoice.payment_id) == 12
    assert lightningd.calls.count("invoice") == 1 and "waitinvoice" in lightningd.calls


def test_cln_unknown_invoice_is_payment_required(lightningd: FakeLightningd) -> None:
    cln = ClnPayments(lightningd.path, unit_msat=1000)
    with pytest.raises(PaymentRequiredError):
        cln.paid_amount(bytes(32))
    with pytest.raises(PaymentRequiredError):
        cln.wait_paid(bytes(32))
