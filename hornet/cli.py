"""The ``hornet`` command line.

Each subcommand is a small function taking parsed arguments and returning an exit
code. User errors (bad files, bad arguments) print one clear line on stderr and exit
non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from hornet import __version__
from hornet.errors import HornetError
from hornet.sphinx import SecretKey, create_onion, peel_onion


def _cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new secp256k1 node key file (JSON, mode 0600) and print its public key."""
    path = Path(args.out)
    if path.exists() and not args.force:
        print(f"hornet keygen: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    key = SecretKey.from_rng(secrets.SystemRandom())
    body = json.dumps(
        {
            "type": "hornet-node-key",
            "secret": key.secret_bytes().hex(),
            "public_key": key.public_key.hex(),
        }
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(body + "\n")
    os.chmod(path, 0o600)
    print(key.public_key.hex())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build a BOLT 4 onion through ``--hops`` fresh nodes and peel it hop by hop."""
    rng = secrets.SystemRandom()
    nodes = [SecretKey.from_rng(rng) for _ in range(args.hops)]
    payloads = [bytes([0x02, 0x08]) + i.to_bytes(8, "big") for i in range(args.hops)]
    session = SecretKey.from_rng(rng).secret_bytes()
    onion: bytes | None = create_onion(
        session, [(n.public_key, p) for n, p in zip(nodes, payloads, strict=True)]
    )
    print(f"hornet {__version__}: Sphinx demo, {args.hops} hops")
    assert onion is not None
    print(f"built a {len(onion)}-byte BOLT 4 onion (ephemeral key {onion[1:34].hex()[:16]}…)")
    for index, node in enumerate(nodes):
        assert onion is not None
        peeled = peel_onion(node, onion)
        role = "final hop" if peeled.is_final else "forwards"
        node_id = node.public_key.hex()[:16]
        print(f"  hop {index}: node {node_id}… payload {peeled.payload.hex()} ({role})")
        onion = peeled.next_onion
    print("every hop recovered its own payload; the last one saw no next hop")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hornet",
        description="hornet: anonymous duplex circuits over HORNET onion routing (Sphinx/BOLT 4).",
    )
    parser.add_argument("--version", action="version", version=f"hornet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="create a node key file (mode 0600)")
    keygen.add_argument("--out", required=True, help="path of the key file to write")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.set_defaults(func=_cmd_keygen)

    demo = sub.add_parser("demo", help="run a self-contained demonstration and exit")
    demo.add_argument(
        "--hops", type=int, default=5, choices=range(1, 21), metavar="N",
        help="path length, 1-20 (default 5)",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except (HornetError, OSError) as exc:
        print(f"hornet {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]
