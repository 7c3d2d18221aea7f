"""ductwork against Hamilton, flytekit and kfp on W1-W3, whole programs, one table.

    python benchmarks/peers/run.py [--repeat N] [--only w1,w2,w3] [--peers hamilton,flytekit,kfp]
                                   [--quick] [--mb 256] [--rev HEAD] [--save FILE] [--raw FILE]

W1  a chain of 50 ``x + 1`` steps from 0 (result 50).
W2  a map: one step returns ``list(range(100))``, an ``x + 1`` step per element, a sum (5050).
W3  a 256 MB ``bytes`` value made by one step and read by the next, which returns its length.

Each cell is a whole program in a fresh interpreter (``<framework>_prog.py WORKLOAD DIR SIZE``),
timed from spawn to exit: *cold* on an empty DIR (empty cache and store), *warm* a second
program over the same DIR, served by the framework's own cache. The plain-Python floor of W3
(``floor_prog.py``: make the bytes, write them to a file, read them back) is timed the same way.

How each is installed: ductwork as ``compare.py`` does it (a wheel built from ``--rev`` of
this checkout, installed with its ``[all]`` dependencies into a venv of its own under
``~/.cache/ductwork-bench/``, byte-compiled, checked with ``python -v``); each peer into a venv
of its own with pinned versions from the package registry, byte-compiled, under
``~/.cache/ductwork-bench/peers/`` (reused while the pins and the interpreter are the same).
Programs run from a scratch git repository outside the source tree (ductwork's git probe has a
project to look at), with HOME, TMPDIR and DUCTWORK_HOME inside the cell's DIR, and without
PYTHONDONTWRITEBYTECODE: the programs are copied to a scratch dir where their .pyc files are
written once, in an unmeasured warm-up round, as a user's would be.

Runs are interleaved: for each repeat and workload, every framework's cold and then warm
program, ductwork first on even repeats and last on odd ones, so the load of this shared
machine hits them alike. The table gives each cell's median and range (min..max) in ms,
ductwork / the fastest peer (named), ductwork / the floor for W3, the issue's targets (<= 0.25
cold, <= 0.20 warm, W3 cold <= 1.2x the floor) and PASS / MISS. W3 also has a peak-RSS row
per phase: each program's ``ru_maxrss`` (its own process, from ``os.wait4``) against the
floor program's, target <= 1.1x. ``--quick``: 1 repeat, W3 at 32 MB, a smoke test.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import compare  # noqa: E402  (benchmarks/compare.py: builds and installs ductwork's wheel)
from _table import run_program  # noqa: E402  (wall time and peak RSS of one program)

PEERS: dict[str, list[str]] = {  # the pins: what each peer's venv installs
    "hamilton": ["sf-hamilton==1.90.0"],
    "flytekit": ["flytekit==1.16.31"],
    "kfp": ["kfp==2.17.3"],
}
PROGRAMS = ("ductwork_prog.py", "hamilton_prog.py", "hamilton_w1.py", "hamilton_w1_nodes.py",
            "hamilton_w2.py", "hamilton_w3.py", "flytekit_prog.py", "kfp_prog.py",
            "floor_prog.py")
WORKLOADS = ("w1", "w2", "w3")
MB = 1 << 20
TARGETS = {"cold": 0.25, "warm": 0.20}
FLOOR_TARGET = 1.2
RSS_TARGET = 1.1  # W3: ductwork's peak RSS / the floor's
TIMEOUT = 1800  # seconds for one program; kfp starts a process per task


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sizes(mb: int) -> dict[str, int]:
    return {"w1": 50, "w2": 100, "w3": mb * MB}


def expected(workload: str, size: int) -> int:
    return {"w1": size, "w2": sum(range(1, size + 1)), "w3": size // 256 * 256}[workload]


# --- installs --------------------------------------------------------------------------------


@dataclass
class Framework:
    """One contender: its program, its interpreter and how it got there."""

    name: str
    program: str
    python: Path
    installed: str  # how it was installed, for the notes
    env: dict[str, str] = field(default_factory=dict)


def python_version(py: str) -> str:
    return subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                          check=True, capture_output=True, text=True).stdout.strip()


def peer_venv_path(name: str) -> Path:
    """Where the peer's venv lives: keyed by its pins and the interpreter's version."""
    digest = hashlib.sha256("\n".join(PEERS[name]).encode()).hexdigest()[:12]
    version = python_version(compare.base_python())
    return compare.CACHE / "peers" / f"venv-{name}-{digest}-py{version}"


def peer_ready(venv: Path, name: str) -> bool:
    """The venv was installed completely, with these pins (its marker is written last)."""
    marker = venv / "peer-bench.json"
    return (marker.exists() and json.loads(marker.read_text()).get("pins") == PEERS[name]
            and (venv / "bin" / "python").exists())


def peer_venv(name: str, reused: list[str]) -> Path:
    """The peer's venv with its pinned packages, byte-compiled; made once and reused."""
    py = compare.base_python()
    pins = PEERS[name]
    venv = peer_venv_path(name)
    root, digest = venv.parent, venv.name.split("-")[2]
    vpy = venv / "bin" / "python"
    if peer_ready(venv, name):
        reused.append(name)
        return venv
    log(f"{name}: installing {' '.join(pins)} into {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([py, "-m", "venv", str(venv)], check=True)
    pip_log = root / f"pip-{name}-{digest}.log"
    with open(pip_log, "w") as out:
        done = subprocess.run([str(vpy), "-m", "pip", "install", *pins], stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(pip_log.read_text().splitlines()[-20:])
        raise SystemExit(f"{name}: pip install failed (log {pip_log}):\n{tail}")
    # pip byte-compiles what it installs; make sure of it, as for ductwork's wheel
    subprocess.run([str(vpy), "-m", "compileall", "-q", "-j0",
                    str(compare.site_packages(venv))], check=False, capture_output=True)
    freeze = subprocess.run([str(vpy), "-m", "pip", "freeze"], check=True, capture_output=True,
                            text=True).stdout
    info = {"pins": pins, "python": str(vpy), "freeze": freeze,
            "installed": datetime.datetime.now().isoformat()}
    (venv / "peer-bench.json").write_text(json.dumps(info))  # last: the venv is complete
    return venv


def peer_version(venv: Path, pins: list[str]) -> str:
    """``sf-hamilton 1.90.0``: the pinned packages as pip froze them."""
    freeze = json.loads((venv / "peer-bench.json").read_text()).get("freeze", "")
    names = {p.split("==")[0].lower() for p in pins}
    found = [line.replace("==", " ") for line in freeze.splitlines()
             if line.split("==")[0].lower() in names]
    return ", ".join(found) or ", ".join(pins)


def ductwork_install(rev: str, work: Path, cwd: Path) -> compare.Install:
    repo = Path(compare.git(HERE, "rev-parse", "--show-toplevel"))
    commit = compare.git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    subject, date = compare.git(repo, "log", "-1", "--format=%s%x00%cs", commit).split("\0")
    dirty = compare.git(repo, "status", "--porcelain", "--", "ductwork", "pyproject.toml")
    if dirty:
        log(f"note: uncommitted changes under ductwork/ are not measured (the wheel is built "
            f"from {rev})")
    inst = compare.Install("ductwork", rev, commit, subject, date)
    compare.install(repo, inst, work)
    inst.home = work / "home-verify"
    inst.home.mkdir(exist_ok=True)
    compare.verify(inst, cwd)
    return inst


# --- running ---------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """This environment without what would point Python elsewhere or stop .pyc writing."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX", "PYTHONSTARTUP", "VIRTUAL_ENV",
            "PYTHONDONTWRITEBYTECODE", "DUCTWORK_STORE", "DUCTWORK_HOME",
            "__PYVENV_LAUNCHER__"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def framework_env(python: Path) -> dict[str, str]:
    env = base_env()
    venv = python.parent.parent
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Sample:
    seconds: float
    info: dict
    peak_rss: int = 0  # bytes, ru_maxrss of the program's process


class Failed(Exception):
    pass


def spawn(fw: Framework, programs: Path, cwd: Path, workload: str, cell: Path,
          size: int) -> Sample:
    """One whole program: spawn to exit, with HOME/TMPDIR/DUCTWORK_HOME inside ``cell``."""
    (cell / "tmp").mkdir(parents=True, exist_ok=True)
    env = dict(fw.env, HOME=str(cell), TMPDIR=str(cell / "tmp"),
               DUCTWORK_HOME=str(cell / "ductwork-home"))
    argv = [str(fw.python), str(programs / fw.program), workload, str(cell), str(size)]
    done = run_program(argv, cwd=cwd, env=env, timeout=TIMEOUT)
    if done.timed_out:
        raise Failed(f"timed out after {TIMEOUT} s")
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise Failed(f"exit {done.returncode}: {tail[:200]}")
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as e:
        raise Failed(f"no JSON line in its output: {done.stdout[-200:]!r}") from e
    want = expected(workload, size)
    if info.get("result") != want:
        raise Failed(f"result {info.get('result')!r}, expected {want}")
    return Sample(done.seconds, info, done.peak_rss)


def settle(workload: str, size: int, scratch: Path) -> None:
    """Give the next program the same start as any other: no write-back pending, and for
    W3 memory the machine has just used.

    The programs before it left dirty pages and freed blocks (a 256 MB value, flytekit's
    pickles, a removed cell): flushed here, whichever framework comes next. And on this
    kind of machine (a VM whose idle memory its host takes back) a program that makes
    and writes a 256 MB value right after another one freed as much runs 2-3x faster than
    one after small programs (ductwork's W3 cold: 344-400 ms vs 839-938 ms, alternated;
    a bare 256 MB write: 70-85 ms vs 340-830 ms). Without this the floor, always last
    and so always right after a removed 256 MB cell, had it every time, and the first
    W3 program of each repeat never. So before each W3 program twice its value is written
    to a file, removed and synced.
    """
    if workload == "w3":
        path = scratch / "settle.bin"
        block = b"\0" * (1 << 24)
        with open(path, "wb") as f:
            for _ in range(max(1, 2 * size // len(block))):
                f.write(block)
        path.unlink()
    os.sync()


def pair(fw: Framework, programs: Path, cwd: Path, workload: str, size: int,
         scratch: Path) -> tuple[Sample, Sample | None]:
    """A cold program on an empty DIR, then (not for the floor) a warm one over the same DIR."""
    cell = Path(tempfile.mkdtemp(prefix=f"{fw.name}-{workload}-", dir=scratch))
    try:
        settle(workload, size, scratch)
        cold = spawn(fw, programs, cwd, workload, cell, size)
        if fw.name == "floor":
            return cold, None
        settle(workload, size, scratch)
        warm = spawn(fw, programs, cwd, workload, cell, size)
        if warm.info.get("cached", 0) == 0 or warm.info.get("executed", 0) > 1:
            # Hamilton re-runs a Parallelizable node by design (W2's expand): one is allowed
            raise Failed(f"the warm run was not served by the cache: {warm.info}")
        return cold, warm
    finally:
        shutil.rmtree(cell, ignore_errors=True)


# --- the table -------------------------------------------------------------------------------


def fmt_ms(xs: list[float]) -> str:
    med = statistics.median(xs) * 1e3
    text = f"{med:,.0f} ms"
    if len(xs) > 1:
        text += f" ({min(xs) * 1e3:,.0f}..{max(xs) * 1e3:,.0f})"
    return text


def fmt_mb(xs: list[int]) -> str:
    text = f"{statistics.median(xs) / MB:,.0f} MB"
    if len(xs) > 1:
        text += f" ({min(xs) / MB:,.0f}..{max(xs) / MB:,.0f})"
    return text


def rss_rows(rss: dict[tuple[str, str, str], list[int]], names: list[str],
             label: str) -> list[list[str]]:
    """W3's peak RSS per program, against the floor's (target <= RSS_TARGET x)."""
    floor = rss.get(("floor", "w3", "cold"))
    rows = []
    for phase in ("cold", "warm"):
        row, meds = [f"{label}, {phase}: peak RSS"], {}
        for name in names:
            xs = rss.get((name, "w3", phase))
            row.append(fmt_mb(xs) if xs else "-")
            if xs:
                meds[name] = statistics.median(xs)
        row.append(fmt_mb(floor) if floor else "-")
        peers = {n: m for n, m in meds.items() if n != "ductwork"}
        if "ductwork" in meds and peers:
            least = min(peers, key=peers.__getitem__)
            row.append(f"{meds['ductwork'] / peers[least]:.2f} ({least})")
        else:
            row.append("n/a")
        if floor and "ductwork" in meds:
            fr = meds["ductwork"] / statistics.median(floor)
            row += [f"{fr:.2f}x", f"<= {RSS_TARGET}x floor", "PASS" if fr <= RSS_TARGET else "MISS"]
        else:
            row += ["-", f"<= {RSS_TARGET}x floor", "n/a"]
        rows.append(row)
    return rows


def render(results: dict[tuple[str, str, str], list[float]],
           failures: dict[tuple[str, str, str], str], names: list[str], only: list[str],
           mb: int, rss: dict[tuple[str, str, str], list[int]] | None = None) -> list[str]:
    header = ["cell", *names, "floor", "ductwork / fastest peer", "ductwork / floor", "target",
              "result"]
    rows = []
    labels = {"w1": "W1 chain of 50", "w2": "W2 map over 100", "w3": f"W3 {mb} MB artifact"}
    for w in only:
        for phase in ("cold", "warm"):
            row = [f"{labels[w]}, {phase}"]
            meds: dict[str, float] = {}
            for name in names:
                key = (name, w, phase)
                if key in failures:
                    row.append(f"n/a ({failures[key]})" if len(failures[key]) < 40 else "n/a *")
                elif results.get(key):
                    row.append(fmt_ms(results[key]))
                    meds[name] = statistics.median(results[key])
                else:
                    row.append("-")
            floor = results.get(("floor", w, "cold")) if w == "w3" else None
            row.append(fmt_ms(floor) if floor else "-")
            peers = {n: m for n, m in meds.items() if n != "ductwork"}
            target = TARGETS[phase]
            verdicts, targets = [], [f"<= {target:.2f}"]
            if "ductwork" in meds and peers:
                best = min(peers, key=peers.__getitem__)
                r = meds["ductwork"] / peers[best]
                row.append(f"{r:.2f} ({best})")
                verdicts.append(r <= target)
            else:
                row.append("n/a")
            if floor and phase == "cold" and "ductwork" in meds:
                fr = meds["ductwork"] / statistics.median(floor)
                row.append(f"{fr:.2f}x")
                targets.append(f"<= {FLOOR_TARGET}x floor")
                verdicts.append(fr <= FLOOR_TARGET)
            elif floor and "ductwork" in meds:
                row.append(f"{meds['ductwork'] / statistics.median(floor):.2f}x")
            else:
                row.append("-")
            row.append("; ".join(targets))
            row.append(("PASS" if all(verdicts) else "MISS") if verdicts else "n/a")
            rows.append(row)
        if w == "w3" and rss:
            rows += rss_rows(rss, names, labels[w])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


# --- main ------------------------------------------------------------------------------------


def copy_programs(dest: Path) -> Path:
    """The programs in a scratch dir, where their .pyc files may be written."""
    dest.mkdir(parents=True)
    for name in PROGRAMS:
        shutil.copy2(HERE / name, dest / name)
    return dest


def scratch_project(work: Path) -> Path:
    """The programs' working directory: a small git repository outside any source tree."""
    cwd = work / "project"
    cwd.mkdir()
    (cwd / "README").write_text("a scratch project for the benchmarks\n")
    for cmd in (["init", "-q"], ["add", "README"],
                ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
                 "-m", "scratch"]):
        subprocess.run(["git", "-C", str(cwd), *cmd], check=True)
    return cwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="interleaved rounds (default 5; --quick 1)")
    parser.add_argument("--only", default="w1,w2,w3", help="comma-separated subset of w1,w2,w3")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {','.join(PEERS)}")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: 1 repeat, W3 at 32 MB (not figures to quote)")
    parser.add_argument("--mb", type=int, help="W3's size in MB (default 256; --quick 32)")
    parser.add_argument("--rev", default="HEAD", help="the revision of ductwork to build")
    parser.add_argument("--save", help="also write the report to this file")
    parser.add_argument("--raw", help="write every sample as JSON to this file")
    args = parser.parse_args()
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if not only or set(only) - set(WORKLOADS):
        parser.error(f"--only: choose from {','.join(WORKLOADS)}")
    if set(peers) - set(PEERS):
        parser.error(f"--peers: choose from {','.join(PEERS)}")
    repeat = args.repeat or (1 if args.quick else 5)
    mb = args.mb or (32 if args.quick else 256)
    size = sizes(mb)

    started, load_start = time.monotonic(), compare.load()
    compare.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ductwork-peers-") as tmp:
        work = Path(tmp)
        cwd = scratch_project(work)
        programs = copy_programs(work / "programs")
        scratch = work / "cells"
        scratch.mkdir()

        inst = ductwork_install(args.rev, work, cwd)
        fws = [Framework("ductwork", "ductwork_prog.py", inst.python,
                         f"ductwork: {inst.wheel.name if inst.wheel else '?'} built from "
                         f"{inst.commit[:12]} ({inst.rev}, \"{inst.subject}\"), byte-compiled, "
                         f"installed into {inst.venv}{inst.reuse_note()}")]
        reused: list[str] = []
        for name in peers:
            venv = peer_venv(name, reused)
            fws.append(Framework(name, f"{name}_prog.py", venv / "bin" / "python",
                                 f"{name}: {peer_version(venv, PEERS[name])} from the package "
                                 f"registry (pinned {' '.join(PEERS[name])}), byte-compiled, "
                                 f"installed into {venv}"
                                 f"{' (reused)' if name in reused else ''}"))
        fws.append(Framework("floor", "floor_prog.py", Path(compare.base_python()),
                             f"floor: plain Python {platform.python_version()} "
                             f"({compare.base_python()}), no packages"))
        for fw in fws:
            fw.env = framework_env(fw.python) if fw.name != "floor" else base_env()

        # unmeasured: write the programs' .pyc files, read the installs into the page cache
        log("warm-up round (unmeasured, tiny sizes)")
        warmup_failed: dict[str, str] = {}
        for fw in fws:
            for w in only:
                if fw.name == "floor" and w != "w3":
                    continue
                tiny = {"w1": 2, "w2": 2, "w3": 4096}[w]
                try:
                    pair(fw, programs, cwd, w, tiny, scratch)
                except Failed as e:
                    warmup_failed[fw.name] = warmup_failed.get(fw.name) or f"{w}: {e}"
                    log(f"{fw.name} {w} warm-up failed: {e}")

        results: dict[tuple[str, str, str], list[float]] = {}
        rss: dict[tuple[str, str, str], list[int]] = {}
        failures: dict[tuple[str, str, str], str] = {}
        raw: list[dict] = []
        for r in range(repeat):
            order = fws if r % 2 == 0 else [*fws[1:-1][::-1], fws[0], fws[-1]]
            for w in only:
                for fw in order:
                    if fw.name == "floor" and w != "w3":
                        continue
                    if (fw.name, w, "cold") in failures:
                        continue  # it failed before: do not wait for it again
                    log(f"repeat {r + 1}/{repeat}: {w} {fw.name}")
                    try:
                        cold, warm = pair(fw, programs, cwd, w, size[w], scratch)
                    except Failed as e:
                        log(f"{fw.name} {w} failed: {e}")
                        failures[(fw.name, w, "cold")] = failures[(fw.name, w, "warm")] = str(e)
                        continue
                    for phase, s in (("cold", cold), ("warm", warm)):
                        if s is None:
                            continue
                        results.setdefault((fw.name, w, phase), []).append(s.seconds)
                        rss.setdefault((fw.name, w, phase), []).append(s.peak_rss)
                        raw.append({"framework": fw.name, "workload": w, "phase": phase,
                                    "repeat": r, "seconds": s.seconds,
                                    "peak_rss": s.peak_rss, **s.info})

        names = [fw.name for fw in fws if fw.name != "floor"]
        elapsed = time.monotonic() - started
        report = [
            f"ductwork vs {', '.join(peers)}: whole programs, Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {platform.machine()}; {repeat} interleaved repeat(s)"
            f"{' (--quick: a smoke test)' if args.quick else ''}; W3 {mb} MB; load average "
            f"{load_start} at the start, {compare.load()} at the end; {elapsed / 60:.1f} min",
            *(fw.installed for fw in fws),
            "run from a scratch git repository outside the source tree; HOME, TMPDIR and "
            "DUCTWORK_HOME inside each cell's fresh directory",
            "",
            *render(results, failures, names, only, mb, rss),
            "",
            "* median (min..max) of whole-program wall times, spawn to exit; cold: an empty "
            "cache/store; warm: a second program over the same one. Ratios of medians.",
            "* peak RSS: ru_maxrss of each program's process (os.wait4), median (min..max); "
            "the peer column of those rows is ductwork / the peer with the least; the "
            f"target: ductwork's <= {RSS_TARGET}x the floor program's (the same value, "
            "made, written and read back in plain Python).",
            "* ductwork: inline backend, local store. Hamilton: .with_cache(), W2 by dynamic "
            "execution (Parallelizable/Collect, synchronous local executors). flytekit: "
            "cache=True + cache_version, local execution; its map_task is cached as one task "
            "(the elements have no entries of their own). kfp: kfp.local with "
            "SubprocessRunner(use_venv=False) and enable_caching=True: a process per task "
            "(cold); W3's value is an Artifact file.",
        ]
        for (name, w, phase), reason in failures.items():
            if phase == "cold":
                report.append(f"* n/a: {name} {w}: {reason}")
        for name, reason in warmup_failed.items():
            report.append(f"* warm-up failure: {name}: {reason}")
        text = "\n".join(report)
        print(text)
        if args.save:
            Path(args.save).write_text(text + "\n")
        if args.raw:
            Path(args.raw).write_text(json.dumps(raw, indent=1))
        if failures:
            sys.exit(1)


if __name__ == "__main__":
    main()
