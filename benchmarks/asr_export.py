"""Speed and accuracy of every transcription artifact of a bundle, with faster-whisper as the anchor.

    .venv/bin/edgetl export runs/asr-plant/held-decoder-e3 --target all --quantize all     # first
    .venv/bin/python benchmarks/asr_export.py runs/asr-plant/held-decoder-e3 --threads 2 --rounds 2

``edgetl benchmark BUNDLE --anchor`` on the local CPU: every transcription artifact, PyTorch ``generate`` and
faster-whisper (on the bundle's ctranslate2-int8-dynamic artifact, greedy, no timestamps) transcribe the
bundle's test clips one at a time, each in a fresh process per round, rounds interleaved. Rows: WER/CER, WER
change against PyTorch, clips token-equal to PyTorch, real-time factor, per-clip latency, encoder, first-token
and per-token latency, size, peak RSS. The summary names the deploy choice and how many times as fast as
faster-whisper it transcribes. Nothing else should run on the machine meanwhile.
Results: results/asr_export.{json,md} (and the report in BUNDLE/benchmark/asr-export).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import REPO, save_results  # noqa: E402

from edgetl.bench import run_benchmark  # noqa: E402
from edgetl.bench.report import deploy_lines, to_markdown  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--samples", type=int, default=None, help="at most this many test clips (evenly spaced)")
    ap.add_argument("-a", "--artifacts", action="append", default=None, help="artifact names (default: all)")
    ap.add_argument("--no-anchor", action="store_true", help="a trimmed bundle: faster-whisper cannot run it")
    ap.add_argument("--name", default="asr_export", help="results/NAME.{json,md}")
    args = ap.parse_args()
    bundle = args.bundle.resolve()
    report = run_benchmark(bundle, out=bundle / "benchmark" / args.name, target=args.target, threads=args.threads,
                           rounds=args.rounds, anchor=not args.no_anchor, samples=args.samples, artifacts=args.artifacts,
                           progress=lambda msg, done, total: print(f"[{done}/{total}] {msg}", flush=True))  # fmt: skip
    cmd = " ".join(sys.argv[1:]).replace(str(args.bundle), str(bundle.relative_to(REPO)))
    cmd = f".venv/bin/python benchmarks/asr_export.py {cmd}"
    md = to_markdown(report).replace("# Benchmark:", "# Transcription artifacts against faster-whisper:", 1)
    md = md + f"\nCommand: `{cmd}`.\n"
    print(md)
    print("\n".join(deploy_lines(report)))
    save_results(args.name, {"command": cmd, "report": report}, md)


if __name__ == "__main__":
    main()
