"""The long fuzz suite: HORNET_FUZZ_EXAMPLES distinct inputs (default 1 000 000) through
every network-facing entry point, driven by hypothesis. Marked ``fuzz``: not in the
default run. Run one target with ``-s`` to see its counts:

    HORNET_FUZZ_EXAMPLES=20000 pytest -m fuzz -s tests/fuzz -k "target and relay_setup"

Each hypothesis example draws 1–4 complete inputs (raw bytes, a seed's prefix plus drawn
bytes, or a valid seed with 1–6 drawn mutations: bit flips, truncations, insertions,
splices with another seed, interesting integers, dictionary tokens...) and a batch seed
from which ``fuzzkit.Mutator`` derives more mutants, until the example has fed
HORNET_FUZZ_BATCH (default 16) distinct inputs. Both kinds are counted (see the summary's
``hypothesis_drawn`` and ``prng_expanded``). Examples run in chunks of at most
``CHUNK`` (a fresh hypothesis engine each, with seeds derived from HORNET_FUZZ_SEED), which
keeps hypothesis's own memory bounded on million-input runs.

Environment: HORNET_FUZZ_KEEP_GOING=1 records violations and carries on (the runner uses
it), HORNET_FUZZ_SUMMARY=path rewrites a JSON summary there every 25 000 inputs,
HORNET_FUZZ_RSS_GROWTH_MB bounds the RSS growth after the first 10% of the run.
"""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

import pytest
from fuzzkit import OPS, FuzzRun, Mutator, Target, apply_op, dictionary_of, write_progress
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from targets import NAMES, make_target

CHUNK = 4000  # hypothesis examples per engine run
#: Allowed RSS growth (MiB) from 10% of a run to its end: 256 MiB over 900 000 inputs
#: would be a leak of ~300 bytes per input.
RSS_GROWTH_MB = float(os.environ.get("HORNET_FUZZ_RSS_GROWTH_MB", "256"))
_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
]


def _programs(target: Target) -> st.SearchStrategy[tuple[Any, ...]]:
    """One complete input, described by hypothesis draws."""
    last = len(target.seeds()) - 1
    op = st.tuples(
        st.sampled_from(OPS),
        st.integers(0, 1 << 20),
        st.integers(0, 1 << 16),
        st.binary(max_size=64),
    )
    return st.one_of(
        st.tuples(
            st.just("mutate"),
            st.integers(0, last),
            st.integers(0, last),
            st.lists(op, min_size=1, max_size=6),
        ),
        st.tuples(st.just("raw"), st.binary(max_size=min(target.max_len, 600))),
        st.tuples(
            st.just("prefixed"),
            st.integers(0, last),
            st.integers(0, 64),
            st.binary(max_size=min(target.max_len, 2000)),
        ),
    )


def build_input(target: Target, program: tuple[Any, ...], dictionary: list[bytes]) -> bytes:
    seeds = target.seeds()
    if program[0] == "raw":
        return bytes(program[1])
    if program[0] == "prefixed":
        _, index, keep, tail = program
        return seeds[index][:keep] + tail
    _, index, other, ops = program
    data = seeds[index]
    for name, a, b, blob in ops:
        data = apply_op(data, name, a, b, blob, seeds[other], dictionary)
    return data[: target.max_len]


def drive_hypothesis(run: FuzzRun, inputs: int, *, batch: int, base_seed: int) -> dict[str, int]:
    """Feed ``inputs`` distinct inputs to ``run`` through hypothesis examples."""
    target = run.target
    dictionary = dictionary_of(target)
    programs = st.lists(_programs(target), min_size=1, max_size=4)
    counts = {"examples": 0, "hypothesis_drawn": 0, "prng_expanded": 0}
    # Until enough distinct inputs were fed; repeated inputs (hypothesis likes small and
    # repeated values) make the odd extra chunk necessary, at most a few.
    max_chunks = 2 * math.ceil(inputs / batch / CHUNK) + 4
    chunk_index = 0
    while run.distinct < inputs and chunk_index < max_chunks:
        size = min(CHUNK, max(1, math.ceil((inputs - run.distinct) / batch)))

        @seed(base_seed * 1_000_003 + chunk_index)
        @settings(
            max_examples=size,
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=_HEALTH,
            phases=(Phase.generate, Phase.shrink),
        )
        @given(programs, st.integers(0, (1 << 64) - 1))
        def example(drawn: list[tuple[Any, ...]], batch_seed: int) -> None:
            counts["examples"] += 1
            fed = 0
            for program in drawn:
                fed += run.feed(build_input(target, program, dictionary))
                counts["hypothesis_drawn"] += 1
            # Hypothesis favours small and repeated integers: mix in the example's number
            # so that every example expands into a stream of its own.
            stream_seed = f"{base_seed}/{counts['examples']}/{batch_seed}"
            mutator = Mutator(
                target.seeds(),
                random.Random(stream_seed),
                max_len=target.max_len,
                dictionary=dictionary,
                structured=target.structured,
            )
            attempts = 0
            while fed < batch and attempts < 4 * batch:
                attempts += 1
                fed += run.feed(mutator.next())
                counts["prng_expanded"] += 1

        example()
        chunk_index += 1
    return counts


@pytest.mark.fuzz
@pytest.mark.parametrize("name", NAMES)
def test_fuzz_target(name: str) -> None:
    inputs = int(os.environ.get("HORNET_FUZZ_EXAMPLES", "1000000"))
    batch = int(os.environ.get("HORNET_FUZZ_BATCH", "16"))
    base_seed = int(os.environ.get("HORNET_FUZZ_SEED", "0"))
    keep_going = os.environ.get("HORNET_FUZZ_KEEP_GOING", "") == "1"
    summary_path = os.environ.get("HORNET_FUZZ_SUMMARY")
    target = make_target(name)
    run = FuzzRun(
        target,
        expected=inputs,
        driver="hypothesis",
        keep_going=keep_going,
        progress=write_progress(summary_path) if summary_path else None,
    )
    counts = drive_hypothesis(run, inputs, batch=batch, base_seed=base_seed)
    run.extra.update(counts)
    summary = run.finish()
    print(
        f"\nfuzz {name}: "
        + json.dumps(
            {
                k: summary[k]
                for k in (
                    "inputs",
                    "distinct_inputs",
                    "seconds",
                    "inputs_per_s",
                    "crashes",
                    "contract_violations",
                    "bounds_violations",
                    "rss_mb",
                )
            }
        )
        + " "
        + json.dumps(counts)
    )
    print(json.dumps(summary["calls"], indent=1))
    assert not summary["violations"], json.dumps(summary["violations"], indent=1)
    assert summary["distinct_inputs"] >= inputs
    # Memory: every bounded structure was checked by run.finish(); the process as a whole
    # must not keep growing once the world is warm (10% of the run) either.
    rss = summary["rss_mb"]
    assert rss["end"] - rss["at_10pct"] <= RSS_GROWTH_MB, rss
