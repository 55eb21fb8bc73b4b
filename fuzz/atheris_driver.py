"""Run one fuzz target under atheris (libFuzzer, coverage-guided), or without it.

    python fuzz/fuzz_<name>.py -atheris_runs=1000000 [libFuzzer flags] [corpus dirs]

Options of our own (removed before libFuzzer sees the arguments):
    --fallback        do not use atheris even if it is installed (see below)
    --keep-going      record violations and carry on instead of stopping at the first
    --summary=PATH    rewrite a JSON summary there every 10 000 inputs and at the end
    --seed=N          the fallback driver's PRNG seed (default 0)

The target's valid inputs are written to ``fuzz/corpus/<name>/`` (unless corpus
directories are given) so libFuzzer starts from them; libFuzzer adds what it finds there.
A violation raises out of ``TestOneInput``: atheris prints it and saves the input as
``crash-<sha1>`` in the working directory.

FALLBACK (atheris not importable, or ``--fallback``): a plain loop feeds the target's
seeds and then ``fuzzkit.Mutator`` output (random bytes and stacked mutations of the
seeds, from a seeded PRNG). It is NOT coverage-guided; the summary's ``driver`` field
says ``fallback-prng`` so its figures are never mistaken for atheris runs.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _split_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    ours: dict[str, Any] = {"fallback": False, "keep_going": False, "summary": None, "seed": 0}
    rest = [argv[0]]
    for arg in argv[1:]:
        if arg == "--fallback":
            ours["fallback"] = True
        elif arg == "--keep-going":
            ours["keep_going"] = True
        elif arg.startswith("--summary="):
            ours["summary"] = arg.split("=", 1)[1]
        elif arg.startswith("--seed="):
            ours["seed"] = int(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return ours, rest


def _runs(args: list[str]) -> int:
    for arg in args:
        for flag in ("-atheris_runs=", "-runs="):
            if arg.startswith(flag):
                return int(arg.split("=", 1)[1])
    return 0


def _import_everything() -> None:
    """Import every hornet module (so that atheris instruments them all at once)."""
    import hornet  # noqa: PLC0415  (imported under atheris's instrumentation, not before)

    for module in pkgutil.walk_packages(hornet.__path__, "hornet."):
        if module.name.endswith(("__main__", ".demo", "bench_e2e")):
            continue
        __import__(module.name)


def main(name: str, argv: list[str] | None = None) -> int:
    ours, args = _split_args(list(sys.argv if argv is None else argv))
    runs = _runs(args)
    atheris: Any = None
    if not ours["fallback"]:
        try:
            atheris = importlib.import_module("atheris")
        except ImportError:
            print(
                "atheris is not installed: using the FALLBACK driver (PRNG mutations, "
                "not coverage-guided)",
                file=sys.stderr,
            )
    if atheris is not None:
        with atheris.instrument_imports(include=["hornet"]):
            _import_everything()
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import fuzzkit  # noqa: PLC0415  (after instrumentation: see _import_everything)
    from targets import make_target  # noqa: PLC0415

    target = make_target(name)
    progress = fuzzkit.write_progress(ours["summary"]) if ours["summary"] else None
    run = fuzzkit.FuzzRun(
        target,
        expected=runs or 1,
        keep_going=ours["keep_going"],
        driver="atheris" if atheris is not None else "fallback-prng",
        progress=progress,
        progress_every=10_000,
    )

    if atheris is None:
        print(f"fuzz {name}: FALLBACK driver, {runs or 'unbounded'} inputs", file=sys.stderr)
        inputs = fuzzkit.prng_inputs(target, ours["seed"])
        while not runs or run.inputs < runs:
            run.feed(next(inputs))
        summary = run.finish()
        print(
            f"fuzz {name}: {summary['inputs']} inputs, {summary['distinct_inputs']} distinct, "
            f"{summary['seconds']} s, violations {summary['violations']}",
            file=sys.stderr,
        )
        return 1 if summary["violations"] else 0

    corpora = [a for a in args[1:] if not a.startswith("-")]
    if not corpora:
        corpus = HERE / "corpus" / name
        corpus.mkdir(parents=True, exist_ok=True)
        for seed in target.seeds():
            (corpus / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)  # noqa: S324
        args.append(str(corpus))
    if not any(a.startswith("-max_len=") for a in args):
        args.append(f"-max_len={target.max_len}")

    def test_one_input(data: bytes) -> None:
        run.feed(data)
        if runs and run.inputs >= runs:
            run.finish()

    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
    return 0
