"""Benchmark sweeps and the PNG plots in benchmarks/RESULTS.md.

    pip install -e '.[bench]'
    python benchmarks/plot_results.py --run     # measure (a few minutes), then plot
    python benchmarks/plot_results.py           # plot the JSON already in results/

--run writes:
- results/e2e_sweep.json: ``hornet bench e2e`` (relays as OS processes on loopback,
  HORNET and the no-crypto chain in the same run) for each payload size in PAYLOADS;
- results/forwarding.json: ``bench_forwarding.py`` (per-hop cost per payload size, with
  OpenSSL alone beside it).
Plots: goodput_vs_payload.png and per_hop_vs_payload.png, next to this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAYLOADS = (768, 1024, 2048, 4096, 8192)


def run_sweeps(packets: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    sweep = []
    for payload in PAYLOADS:
        out = subprocess.run(
            [sys.executable, "-m", "hornet.bench_e2e", "--json", "--packets", str(packets),
             "--circuits", "10", "--payload", str(payload)],
            check=True, capture_output=True, text=True,
        ).stdout
        figures = json.loads(out)
        print(f"payload {payload}: hornet {figures['goodput_mbps']} Mb/s, "
              f"plain {figures['plain_goodput_mbps']} Mb/s", flush=True)
        sweep.append(figures)
    (RESULTS / "e2e_sweep.json").write_text(json.dumps(sweep, indent=1) + "\n")
    out = subprocess.run(
        [sys.executable, str(HERE / "bench_forwarding.py"), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    (RESULTS / "forwarding.json").write_text(out)


def plot() -> list[Path]:
    # matplotlib is the optional ``bench`` extra: import it only to plot.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sweep: list[dict[str, Any]] = json.loads((RESULTS / "e2e_sweep.json").read_text())
    sizes = [f["payload_size"] for f in sweep]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(sizes, [f["goodput_mbps"] for f in sweep], "o-", label="HORNET (3 relays)")
    ax.plot(sizes, [f["plain_goodput_mbps"] for f in sweep], "s--", label="no-crypto chain")
    for f in sweep:
        ax.annotate(f"{f['goodput_ratio']:.2f}", (f["payload_size"], f["goodput_mbps"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("payload size (bytes)")
    ax.set_ylabel("goodput (Mb/s)")
    ax.set_title("End-to-end goodput on loopback (labels: HORNET ÷ plain)")
    ax.grid(alpha=0.3)
    ax.legend()
    goodput = HERE / "goodput_vs_payload.png"
    fig.tight_layout()
    fig.savefig(goodput, dpi=110)
    plt.close(fig)

    forwarding: dict[str, Any] = json.loads((RESULTS / "forwarding.json").read_text())
    paper, hardened = forwarding["sizes"], forwarding["hardened"]["sizes"]
    keys = sorted(paper, key=int)
    x = [int(k) for k in keys]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(x, [paper[k]["hop_us"] for k in keys], "o-", label="relay, paper profile (CTR)")
    ax.plot(x, [hardened[k]["hop_us"] for k in keys], "s-", label="relay, hardened (GCM)")
    ax.plot(x, [paper[k]["openssl_ctr_us"] for k in keys], ":", label="OpenSSL AES-CTR alone")
    ax.plot(x, [paper[k]["openssl_gcm_us"] for k in keys], "--", label="OpenSSL AES-GCM alone")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(s) for s in x], rotation=45)
    ax.set_xlabel("payload size (bytes)")
    ax.set_ylabel("µs per packet, one hop")
    ax.set_title("Per-hop data forwarding cost (Relay.process, one core)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    per_hop = HERE / "per_hop_vs_payload.png"
    fig.tight_layout()
    fig.savefig(per_hop, dpi=110)
    plt.close(fig)
    return [goodput, per_hop]


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
