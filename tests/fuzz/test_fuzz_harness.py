"""The fuzz harness in the default run: every target builds its world, its seeds reach
the deep code paths, and 200 generated inputs pass without breaking the invariant (the
long runs are ``test_fuzz.py``, marked ``fuzz``)."""

from __future__ import annotations

import pytest
from fuzzkit import OPS, FuzzRun, apply_op, mutator_for
from targets import NAMES, make_target

SHORT_RUN = 200


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_target_seeds_go_deep_and_a_short_run_holds_the_invariant(name: str) -> None:
    target = make_target(name)
    assert target.seeds(), "a target without valid inputs only fuzzes its first checks"
    run = FuzzRun(target, expected=SHORT_RUN, driver="smoke")
    for seed in target.seeds():
        run.feed(seed)
    missing = [o for o in target.deep_outcomes() if not target.outcomes[o]]
    assert not missing, f"the seeds never reached {missing}: {dict(target.outcomes)}"
    mutator = mutator_for(target, seed=1)
    while run.distinct < len(target.seeds()) + SHORT_RUN:
        run.feed(mutator.next())
    summary = run.finish()
    assert summary["inputs"] >= SHORT_RUN
    assert sum(target.calls.values()) >= SHORT_RUN * len(target.entry_points) // 2
    assert not summary["violations"]


def test_every_mutation_operator_changes_or_keeps_bytes_deterministically() -> None:
    data, other = bytes(range(40)), b"\xaa" * 10
    for op in OPS:
        once = apply_op(data, op, 13, 517, b"blob", other)
        assert once == apply_op(data, op, 13, 517, b"blob", other)
        assert apply_op(b"", op, 13, 517, b"blob", other) is not None
    assert apply_op(data, "flip", 0, 0, b"", other) == b"\x01" + data[1:]
    assert apply_op(data, "truncate", 5, 0, b"", other) == data[:5]
    assert apply_op(data, "splice", 4, 8, b"", other) == data[:4] + other[8:]
