"""Every case of the fault corpus (tests/fault_corpus.py) as a real `edgetl` process: how many pass.

A case passes when its exit code is the expected one, nothing prints a Python traceback, a failure
is exactly one `error:` line (containing the expected words), the user's files are unchanged and
nothing complete-looking is left. Cases that mount a private read-only or full tmpfs need root and
`unshare` (they are counted as skipped elsewhere).

    .venv/bin/python benchmarks/fault_corpus.py [--jobs 2] [--only WORDS]

Writes results/fault_corpus.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from common import save_results  # noqa: E402


def _load_corpus():
    """tests/fault_corpus.py (this script has the same name, so it is loaded by path); it also blocks the network
    in this process (tests/netblock) as the test suite does."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fault_corpus_cases", REPO / "tests" / "fault_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="cases running at once (each is its own process)")
    ap.add_argument("--only", nargs="*", default=None, help="run only cases whose name contains one of these words")
    ap.add_argument("--name", default="fault_corpus")
    args = ap.parse_args()

    cases = [c for c in corpus.CASES if not args.only or any(w in c.name for w in args.only)]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="edgetl-fault-corpus-") as tmp:
        root = Path(tmp)
        print(f"building the shared assets in {root} ...", flush=True)
        assets = corpus.build_assets(root / "assets")
        results: list[dict] = []

        def finish(built: corpus.Built, index: int) -> dict:
            started = time.time()
            out, found = corpus.execute_case(built, in_process=False)
            shutil.rmtree(built.sandbox.root, ignore_errors=True)
            row = {
                "name": built.case.name,
                "class": built.case.klass,
                "status": "pass" if not found else "FAIL",
                "exit": out.code,
                "seconds": round(time.time() - started, 2),
                "problems": found,
                "error": next((line for line in out.stderr.splitlines() if line.startswith("error:")), ""),
            }
            print(f"[{index + 1}/{len(cases)}] {row['status']:4} {built.case.name}" + (f"  {found}" if found else ""), flush=True)
            return row

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # builds run here, one by one; the processes in the pool
            futures = []
            for i, c in enumerate(cases):
                if reason := corpus.skip_reason(c):
                    results.append({"name": c.name, "class": c.klass, "status": "skipped", "reason": reason})
                    continue
                futures.append(pool.submit(finish, corpus.build_case(c, root / f"case-{i:03d}", assets), i))
            results += [f.result() for f in futures]

    by_class = collections.defaultdict(collections.Counter)
    for r in results:
        by_class[r["class"]][r["status"]] += 1
    passed = sum(r["status"] == "pass" for r in results)
    ran = sum(r["status"] != "skipped" for r in results)
    wall = round(time.time() - t0, 1)
    lines = [
        "# Fault corpus: bad inputs and faults across the whole CLI",
        "",
        "{{machine}}",
        f"Command: `.venv/bin/python benchmarks/fault_corpus.py --jobs {args.jobs}`"
        + (f" `--only {' '.join(args.only)}`" if args.only else "")
        + f" ({wall} s).",
        "",
        f"**{passed} of {ran} cases pass** ({len(results)} in the corpus, {len(results) - ran} skipped). "
        "Each case is a real `edgetl` process; it passes when the exit code is the expected one, no Python traceback "
        "is printed, a failure is exactly one `error:` line with the expected words, the user's files are unchanged "
        "(sha256) and nothing complete-looking is left.",
        "",
        "| class | cases | pass | fail | skipped |",
        "|---|---|---|---|---|",
    ]
    for klass in sorted(by_class):
        c = by_class[klass]
        lines.append(f"| {klass} | {sum(c.values())} | {c['pass']} | {c['FAIL']} | {c['skipped']} |")
    failed = [r for r in results if r["status"] == "FAIL"]
    if failed:
        lines += ["", "## Failing cases", ""] + [f"- {r['name']}: {'; '.join(r['problems'])}" for r in failed]
    skipped = [r for r in results if r["status"] == "skipped"]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {r['name']}: {r['reason']}" for r in skipped]
    lines += [
        "",
        "## Every case (the error line it printed)",
        "",
        "| case | class | exit | status | error line |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        err = r.get("error", "").replace("|", "\\|")
        lines.append(f"| {r['name'].replace('|', '/')} | {r['class']} | {r.get('exit', '-')} | {r['status']} | {err[:160]} |")
    path = save_results(
        args.name,
        {"command": " ".join(sys.argv), "wall_s": wall, "cases": len(results), "ran": ran, "passed": passed, "results": results},
        "\n".join(lines) + "\n",
    )
    print(f"{passed}/{ran} passed; wrote {path} and {path.with_suffix('.md')}")
    sys.exit(0 if passed == ran else 1)


if __name__ == "__main__":
    main()
