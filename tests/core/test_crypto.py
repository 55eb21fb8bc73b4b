"""hornet.core.crypto against published test vectors, one test per primitive.

Every vector file lives in ``tests/vectors/crypto/`` and names its source in its header
(NIST CAVP, RFC 3686, 4231, 5869, 8439, BIP-340, BOLT 4). The files are read here and
every vector in them is checked: a primitive that disagrees with its standard on one
byte fails. The two hornet constructions without a published vector (``derive_keys`` and
``Prp256``) are checked against their definitions, written out here over ``AesBlock``,
which the NIST vectors pin.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from pathlib import Path

import pytest

from hornet.core import crypto
from hornet.errors import IntegrityError, InvalidPointError, LocalProtocolError

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "crypto"


def read_vectors(name: str) -> list[dict[str, str]]:
    """The ``Key = value`` blocks of a NIST-style vector file.

    Blocks are separated by blank lines; ``#`` lines are comments. A ``[Name = value]``
    line sets an attribute of every following block, a ``[NAME]`` line sets ``mode``, and
    a bare word (``FAIL``) is a flag with an empty value.
    """
    blocks: list[dict[str, str]] = []
    section: dict[str, str] = {}
    current: dict[str, str] = {}
    for raw in [*(VECTORS / name).read_text().splitlines(), ""]:  # "" ends the last block
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            if current:
                blocks.append({**section, **current})
                current = {}
            continue
        if line.startswith("["):
            inner = line[1:-1]
            if "=" in inner:
                key, _, value = inner.partition("=")
                section[key.strip()] = value.strip()
            else:
                section["mode"] = inner
            continue
        key, sep, value = line.partition("=")
        current[key.strip()] = value.strip() if sep else ""
    assert blocks, f"no vectors in {name}"
    return blocks


def _b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


# --------------------------------------------------------------------------------------
# Hashes and MACs


def test_sha256_matches_the_nist_short_messages() -> None:
    vectors = read_vectors("sha256.rsp")
    for v in vectors:
        message = _b(v["Msg"])[: int(v["Len"]) // 8]
        assert crypto.sha256(message) == _b(v["MD"]), v["Len"]
    assert len(vectors) == 65


def test_hmac_sha256_and_the_truncated_mac_match_rfc_4231() -> None:
    vectors = read_vectors("hmac-sha256.txt")
    for v in vectors:
        key, message, expected = _b(v["Key"]), _b(v["Msg"]), _b(v["MD"])
        if v.get("Truncate") == "128":
            assert crypto.mac16(key, message) == expected
        else:
            assert crypto.hmac_sha256(key, message) == expected
            assert crypto.mac16(key, message) == expected[:16]
    assert sum(v.get("Truncate") == "128" for v in vectors) == 1
    assert len(vectors) == 7


def test_ct_equal_tells_equal_tags_from_tags_that_differ_in_one_bit() -> None:
    for v in read_vectors("hmac-sha256.txt"):
        tag = _b(v["MD"])
        assert crypto.ct_equal(tag, bytes(tag))
        assert not crypto.ct_equal(tag, tag[:-1] + bytes([tag[-1] ^ 1]))
        assert not crypto.ct_equal(tag, tag[:-1])


def test_xor_bytes_is_bytewise_exclusive_or() -> None:
    for v in read_vectors("aes-ctr.txt"):
        plain, cipher = _b(v["PLAINTEXT"]), _b(v["CIPHERTEXT"])
        assert crypto.xor_bytes(plain, cipher) == bytes(p ^ c for p, c in zip(plain, cipher,
                                                                             strict=True))
    assert crypto.xor_bytes(b"\x00\x01", b"\xff\x01") == b"\xff\x00"  # leading zero kept


# --------------------------------------------------------------------------------------
# AES


def test_aes_block_matches_the_nist_known_answers_both_ways() -> None:
    vectors = read_vectors("aes-128-ecb.rsp")
    for v in vectors:
        block = crypto.AesBlock(_b(v["KEY"]))
        plain, cipher = _b(v["PLAINTEXT"]), _b(v["CIPHERTEXT"])
        assert block.encrypt(plain) == cipher
        assert block.decrypt(cipher) == plain
    assert len(vectors) == 14 + 42 + 256


def test_derive_keys_are_aes_of_the_counter_blocks_one_to_count() -> None:
    for v in read_vectors("aes-128-ecb.rsp")[:40]:
        key = _b(v["KEY"])
        block = crypto.AesBlock(key)
        expected = [block.encrypt(i.to_bytes(16, "big")) for i in range(1, 9)]
        assert crypto.derive_keys(key, 8) == expected


def _feistel_reference(key: bytes, block: bytes) -> bytes:
    """Prp256 by its definition: 4 Luby–Rackoff rounds L, R -> R, L xor AES_{k_i}(R)."""
    rounds = [crypto.AesBlock(k) for k in crypto.derive_keys(key, 4)]
    left, right = block[:16], block[16:]
    for aes in rounds:
        left, right = right, crypto.xor_bytes(left, aes.encrypt(right))
    return left + right


def test_prp256_is_the_four_round_feistel_and_inverts() -> None:
    for v in read_vectors("aes-128-ecb.rsp")[:40]:
        key = _b(v["KEY"])
        block = _b(v["PLAINTEXT"]) + _b(v["CIPHERTEXT"])  # 32 bytes of vector data
        prp = crypto.Prp256(key)
        sealed = prp.encrypt(block)
        assert sealed == _feistel_reference(key, block)
        assert prp.decrypt(sealed) == block
        # One flipped bit in either half changes both halves of the output.
        for flip in (0, 31):
            changed = bytearray(block)
            changed[flip] ^= 1
            other = prp.encrypt(bytes(changed))
            assert other[:16] != sealed[:16] and other[16:] != sealed[16:]


def test_aes_ctr_matches_rfc_3686() -> None:
    vectors = read_vectors("aes-ctr.txt")
    for v in vectors:
        key, iv = _b(v["KEY"]), _b(v["IV"])
        plain, cipher = _b(v["PLAINTEXT"]), _b(v["CIPHERTEXT"])
        assert crypto.aes_ctr_xor(key, iv, plain) == cipher
        assert crypto.aes_ctr_xor(key, iv, cipher) == plain
        assert crypto.xor_bytes(crypto.aes_ctr_stream(key, len(plain), iv), plain) == cipher
        cached = crypto.AesCtr(key)
        assert cached.xor(iv, plain) == cipher
        assert cached.xor(iv, plain) == cipher  # the counter restarts at iv on every call
    assert len(vectors) == 6


@pytest.mark.parametrize(
    ("name", "aead"), [("aes-128-gcm.rsp", crypto.AesGcm), ("aes-256-gcm.rsp", crypto.Aes256Gcm)]
)
def test_aes_gcm_matches_the_nist_vectors(name: str, aead: type[crypto.Aes256Gcm]) -> None:
    vectors = read_vectors(name)
    failures = 0
    for v in vectors:
        sealer = aead(_b(v["Key"]))
        nonce, aad = _b(v["IV"]), _b(v["AAD"])
        sealed = _b(v["CT"]) + _b(v["Tag"])
        if v["mode"] == "ENCRYPT":
            assert sealer.seal(nonce, _b(v["PT"]), aad) == sealed
            assert sealer.open(nonce, sealed, aad) == _b(v["PT"])
        elif "FAIL" in v:
            failures += 1
            with pytest.raises(IntegrityError):
                sealer.open(nonce, sealed, aad)
        else:
            assert sealer.open(nonce, sealed, aad) == _b(v["PT"])
    assert failures > 10
    assert len(vectors) == 25 * (3 + 5)


@pytest.mark.parametrize(("aead", "size"), [(crypto.AesGcm, 16), (crypto.Aes256Gcm, 32)])
def test_aes_gcm_keys_of_another_size_are_refused(aead: type[crypto.Aes256Gcm],
                                                  size: int) -> None:
    for wrong in (size - 1, size + 1, 48 - size):
        with pytest.raises(LocalProtocolError):
            aead(bytes(wrong))
    with pytest.raises(IntegrityError):
        aead(bytes(size)).open(bytes(12), bytes(15), None)  # shorter than a tag


# --------------------------------------------------------------------------------------
# ChaCha20 and ChaCha20-Poly1305


def test_chacha20_matches_rfc_8439() -> None:
    vectors = read_vectors("chacha20.txt")
    for v in vectors:
        key, nonce = _b(v["KEY"]), _b(v["NONCE"])
        plain, cipher = _b(v["PLAINTEXT"]), _b(v["CIPHERTEXT"])
        skip = 64 * int(v["INITIAL_BLOCK_COUNTER"])  # a later counter: that far into the stream
        assert crypto.chacha20_xor(key, bytes(skip) + plain, nonce)[skip:] == cipher
        if nonce == bytes(12):
            stream = crypto.chacha20_stream(key, skip + len(plain))[skip:]
            assert crypto.xor_bytes(stream, plain) == cipher
    assert len(vectors) == 3


def test_chacha20poly1305_matches_rfc_8439_and_refuses_tampering() -> None:
    vectors = read_vectors("chacha20poly1305.txt")
    refused = 0
    for v in vectors:
        key, nonce, aad = _b(v["Key"]), _b(v["IV"]), _b(v["AAD"])
        sealed = _b(v["Ciphertext"]) + _b(v["Tag"])
        if v.get("Result") == "CIPHERFINAL_ERROR":
            refused += 1
            with pytest.raises(IntegrityError):
                crypto.chacha20poly1305_decrypt(key, nonce, sealed, aad)
            continue
        plain = _b(v["Plaintext"])
        assert crypto.chacha20poly1305_encrypt(key, nonce, plain, aad) == sealed
        assert crypto.chacha20poly1305_decrypt(key, nonce, sealed, aad) == plain
    assert refused >= 1
    assert len(vectors) - refused >= 1


# --------------------------------------------------------------------------------------
# HKDF (BOLT 8)


def test_hkdf_matches_rfc_5869_with_an_empty_info() -> None:
    vectors = read_vectors("hkdf-sha256.txt")
    for v in vectors:
        assert v["info"] == ""
        first, second = crypto.hkdf_sha256_pair(_b(v["salt"]), _b(v["IKM"]))
        assert (first + second)[: int(v["L"])] == _b(v["OKM"])
        assert hmac.digest(_b(v["salt"]), _b(v["IKM"]), "sha256") == _b(v["PRK"])
    assert len(vectors) == 1


# --------------------------------------------------------------------------------------
# secp256k1


def _compressed(qx: str, qy: str) -> bytes:
    return bytes([2 + (int(qy, 16) & 1)]) + _b(qx.rjust(64, "0"))


def _der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # room for a sign bit
    return b"\x02" + bytes([len(body)]) + body


def _der_signature(r: int, s: int) -> bytes:
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


def _secret(hex_text: str) -> bytes:
    return _b(hex_text.rjust(64, "0"))


def test_public_keys_match_the_k256_vectors() -> None:
    vectors = read_vectors("secp256k1-ecdsa-sha256.txt")
    for v in vectors:
        public = _compressed(v["Qx"], v["Qy"])
        assert crypto.pubkey_from_secret(_secret(v["d"])) == public
        assert crypto.SecretKey(_secret(v["d"])).public_key == public
        assert crypto.validate_pubkey(public) == public
    assert len(vectors) == 40


def test_ecdsa_verifies_the_k256_vectors_in_low_s_form_only() -> None:
    order = crypto.SECP256K1_ORDER
    high = 0
    for v in read_vectors("secp256k1-ecdsa-sha256.txt"):
        public = _compressed(v["Qx"], v["Qy"])
        digest = hashlib.sha256(_b(v["Msg"])).digest()
        r, s = int(v["R"], 16), int(v["S"], 16)
        low_s = min(s, order - s)
        crypto.ecdsa_verify(public, _der_signature(r, low_s), digest)
        if low_s != s:
            high += 1  # the same signature with the high s: libsecp256k1 refuses it
            with pytest.raises(IntegrityError):
                crypto.ecdsa_verify(public, _der_signature(r, s), digest)
        with pytest.raises(IntegrityError):
            crypto.ecdsa_verify(public, _der_signature(r, low_s), bytes(32))
    assert high > 0


def test_ecdsa_signatures_verify_and_bind_the_digest() -> None:
    for v in read_vectors("secp256k1-ecdsa-sha256.txt")[:8]:
        secret = _secret(v["d"])
        digest = hashlib.sha256(_b(v["Msg"])).digest()
        signature = crypto.ecdsa_sign(secret, digest)
        public = crypto.pubkey_from_secret(secret)
        crypto.ecdsa_verify(public, signature, digest)
        with pytest.raises(IntegrityError):
            crypto.ecdsa_verify(public, signature, bytes(a ^ 1 for a in digest))


def _bip340_rows() -> list[dict[str, str]]:
    lines = [line for line in (VECTORS / "bip340.csv").read_text().splitlines()
             if not line.startswith("#") and line]
    return list(csv.DictReader(lines))


def test_bip340_signs_and_verifies_its_test_vectors() -> None:
    rows = _bip340_rows()
    signed = 0
    for row in rows:
        xonly, message, signature = (_b(row["public key"]), _b(row["message"]),
                                     _b(row["signature"]))
        if row["secret key"]:
            signed += 1
            secret = _b(row["secret key"])
            assert crypto.schnorr_sign(secret, message, _b(row["aux_rand"])) == signature
            assert crypto.xonly_pubkey(crypto.pubkey_from_secret(secret)) == xonly
        if row["verification result"] == "TRUE":
            crypto.schnorr_verify(xonly, signature, message)
        else:
            with pytest.raises(IntegrityError):
                crypto.schnorr_verify(xonly, signature, message)
    assert (signed, len(rows)) == (4, 15)


def test_points_off_the_curve_are_refused() -> None:
    off_curve = [row for row in _bip340_rows() if "not on the curve" in row["comment"]
                 or "exceeds the field size" in row["comment"]]
    assert len(off_curve) == 2
    for row in off_curve:
        for prefix in (b"\x02", b"\x03"):
            point = prefix + _b(row["public key"])
            with pytest.raises(InvalidPointError):
                crypto.validate_pubkey(point)
            with pytest.raises(InvalidPointError):
                crypto.ecdh(bytes(31) + b"\x01", point)


def test_sphinx_shared_secrets_match_bolt_4() -> None:
    session, *hops = read_vectors("bolt04-sphinx-shared-secrets.txt")
    session_key = _b(session["session_key"])
    pubkeys = [_b(hop["pubkey"]) for hop in hops]
    first_ephemeral, secrets = crypto.sphinx_path_secrets(session_key, pubkeys)
    assert secrets == [_b(hop["shared_secret"]) for hop in hops]
    assert first_ephemeral == crypto.pubkey_from_secret(session_key)
    assert crypto.ecdh(session_key, pubkeys[0]) == secrets[0]
    assert len(hops) == 5


def test_route_blinding_keys_match_bolt_4() -> None:
    hops = read_vectors("bolt04-route-blinding.txt")
    chained = 0
    for hop in hops:
        node_id, path_privkey = _b(hop["node_id"]), _b(hop["path_privkey"])
        path_key = crypto.pubkey_from_secret(path_privkey)
        assert path_key == _b(hop["path_key"])
        shared = crypto.ecdh(path_privkey, node_id)
        assert shared == _b(hop["shared_secret"])
        blinding = crypto.hmac_sha256(b"blinded_node_id", shared)
        assert crypto.pubkey_tweak_mul(node_id, blinding) == _b(hop["blinded_node_id"])
        if "next_path_privkey" in hop:
            chained += 1
            tweak = crypto.sha256(path_key + shared)
            assert crypto.secret_tweak_mul(path_privkey, tweak) == _b(hop["next_path_privkey"])
    assert (len(hops), chained) == (4, 2)
