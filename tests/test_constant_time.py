"""MACs and tags are compared in constant time everywhere in hornet.

The attack this guards against is a timing oracle: a relay that compares a received MAC
with ``==`` returns sooner the earlier the first differing byte, so a forger learns the
right tag byte by byte. The test reads every module's syntax tree and fails on any ``==``
or ``!=`` whose operands name a MAC, tag, HMAC, digest or γ, unless it compares lengths or
is one of the listed comparisons of public bytes. Verification itself goes through
``hmac.compare_digest`` (``hornet.core.crypto.ct_equal``), which the second test checks
behaves as an equality.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hornet.core import crypto

PACKAGE = Path(__file__).resolve().parent.parent / "hornet"
SECRET_WORDS = {"mac", "macs", "tag", "tags", "hmac", "digest", "gamma", "γ"}


def _secret_looking(name: str) -> bool:
    """``next_hmac``, ``tag``, ``expected_mac``: a name with a MAC-like word in it."""
    return any(part in SECRET_WORDS for part in re.split(r"_+", name.lower()))


# Comparisons of bytes that are public on the wire, each with its reason.
PUBLIC = {
    # BOLT 4: an all-zero next HMAC marks the final hop; it is in the packet in the clear.
    "next_hmac == _ZERO_HMAC",
}


def _operand_names(node: ast.AST) -> list[str]:
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.append(sub.attr)
    return names


def _is_length_comparison(node: ast.Compare) -> bool:
    operands = [node.left, *node.comparators]
    return any(
        isinstance(o, ast.Call) and isinstance(o.func, ast.Name) and o.func.id == "len"
        for o in operands
    )


def test_no_mac_or_tag_is_compared_with_equality_operators() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            if _is_length_comparison(node) or ast.unparse(node) in PUBLIC:
                continue
            if any(_secret_looking(name) for name in _operand_names(node)):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                                 f"{ast.unparse(node)}")
    assert not offenders, "MACs/tags compared with ==/!= (use crypto.ct_equal):\n" + "\n".join(
        offenders
    )


def test_the_constant_time_comparison_is_an_equality() -> None:
    tag = bytes(range(16))
    assert crypto.ct_equal(tag, bytes(tag))
    for i in range(16):
        flipped = bytearray(tag)
        flipped[i] ^= 0x80
        assert not crypto.ct_equal(tag, bytes(flipped))
