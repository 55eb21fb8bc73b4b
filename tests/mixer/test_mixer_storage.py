"""The machine's storage actions and their executor (actions.py, storage.py, service.py):
nothing paid takes effect before its commit result, and a slow commit does not stall
the event loop."""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import trio
from mixer_kit import destination, make_kit

from hornet.core import crypto
from hornet.core.onion_message import (
    DeliverMessage,
    create_message_path,
    create_onion_message,
    process_onion_message,
)
from hornet.errors import DoubleSpendError
from hornet.mixer.actions import (
    CommitRefused,
    CommitRequest,
    CommitSpends,
    RequestCommitted,
    SpendsCommitted,
    StorageAction,
    StorageResult,
    Transmit,
)
from hornet.mixer.protocol import Status
from hornet.mixer.service import MixerService
from hornet.mixer.session import MixerReply, ScidRegistration
from hornet.mixer.storage import MixerStorage
from hornet.mixer.transport import MemoryHub
from hornet.testing.ldk import APP_TLV


def test_a_paid_message_is_not_forwarded_before_its_spends_commit(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    dest_key, dest_path = destination(kit.rng)
    session = kit.funded_session()
    machine = kit.core.machine
    outgoing = session.send_message(dest_path, [(APP_TLV, b"paid")], kit.rng)
    actions = machine.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    actions += machine.flush(kit.now) + machine.poll(kit.now)
    assert not [a for a in actions if isinstance(a, Transmit)]
    (commit,) = [a for a in actions if isinstance(a, CommitSpends)]
    assert machine.in_flight >= 1 and machine.statistics()["paid_messages"] == 0
    # Nothing is forwarded until the result; then exactly the message.
    sent = machine.storage_done(kit.core.storage.execute(commit), kit.now)
    assert [a.peer for a in sent if isinstance(a, Transmit)] == [dest_key.public_key]
    assert machine.statistics()["paid_messages"] == 1


def test_a_spend_the_store_refuses_is_never_forwarded(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    machine = kit.core.machine
    outgoing = session.send_message(dest_path, [(APP_TLV, b"restored")], kit.rng)
    machine.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    (commit,) = machine.flush(kit.now)
    assert isinstance(commit, CommitSpends)
    # The store answers "already spent" (e.g. by another mixer process on the same store).
    refused = SpendsCommitted(commit.commit_id, (False,) * len(commit.batches[0].serials))
    assert machine.storage_done(refused, kit.now) == []
    assert machine.statistics()["dropped_double_spend"] == 1
    assert machine.statistics()["paid_messages"] == 0


def test_a_serial_presented_again_while_its_commit_is_in_flight_is_refused(
        tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    machine = kit.core.machine
    outgoing = session.send_message(dest_path, [(APP_TLV, b"once")], kit.rng)
    machine.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    (commit,) = machine.flush(kit.now)
    assert isinstance(commit, CommitSpends)
    # The replay arrives before the first commit's result: refused at once, no commit.
    assert machine.handle(session.node_id, outgoing.message, kit.now, kit.rng) == []
    assert machine.flush(kit.now) == []
    assert machine.statistics()["dropped_double_spend"] == 1
    sent = machine.storage_done(kit.core.storage.execute(commit), kit.now)
    assert len([a for a in sent if isinstance(a, Transmit)]) == 1


def test_a_refused_paid_registration_grants_no_scid_and_leaves_no_row(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    machine = kit.core.machine
    _, outgoing = session.register_request(kit.rng)
    actions = machine.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    (commit,) = [a for a in actions if isinstance(a, CommitRequest)]
    assert commit.scid is not None and commit.scid.insert is not None
    assert not [a for a in actions if isinstance(a, Transmit)]  # no answer yet
    assert len(machine.book) == 0
    # Spend the same serials elsewhere first: the store refuses the request's commit.
    assert commit.epoch is not None
    kit.core.ledger.record_batch(commit.epoch, commit.serials)
    result = kit.core.storage.execute(commit)
    assert isinstance(result, CommitRefused) and isinstance(result.error, DoubleSpendError)
    answer = machine.storage_done(result, kit.now)
    reply = session.receive(next(a.message for a in answer if isinstance(a, Transmit)))
    assert isinstance(reply, MixerReply) and reply.error is not None
    assert reply.error.status == Status.DOUBLE_SPEND  # type: ignore[attr-defined]
    assert len(machine.book) == 0
    kit.restart()  # the SCID store holds no row for the refused registration
    assert kit.core.book.registrations() == []


def test_a_paid_registration_answers_only_after_its_commit(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    session = kit.funded_session()
    machine = kit.core.machine
    _, outgoing = session.register_request(kit.rng)
    (commit,) = machine.handle(session.node_id, outgoing.message, kit.now, kit.rng)
    assert isinstance(commit, CommitRequest)
    result = kit.core.storage.execute(commit)
    assert result == RequestCommitted(commit.commit_id, None)
    answer = machine.storage_done(result, kit.now)
    reply = session.receive(next(a.message for a in answer if isinstance(a, Transmit)))
    assert isinstance(reply, MixerReply) and isinstance(reply.result, ScidRegistration)
    assert len(machine.book) == 1


@attrs.define
class _GatedStorage(MixerStorage):
    """Blocks every CommitSpends until ``gate`` is set (an fsync that takes long)."""

    gate: threading.Event = attrs.field(factory=threading.Event)
    done: threading.Event = attrs.field(factory=threading.Event)

    def execute(self, action: StorageAction) -> StorageResult:
        if isinstance(action, CommitSpends):
            self.gate.wait(timeout=5.0)
            self.done.set()
        return super().execute(action)


async def test_a_slow_commit_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    free_key = crypto.SecretKey.from_rng(kit.rng)
    free_path = create_message_path(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                                    [kit.mixer_id, free_key.public_key])
    session = kit.funded_session()
    storage = kit.core.storage
    gated = _GatedStorage(storage.ledger, storage.credentials, storage.scid_store)
    kit.core.storage = gated
    gate = gated.gate
    hub = MemoryHub()
    client = hub.attach(session.node_id)
    free_sink = hub.attach(free_key.public_key)
    hub.attach(dest_path.first_node_id)
    service = MixerService(kit.core, hub.attach(kit.mixer_id), clock=lambda: kit.now,
                           rng=kit.rng)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.serve)
            paid = session.send_message(dest_path, [(APP_TLV, b"paid")], kit.rng)
            await client.send(kit.mixer_id, paid.message)
            with trio.fail_after(3):
                while service.statistics().commits_in_flight == 0:
                    await trio.sleep(0.01)
            # While the group commit is blocked in its worker thread, the mixer keeps
            # forwarding: a free message goes through before the commit finishes.
            free = create_onion_message(crypto.SecretKey.from_rng(kit.rng).secret_bytes(),
                                        free_path, payload=[(APP_TLV, b"free")])
            await client.send(kit.mixer_id, free.message)
            with trio.fail_after(3):
                _, message = await free_sink.receive()
            assert not gated.done.is_set()
            delivered = process_onion_message(free_key, message)
            assert isinstance(delivered, DeliverMessage)
            assert dict(delivered.payload)[APP_TLV] == b"free"
            gate.set()
            with trio.fail_after(3):
                while service.statistics().get("paid_messages", 0) < 1:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    finally:
        gate.set()


def test_spends_arriving_during_a_commit_share_the_next_one(tmp_path: Path) -> None:
    kit = make_kit(tmp_path)
    _, dest_path = destination(kit.rng)
    session = kit.funded_session()
    machine = kit.core.machine
    messages = [session.send_message(dest_path, [(APP_TLV, b"%d" % i)], kit.rng).message
                for i in range(4)]
    machine.handle(session.node_id, messages[0], kit.now, kit.rng)
    (first,) = machine.flush(kit.now)
    for message in messages[1:]:
        machine.handle(session.node_id, message, kit.now, kit.rng)
        assert machine.flush(kit.now) == []  # the batch fills while the commit runs
    assert machine.pending == 3
    assert machine.next_wakeup(kit.now) is None  # nothing to do until the result
    after = machine.storage_done(kit.core.storage.execute(first), kit.now)
    (second,) = [a for a in after if isinstance(a, CommitSpends)]
    assert sum(len(b.serials) for b in second.batches) == 3
    sent = machine.storage_done(kit.core.storage.execute(second), kit.now)
    assert len([a for a in sent if isinstance(a, Transmit)]) == 3
    assert machine.statistics()["paid_messages"] == 4
