"""Benchmark sweeps and the PNG plots in benchmarks/RESULTS.md.

    pip install -e '.[bench]'
    python benchmarks/plot_results.py --run     # measure (a few minutes), then plot
    python benchmarks/plot_results.py           # plot the JSON already in results/

--run writes:
- results/e2e_sweep.json: ``hornet bench e2e`` (relays as OS processes on loopback,
  HORNET and the no-crypto chain in the same run) for each payload size in PAYLOADS;
- results/forwarding.json and results/forwarding_native.json: ``bench_forwarding.py``
  in the Python and the native engine (per-hop cost per payload size, with OpenSSL alone
  beside it); the native run only where the native engine is built.
Plots, next to this file, from those files:
- goodput_vs_payload.png: goodput of HORNET with the link layer on and off and of the
  plain chain, HORNET's share of the plain chain's goodput, the ceiling and the target;
- per_hop_vs_payload.png: ``Relay.process`` per hop for both profiles in both engines,
  OpenSSL alone, and the HORNET paper's router.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hornet.core.engine import available

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAYLOADS = (768, 1024, 2048, 4096, 8192)


def run_sweeps(packets: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    sweep = []
    for payload in PAYLOADS:
        out = subprocess.run(
            [sys.executable, "-m", "hornet.cli.bench", "--json", "--packets", str(packets),
             "--circuits", "10", "--payload", str(payload)],
            check=True, capture_output=True, text=True,
        ).stdout
        figures = json.loads(out)
        print(f"payload {payload}: hornet {figures['goodput_mbps']} Mb/s, "
              f"plain {figures['plain_goodput_mbps']} Mb/s", flush=True)
        sweep.append(figures)
    (RESULTS / "e2e_sweep.json").write_text(json.dumps(sweep, indent=1) + "\n")
    for engine, name in (("python", "forwarding.json"), ("native", "forwarding_native.json")):
        if engine not in available():
            continue
        out = subprocess.run(
            [sys.executable, str(HERE / "bench_forwarding.py"), "--json"],
            check=True, capture_output=True, text=True,
            env={**os.environ, "HORNET_ENGINE": engine},
        ).stdout
        (RESULTS / name).write_text(out)


#: The HORNET paper's C/DPDK router, per packet and hop (Chen et al., CCS 2015, §6, Fig. 4:
#: about 1.6 k cycles at 64 B and 2.5 k cycles at 1232 B on a 2.7 GHz Xeon E5-2680).
PAPER_HOP_US = {64: 0.6, 1232: 0.93}
#: The end-to-end target: HORNET's goodput at least half of the plain chain's.
GOODPUT_RATIO_TARGET = 0.5


def plot() -> list[Path]:
    # matplotlib is the optional ``bench`` extra: import it only to plot.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return [_plot_goodput(plt), _plot_per_hop(plt)]


def _plot_goodput(plt: Any) -> Path:
    """Goodput of the three chains, and HORNET's share of the plain chain's with its ceiling."""
    sweep: list[dict[str, Any]] = json.loads((RESULTS / "e2e_sweep.json").read_text())
    sizes = [f["payload_size"] for f in sweep]
    engine = sweep[0].get("engine", "python")
    plain = [f["plain_goodput_mbps"] for f in sweep]
    link_on = [f["goodput_mbps"] for f in sweep]
    link_off = [f["goodput_mbps_nolink"] for f in sweep]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))

    left.plot(sizes, link_on, "o-", color="C0", label="HORNET, link layer on (default)")
    left.plot(sizes, link_off, "^-", color="C1", label="HORNET, link layer off")
    left.plot(sizes, plain, "s--", color="C2", label="plain chain (no cryptography)")
    ceiling = [f["goodput_ratio_ceiling"] * f["plain_goodput_mbps"] for f in sweep]
    left.plot(sizes, ceiling, ":", color="C0",
              label="ceiling, link layer on (plain × goodput_ratio_ceiling)")
    left.set_ylabel("goodput (Mb/s)")
    left.set_title("Goodput, 3 relays as processes on loopback")

    right.plot(sizes, [f["goodput_ratio"] for f in sweep], "o-", color="C0",
               label="HORNET ÷ plain, link layer on")
    right.plot(sizes, [on / p for on, p in zip(link_off, plain, strict=True)], "^-",
               color="C1", label="HORNET ÷ plain, link layer off")
    right.plot(sizes, [f["goodput_ratio_ceiling"] for f in sweep], ":", color="C0",
               label="ceiling, link layer on")
    right.plot(sizes, [f["goodput_ratio_ceiling_nolink"] for f in sweep], ":", color="C1",
               label="ceiling, link layer off")
    right.axhline(GOODPUT_RATIO_TARGET, color="red", linewidth=0.8,
                  label=f"target ({GOODPUT_RATIO_TARGET})")
    right.set_ylim(0, 1)
    right.set_ylabel("share of the plain chain's goodput")
    right.set_title("HORNET ÷ plain, and the ceiling the crypto leaves")

    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("payload size (bytes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"hornet bench e2e, {engine} engine, hardened profile "
                 f"(results/e2e_sweep.json)", fontsize=10)
    path = HERE / "goodput_vs_payload.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_per_hop(plt: Any) -> Path:
    """Per-hop cost of both profiles in both engines, OpenSSL alone, and the paper's router."""
    fig, ax = plt.subplots(figsize=(7.6, 4.8))
    runs = [("forwarding.json", "Python", "-"), ("forwarding_native.json", "native", "-.")]
    for name, engine, style in runs:
        path = RESULTS / name
        if not path.is_file():
            continue
        figures: dict[str, Any] = json.loads(path.read_text())
        for profile, sizes, marker, color in (
            ("paper", figures["sizes"], "o", "C0"),
            ("hardened", figures["hardened"]["sizes"], "s", "C3"),
        ):
            x = sorted(int(k) for k in sizes)
            ax.plot(x, [sizes[str(k)]["hop_us"] for k in x], style, marker=marker,
                    color=color, label=f"{engine} engine, {profile} profile")
    python = json.loads((RESULTS / "forwarding.json").read_text())["sizes"]
    x = sorted(int(k) for k in python)
    ax.plot(x, [python[str(k)]["openssl_ctr_us"] for k in x], ":", color="grey",
            label="OpenSSL AES-CTR alone (paper layer)")
    ax.plot(x, [python[str(k)]["openssl_gcm_us"] for k in x], "--", color="grey",
            label="OpenSSL AES-GCM alone (hardened layer)")
    ax.plot(list(PAPER_HOP_US), list(PAPER_HOP_US.values()), "*", color="black",
            markersize=10, label="HORNET paper, C/DPDK router (CCS 2015, Fig. 4)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(s) for s in x], rotation=45)
    ax.set_xlabel("payload size (bytes)")
    ax.set_ylabel("µs per packet, one hop (CPU time)")
    ax.set_title("Per-hop data forwarding: Relay.process, one core, r = 5,\n"
                 "no link layer, no I/O (results/forwarding*.json)", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = HERE / "per_hop_vs_payload.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="store_true", help="measure before plotting")
    parser.add_argument("--packets", type=int, default=20000, help="packets per e2e run")
    args = parser.parse_args(argv)
    if args.run:
        run_sweeps(args.packets)
    for path in plot():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
