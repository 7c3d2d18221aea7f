"""Compare two revisions by CPU instructions (valgrind), not wall time: W1 and the import.

    python benchmarks/instructions.py OLD_REV NEW_REV [--steps 50] [--runs 4] [--save FILE]

Wall times on a shared 2-core machine move by 10-30 % with the load; the number of
instructions a run executes does not (it varies by well under 1 % between identical
runs). So this script answers "is NEW slower than OLD per step?" exactly, where
``compare.py``'s medians can only say "overlap". It does not replace wall time: a
syscall or a disk write costs far more time than its instructions say (``strace -c``
counts those; ``compare.py`` times them).

Each revision is built and installed as users get it, by ``compare.py``'s own code: a
wheel, installed with its dependencies into a cached venv, byte-compiled. Each
measurement runs one process under ``valgrind --tool=callgrind`` twice -- with K runs
of the workload and with none -- and divides the difference by K runs x N steps, so
start-up, imports and the first run cancel out. Rows:

- ``import ductwork``: ``python -c 'import ductwork'`` minus ``python -c pass``.
- W1 first run: a whole process -- import, a cold run and a warm run of the N-step
  chain -- minus ``python -c pass`` (the one-time costs are in it).
- W1 cold, fingerprints memoized: the same step functions on a fresh store per run.
- W1 warm: the same store again, every step a hit.
- W1 warm, fresh function objects: the module re-imported after an edit, then a warm
  run (what a rerun in a new process pays to fingerprint).
- The peers' W1 and W2 programs (``peers/ductwork_prog.py``), cold then warm, each a
  whole process (interpreter start included), as ``peers/run.py`` times them.

Requires valgrind (``apt-get install valgrind``). Under it Python runs ~50x slower: a
comparison takes 3-6 minutes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare  # the same build and install as the timed comparison

# The peers table's own ductwork program (one file; its API is the same in both revisions):
# W1 is a 50-step chain, W2 a 100-element map, each a whole process from spawn to exit.
PEER_PROGRAM = Path(__file__).resolve().parent / "peers" / "ductwork_prog.py"
PEER_CELLS = (("w1", 50), ("w2", 100))

WORKLOAD = r'''
import importlib, os, sys, tempfile
steps, mode, runs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
gen = tempfile.mkdtemp(prefix="instr-gen-")
sys.path.insert(0, gen)
src = ["from ductwork import pipeline, step", ""]
for i in range(steps):
    src += ["", "@step", f"def s{i:03d}(x: int) -> int:", "    return x + 1", ""]
src += ["", "STEPS = [" + ", ".join(f"s{i:03d}" for i in range(steps)) + "]", "", "",
        "@pipeline", "def chain(n: int = 0):", "    x = n", "    for s in STEPS:",
        "        x = s(x)", "    return x", ""]
path = os.path.join(gen, "instr_chain.py")
with open(path, "w") as f:
    f.write("\n".join(src))
import instr_chain as chain_module
store = os.path.join(tempfile.mkdtemp(prefix="instr-store-"), "store")


def run(module, where, cached):
    r = module.chain.run(n=0, store=where)
    assert r.status == "succeeded" and r.outputs == steps, r
    assert sum(s.cached for s in r.steps.values()) == (steps if cached else 0), r


if mode != "import":
    run(chain_module, store, False)
    run(chain_module, store, True)
for i in range(runs):
    if mode == "cold":
        run(chain_module, f"{store}-{i}", False)
    elif mode == "warm":
        run(chain_module, store, True)
    elif mode == "fresh":
        with open(path, "w") as f:
            f.write("\n".join(src) + f"\n# edit {i}\n")
        importlib.invalidate_caches()
        chain_module = importlib.reload(chain_module)
        run(chain_module, store, True)
'''


def instructions(python: Path, args: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Instructions valgrind counts for one process of ``python args``."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           str(python), *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{python} {' '.join(args)} failed under valgrind:\n"
                         f"{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the baseline revision, e.g. d1d327a")
    parser.add_argument("new", help="the revision to compare, e.g. HEAD")
    parser.add_argument("--steps", type=int, default=50, help="steps in the chain (50)")
    parser.add_argument("--runs", type=int, default=4, help="measured runs per row (4)")
    parser.add_argument("--save", help="also write the report to this file")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")

    repo = Path(compare.git(compare.HERE, "rev-parse", "--show-toplevel"))
    started, load_start = time.monotonic(), compare.load()
    insts = []
    for label, rev in (("old", args.old), ("new", args.new)):
        commit = compare.git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
        subject, date = compare.git(repo, "log", "-1", "--format=%s%x00%cs", commit).split("\0")
        insts.append(compare.Install(label, rev, commit, subject, date))
    compare.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ductwork-instr-") as tmp:
        work = Path(tmp)
        cwd = compare.scratch_project(work)
        script = work / "workload.py"
        script.write_text(WORKLOAD)
        for inst in insts:
            compare.install(repo, inst, work)
            inst.home = work / f"home-{inst.label}"
            inst.home.mkdir()
            compare.verify(inst, cwd)

        per_step = args.runs * args.steps
        rows: list[tuple[str, str, int, int]] = []  # name, unit, old, new
        counts: dict[str, dict[str, int]] = {}
        for inst in insts:
            env = compare.clean_env(inst)
            compare.log(f"{inst.label}: measuring under valgrind")

            def count(*argv: str, env: dict[str, str] = env, inst: compare.Install = inst
                      ) -> int:
                return instructions(inst.python, list(argv), cwd, env)

            bare = count("-c", "pass")
            c = counts[inst.label] = {"import": count("-c", "import ductwork") - bare,
                                      "first": count(str(script), str(args.steps), "first", "0")
                                      - bare}
            for mode in ("cold", "warm", "fresh"):
                base = count(str(script), str(args.steps), mode, "0")
                c[mode] = (count(str(script), str(args.steps), mode, str(args.runs)) - base
                           ) // per_step
            for workload, size in PEER_CELLS:  # whole programs, as peers/run.py times them
                folder = work / f"peers-{inst.label}-{workload}"
                for mode in ("cold", "warm"):  # the warm program reuses the cold one's store
                    c[f"{workload} {mode}"] = count(str(PEER_PROGRAM), workload, str(folder),
                                                    str(size))
        names = {"import": ("import ductwork, above python -c pass", "instr"),
                 "first": (f"W1 first process: import + cold + warm run of {args.steps} steps",
                           "instr"),
                 "cold": ("W1 cold, fingerprints memoized", "instr/step"),
                 "warm": ("W1 warm (every step a hit)", "instr/step"),
                 "fresh": ("W1 warm, fresh function objects", "instr/step"),
                 **{f"{w} {m}": (f"peers' {w.upper()} program ({size}), {m}, whole process",
                                 "instr")
                    for w, size in PEER_CELLS for m in ("cold", "warm")}}
        for key, (name, unit) in names.items():
            rows.append((name, unit, counts["old"][key], counts["new"][key]))

    lines = [
        f"ductwork {args.old} vs {args.new}: CPU instructions (valgrind callgrind), "
        f"{args.runs} measured runs x {args.steps} steps per row; load {load_start} at the "
        f"start, {compare.load()} at the end; {(time.monotonic() - started) / 60:.1f} min",
        *(i.describe() for i in insts), "",
    ]
    header = ("measurement", "old", "new", "new/old")
    body = [(f"{n} ({u})", f"{o:,}", f"{w:,}", f"{w / o:.3f}x") for n, u, o, w in rows]
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(4)]
    for r in (header, tuple("-" * w for w in widths), *body):
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)))
    report = "\n".join(lines)
    print(report)
    if args.save:
        Path(args.save).write_text(report + "\n")


if __name__ == "__main__":
    main()
