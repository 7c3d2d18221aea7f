"""Compare two git revisions of ductwork on W1/W2/W3 and the Dask benchmark, as users install it.

    python benchmarks/compare.py OLD_REV NEW_REV [--quick] [--only import,w1,w2,w3,dask]
                                 [--repeat N] [--scripts new|own|worktree] [--dask-address ADDR]

For each revision: ``git archive`` into a temp dir, ``pip wheel --no-deps``, a venv of its own
with ``pip install "<wheel>[all]"`` (dependencies from the package registry), then
``python -m compileall`` over the installed package: the .pyc files a user's install has
(``PYTHONDONTWRITEBYTECODE`` only stops *writing* .pyc; they are read as usual). Wheel and venv
are cached by commit under ``~/.cache/ductwork-bench/`` and reused while the commit, the
interpreter and the wheel's contents are the same.

Both revisions run the same benchmark code: the scripts of NEW_REV's ``benchmarks/`` folder
(``--scripts own``: each revision its own; ``worktree``: this checkout's). They are run with
each venv's python, alternating old, new, old, new, ... ``--repeat`` times (default 3), so
that the load of this shared machine hits both alike, from a scratch directory outside any
source tree (a small git repository of its own, as a user's project is: the runs' git probe
has something to look at), so ``import ductwork`` is the installed wheel (checked before the
runs). Rows are read from each script's ``--json`` output (or its printed table, for a script
without that option) and printed as one table: median and range over the repeats, new / old,
and each side's ratio to the row's floor.

The Dask benchmark runs twice per revision: on a ``LocalCluster`` started by the script, and
on a cluster started with Dask's CLI (scheduler and 2 single-threaded workers on loopback,
as ``scripts/services.sh up dask`` does) from *that revision's venv*, so its workers run the
wheel under test. The shared cluster of ``services.sh`` imports the checkout's ductwork in
its workers, which would mix versions; ``--dask-address`` uses it (or any cluster) anyway.
Progress goes to stderr; the table to stdout (and ``--save FILE``); every script's whole
output to ``~/.cache/ductwork-bench/last-logs/``. A full comparison takes 35-50 minutes here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("DUCTWORK_BENCH_CACHE",
                            Path.home() / ".cache" / "ductwork-bench"))
SCRIPT_FILES = ("_table.py", "pipeline_bench.py", "w2_bench.py", "dask_bench.py")
PARTS = ("import", "w1", "w2", "w3", "dask")
DASK_WORKERS = 2


def log(msg: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --- building and installing -----------------------------------------------------------------


@dataclass
class Install:
    """One revision, built into a wheel and installed into a venv of its own."""

    label: str  # "old" / "new"
    rev: str
    commit: str
    subject: str
    date: str
    wheel: Path | None = None
    venv: Path | None = None
    reused: bool = False
    ductwork_file: str = ""
    pyc: str = ""
    built_from: str = ""  # the commit a reused venv's wheel was built from
    scripts: Path | None = None
    home: Path | None = None

    @property
    def python(self) -> Path:
        assert self.venv is not None
        return self.venv / "bin" / "python"

    def describe(self) -> str:
        assert self.wheel is not None and self.venv is not None
        return (f"{self.label}: {self.wheel.name} built from {self.commit[:12]} ({self.rev}; "
                f"{self.date}, \"{self.subject}\"), byte-compiled, installed into "
                f"{self.venv}{self.reuse_note()}; import ductwork -> "
                f"{self.ductwork_file} ({self.pyc})")

    def reuse_note(self) -> str:
        if not self.reused:
            return ""
        if self.built_from and self.built_from != self.commit:
            return (f" (reused: the same package files and dependencies as the wheel of "
                    f"{self.built_from[:12]})")
        return " (reused)"


def base_python() -> str:
    """The interpreter the venvs are made from: this one's base (both revisions alike)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def wheel_digest(wheel: Path) -> str:
    """What the wheel installs: its files and its metadata's headers (the dependencies).

    Not a digest of the zip (its timestamps change every build), nor of the long description
    (README.md): a commit that changes neither the package nor its dependencies installs the
    same thing, and reuses the venv.
    """
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for info in sorted(z.infolist(), key=lambda i: i.filename):
            data = z.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                continue
            if info.filename.endswith(".dist-info/METADATA"):
                data = data.split(b"\n\n", 1)[0]
            h.update(info.filename.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def prune(keep: set[Path], most: int = 4) -> None:
    """Remove the least recently used venvs beyond ``most`` (never those in ``keep``)."""
    venvs = sorted(CACHE.glob("venv-*/ductwork-bench.json"), key=lambda m: m.stat().st_mtime,
                   reverse=True)
    for marker in venvs[most:]:
        venv = marker.parent
        if venv not in keep:
            log(f"removing the least recently used {venv}")
            shutil.rmtree(venv, ignore_errors=True)
            shutil.rmtree(CACHE / "wheels" / venv.name.removeprefix("venv-"), ignore_errors=True)


def build_wheel(repo: Path, inst: Install, work: Path) -> Path:
    """``git archive`` of the commit into a temp dir, and ``pip wheel --no-deps`` of it."""
    src = work / f"src-{inst.commit[:12]}"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", inst.commit],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    out = work / f"wheel-{inst.commit[:12]}"
    log(f"{inst.label}: building a wheel of {inst.commit[:12]}")
    done = subprocess.run([base_python(), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                           str(src)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{inst.label}: pip wheel failed:\n{done.stdout}\n{done.stderr}")
    wheels = list(out.glob("ductwork-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one ductwork wheel in {out}, found {wheels}")
    shutil.rmtree(src, ignore_errors=True)
    return wheels[0]


def site_packages(venv: Path) -> Path:
    found = list((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"no single site-packages in {venv}: {found}")
    return found[0]


def install(repo: Path, inst: Install, work: Path) -> None:
    """A venv with the revision's wheel and its ``[all]`` dependencies, byte-compiled.

    Cached under CACHE by what the wheel installs and the interpreter: a commit whose wheel
    installs the same files and dependencies as an earlier one reuses its venv.
    """
    py = base_python()
    version = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                             check=True, capture_output=True, text=True).stdout.strip()
    wheel = build_wheel(repo, inst, work)
    digest = wheel_digest(wheel)
    key = f"{digest[:12]}-py{version}"
    venv = CACHE / f"venv-{key}"
    marker = venv / "ductwork-bench.json"
    kept = CACHE / "wheels" / key
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("wheel_digest") == digest and Path(info.get("python", "")).exists():
            inst.wheel, inst.venv, inst.reused = kept / wheel.name, venv, True
            inst.built_from = info.get("commit", "")
            marker.touch()  # recently used
            log(f"{inst.label}: reusing {venv} (the same wheel contents, first built from "
                f"{inst.built_from[:12]})")
            return
    log(f"{inst.label}: installing into {venv} (pip install '{wheel.name}[all]')")
    shutil.rmtree(venv, ignore_errors=True)
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    shutil.copy2(wheel, kept / wheel.name)
    subprocess.run([py, "-m", "venv", str(venv)], check=True)
    vpy = str(venv / "bin" / "python")
    pip_log = CACHE / f"pip-{key}.log"
    with open(pip_log, "w") as out:
        done = subprocess.run([vpy, "-m", "pip", "install", f"{kept / wheel.name}[all]"],
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(pip_log.read_text().splitlines()[-20:])
        raise SystemExit(f"{inst.label}: pip install failed (log {pip_log}):\n{tail}")
    # pip compiles what it installs by default; do it explicitly, as the project's rule says.
    pkg = site_packages(venv) / "ductwork"
    subprocess.run([vpy, "-m", "compileall", "-q", str(pkg)], check=True)
    marker.write_text(json.dumps({"commit": inst.commit, "wheel": wheel.name,
                                  "wheel_digest": digest, "python": vpy,
                                  "installed": datetime.datetime.now().isoformat()}))
    inst.wheel, inst.venv = kept / wheel.name, venv


# --- running ---------------------------------------------------------------------------------


def clean_env(inst: Install) -> dict[str, str]:
    """This environment, without anything that would point Python at another ductwork."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX", "PYTHONSTARTUP",
                        "VIRTUAL_ENV", "DUCTWORK_STORE", "DUCTWORK_HOME", "__PYVENV_LAUNCHER__")}
    assert inst.venv is not None and inst.home is not None
    env["VIRTUAL_ENV"] = str(inst.venv)
    env["PATH"] = f"{inst.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["DUCTWORK_HOME"] = str(inst.home)  # the user's ~/.ductwork is neither read nor written
    return env


PROBE = r"""
import json, os, sys, importlib.util
import ductwork, ductwork.runtime
mods = [m for n, m in sorted(sys.modules.items()) if n.startswith("ductwork") and
        getattr(m, "__file__", None)]
cached = [m for m in mods if m.__spec__ and m.__spec__.cached and os.path.exists(m.__spec__.cached)]
print(json.dumps({"file": ductwork.__file__, "version": ductwork.__version__,
                  "modules": len(mods), "with_pyc": len(cached),
                  "dont_write": sys.dont_write_bytecode, "prefix": sys.pycache_prefix}))
"""


def verify(inst: Install, cwd: Path) -> None:
    """``import ductwork`` from the scratch cwd is the installed wheel, with its .pyc files."""
    out = subprocess.run([str(inst.python), "-c", PROBE], cwd=cwd, env=clean_env(inst),
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    sp = str(site_packages(inst.venv))  # type: ignore[arg-type]
    if not info["file"].startswith(sp + os.sep):
        raise SystemExit(f"{inst.label}: import ductwork gave {info['file']}, not the wheel "
                         f"installed in {sp}")
    # -v shows where each module's code comes from: a .pyc read, or source compiled now
    code = ("import ductwork\ntry:\n    import ductwork.runtime.runner\n"
            "except ImportError:\n    pass\n")
    verbose = subprocess.run([str(inst.python), "-v", "-c", code], cwd=cwd, env=clean_env(inst),
                             capture_output=True, text=True).stderr
    loaded = re.findall(r"^# code object from '?(\S*?site-packages/ductwork/\S*?)'?$", verbose,
                        re.MULTILINE)
    from_pyc = sum(p.endswith(".pyc") for p in loaded)
    from_src = len(loaded) - from_pyc
    inst.ductwork_file = info["file"]
    inst.pyc = (f"the {info['modules']} ductwork modules it loads have a .pyc: "
                f"{info['with_pyc']}; with the runtime's runner {from_pyc} modules read from "
                f".pyc, {from_src} compiled")
    log(f"{inst.label}: ductwork {info['version']} from {info['file']}; {inst.pyc}")
    if from_src:
        raise SystemExit(f"{inst.label}: {from_src} ductwork modules were compiled at import: "
                         "the installed .pyc files are not used")


def prepare_scripts(repo: Path, rev: str | None, dest: Path) -> Path:
    """The benchmark scripts at ``rev`` (None: this checkout's benchmarks/ folder) in ``dest``.

    A script that ``rev`` does not have is left out (its runs fail, and say so).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in SCRIPT_FILES:
        if rev is None:
            shutil.copy2(HERE / name, dest / name)
            continue
        done = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:benchmarks/{name}"],
                              capture_output=True)
        if done.returncode == 0:
            (dest / name).write_bytes(done.stdout)
    return dest


@dataclass
class Job:
    """One benchmark invocation: a script, its arguments and a label prefix for its rows."""

    key: str  # e.g. "pipeline", "w2", "dask-local", "dask-cli"
    script: str
    args: list[str]
    prefix: str = ""


@dataclass
class Sample:
    value: str
    floor: str
    ratio: str
    target: str
    result: str


@dataclass
class Series:
    name: str
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"old": [], "new": []})


def parse_text_table(text: str) -> list[dict[str, str]]:
    """The rows of a table printed by _table.print_table: column widths from its dashes line."""
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], 1):
        if re.fullmatch(r"-+(  -+){5}", line) and lines[i - 1].startswith("measurement"):
            break
    else:
        return []
    widths = [len(d) for d in lines[i].split("  ")]
    rows = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        cells, pos = [], 0
        for w in widths:
            cells.append(line[pos:pos + w].strip())
            pos += w + 2
        rows.append(dict(zip(("name", "value", "floor", "ratio", "target", "result"), cells,
                             strict=True)))
    return rows


class JobFailed(Exception):
    """A benchmark script exited with an error (the message: the end of its stderr)."""


def run_job(inst: Install, job: Job, cwd: Path, work: Path, logs: Path,
            scripts: Path | None = None) -> list[dict[str, str]]:
    scripts = scripts or inst.scripts
    assert scripts is not None
    script = scripts / job.script
    args = list(job.args)
    json_file = None
    if "add_json_option(parser)" in script.read_text():
        json_file = work / f"{job.key}-{inst.label}.json"
        with contextlib.suppress(FileNotFoundError):
            json_file.unlink()
        args += ["--json", str(json_file)]
    t = time.perf_counter()
    done = subprocess.run([str(inst.python), str(script), *args], cwd=cwd, env=clean_env(inst),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t
    n = len(list(logs.glob(f"{job.key}-{inst.label}-*.log")))
    log_path = logs / f"{job.key}-{inst.label}-{n + 1}.log"
    log_path.write_text(f"$ {inst.python} {script} {' '.join(args)}\n(cwd {cwd}, "
                        f"{seconds:.1f} s, exit {done.returncode})\n\n--- stdout\n{done.stdout}"
                        f"\n--- stderr\n{done.stderr}")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        log(f"{inst.label} {job.key}: FAILED (exit {done.returncode}, log {log_path}):\n{tail}")
        raise JobFailed(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                        f"exit {done.returncode}")
    if json_file is not None and json_file.exists():
        rows = json.loads(json_file.read_text())["rows"]
    else:
        rows = parse_text_table(done.stdout)
    log(f"{inst.label} {job.key}: {len(rows)} rows in {seconds:.1f} s (load {load()})")
    return rows


# --- a Dask cluster of each venv -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CliCluster:
    """``dask scheduler`` + ``dask worker --nworkers 2 --nthreads 1`` from one venv, on loopback.

    The same shape as ``scripts/services.sh up dask``; its workers import this venv's
    ductwork. Started in a process group of its own, stopped by that group's id.
    """

    def __init__(self, inst: Install, cwd: Path, logs: Path) -> None:
        self.inst, self.cwd, self.logs = inst, cwd, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, name: str, *args: str) -> None:
        assert self.inst.venv is not None
        out = open(self.logs / f"dask-{name}-{self.inst.label}.log", "ab")
        self.procs.append(subprocess.Popen(
            [str(self.inst.venv / "bin" / "dask"), name, *args], cwd=self.cwd,
            env=clean_env(self.inst), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True))
        out.close()

    def __enter__(self) -> CliCluster:
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        log(f"{self.inst.label}: starting a Dask CLI cluster on {self.address}")
        self._start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                    "--dashboard-address", "127.0.0.1:0")
        self._start("worker", self.address, "--nworkers", str(DASK_WORKERS), "--nthreads", "1",
                    "--no-dashboard", "--host", "127.0.0.1")
        wait = ("import sys, time\nfrom distributed import Client\n"
                "deadline = time.monotonic() + 90\n"
                "while True:\n"
                "    try:\n"
                "        with Client(sys.argv[1], timeout=5) as c:\n"
                "            c.wait_for_workers(int(sys.argv[2]), timeout=60)\n"
                "            break\n"
                "    except Exception:\n"
                "        if time.monotonic() > deadline:\n"
                "            raise\n"
                "        time.sleep(0.5)\n")
        try:
            subprocess.run([str(self.inst.python), "-c", wait, self.address, str(DASK_WORKERS)],
                           cwd=self.cwd, env=clean_env(self.inst), check=True,
                           capture_output=True, timeout=150)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in reversed(self.procs):  # workers first, then the scheduler
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


# --- the table -------------------------------------------------------------------------------

UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "B": 1, "KiB": 1024, "MiB": 1 << 20,
         "GiB": 1 << 30}
NUMBER = re.compile(r"^(-?[\d,]*\.?\d+)\s*([A-Za-z]+)?(/\w+)?(.*)$")


def parse_value(text: str) -> tuple[float, str, str] | None:
    """``"1.167 ms/step"`` -> (0.001167, "ms", "/step"); None for what is not one number."""
    m = NUMBER.match(text.strip())
    if not m or (m.group(4) or "").strip():
        return None
    unit = m.group(2) or ""
    if unit and unit not in UNITS:
        return None
    return float(m.group(1).replace(",", "")) * UNITS.get(unit, 1.0), unit, m.group(3) or ""


def parse_ratio(text: str) -> float | None:
    m = re.fullmatch(r"(-?[\d,]*\.?\d+)x", text.strip())
    return float(m.group(1).replace(",", "")) if m else None


def fmt(x: float, unit: str = "", per: str = "") -> str:
    """``x`` (in base units) in ``unit``, 3 significant digits or so: ``0.112 s``, ``1,350 ms``."""
    v = x / UNITS.get(unit, 1.0)
    a = abs(v)
    digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
    return f"{v:,.{digits}f} {unit}{per}".strip()


def side(samples: list[Sample]) -> tuple[str, list[float] | None, str, str]:
    """'median (min..max)', the numbers in base units, the unit, and the floor ratio column."""
    if not samples:
        return "-", None, "", "-"
    parsed = [parse_value(s.value) for s in samples]
    ratios = [r for r in (parse_ratio(s.ratio) for s in samples) if r is not None]
    fr = "-"
    if ratios:
        med = statistics.median(ratios)
        fr = f"{med:,.2f}x" if med < 100 else f"{med:,.0f}x"
        if len(ratios) > 1 and med < 100:
            fr += f" ({min(ratios):,.2f}..{max(ratios):,.2f})"
    if all(p is not None for p in parsed):
        nums = [p[0] for p in parsed]  # type: ignore[index]
        unit, per = parsed[0][1], parsed[0][2]  # type: ignore[index]
        text = fmt(statistics.median(nums), unit, per)
        if len(nums) > 1:  # the range in the median's unit, without it: "1.23 ms (1.01..2.50)"
            text += f" ({fmt(min(nums), unit).removesuffix(unit).strip()}.."
            text += f"{fmt(max(nums), unit).removesuffix(unit).strip()})"
        return text, nums, unit, fr
    distinct = list(dict.fromkeys(s.value for s in samples))
    return " / ".join(distinct), None, "", fr


def split_compound(row: dict[str, str]) -> list[dict[str, str]]:
    """``disk: a | b | c`` with value ``1 ms | 2 ms | 3 ms`` -> one row per part."""
    names, values = row["name"].split(" | "), row["value"].split(" | ")
    if len(names) < 2 or len(names) != len(values):
        return [row]
    prefix = names[0].rsplit(": ", 1)[0] + ": " if ": " in names[0] else ""
    out = []
    for i, (n, v) in enumerate(zip(names, values, strict=True)):
        out.append({**row, "name": n if i == 0 else prefix + n, "value": v,
                    "floor": "-", "ratio": "-"})
    return out


def normalize(name: str) -> str:
    """Row names that carry a count of this run (e.g. '(7 of 9 runs)') are one row."""
    return re.sub(r"\(\d+ of (\d+) runs\)", r"(k of \1 runs)", name)


def render(series: list[Series]) -> list[str]:
    header = ("measurement", "old: median (min..max)", "new: median (min..max)", "new/old",
              "verdict", "old vs floor", "new vs floor")
    table = []
    for s in series:
        o_text, o_nums, _, o_fr = side(s.samples["old"])
        n_text, n_nums, _, n_fr = side(s.samples["new"])
        rel, verdict = "-", ""
        if o_nums and n_nums:
            om, nm = statistics.median(o_nums), statistics.median(n_nums)
            if om > 0 and nm >= 0:
                rel = f"{nm / om:.2f}x"
                if len(o_nums) > 1 and len(n_nums) > 1:
                    if min(n_nums) > max(o_nums):
                        verdict = "slower"
                    elif max(n_nums) < min(o_nums):
                        verdict = "faster"
                    else:
                        verdict = "overlap"
        table.append((s.name, o_text, n_text, rel, verdict, o_fr, n_fr))
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    right = {1, 2, 3, 5, 6}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in table)]


# --- main ------------------------------------------------------------------------------------


def jobs_for(only: list[str], quick: bool, dask_address: str | None) -> list[Job]:
    q = ["--quick"] if quick else []
    jobs = []
    pipe = [p for p in ("import", "w1", "w3") if p in only]
    if pipe:
        jobs.append(Job("pipeline", "pipeline_bench.py", [*q, "--only", ",".join(pipe)]))
    if "w2" in only:
        jobs.append(Job("w2", "w2_bench.py", q))
    if "dask" in only:
        jobs.append(Job("dask-local", "dask_bench.py", q, "Dask LocalCluster: "))
        jobs.append(Job("dask-cli", "dask_bench.py", q,
                        "Dask CLI cluster (shared): " if dask_address else
                        "Dask CLI cluster (each venv's): "))
    return jobs


def scratch_project(work: Path) -> Path:
    """The runs' working directory: outside any source tree, a small git repo of its own
    (as a user's project is: the runs' git probe has something to look at)."""
    cwd = work / "project"
    cwd.mkdir()
    (cwd / "README").write_text("a scratch project for the benchmarks\n")
    for cmd in (["init", "-q"], ["add", "README"],
                ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit",
                 "-q", "-m", "scratch"]):
        subprocess.run(["git", "-C", str(cwd), *cmd], check=True)
    return cwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the baseline revision, e.g. d1d327a")
    parser.add_argument("new", help="the revision to compare, e.g. HEAD")
    parser.add_argument("--quick", action="store_true",
                        help="pass --quick to every script (a smoke test, not numbers to quote)")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each script per revision, alternating (default 3)")
    parser.add_argument("--scripts", choices=("new", "own", "worktree"), default="new",
                        help="benchmark code: NEW's benchmarks/ for both (default), each "
                        "revision's own, or this checkout's benchmarks/ folder")
    parser.add_argument("--dask-address",
                        help="run the CLI-cluster Dask row on this running cluster instead of "
                        "one started from each venv (its workers' ductwork is not the wheel's)")
    parser.add_argument("--save", help="also write the report to this file")
    parser.add_argument("--raw", help="write every sample as JSON to this file")
    args = parser.parse_args()
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(only) - set(PARTS)
    if unknown or not only:
        parser.error(f"--only: unknown {', '.join(sorted(unknown)) or '(empty)'}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    repo = Path(git(HERE, "rev-parse", "--show-toplevel"))
    started = time.monotonic()
    load_start = load()
    insts = []
    for label, rev in (("old", args.old), ("new", args.new)):
        commit = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
        subject, date = git(repo, "log", "-1", "--format=%s%x00%cs", commit).split("\0")
        insts.append(Install(label, rev, commit, subject, date))
    old, new = insts

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ductwork-compare-") as tmp:
        work = Path(tmp)
        logs = work / "logs"
        logs.mkdir()
        cwd = scratch_project(work)
        for inst in insts:
            install(repo, inst, work)
        prune({i.venv for i in insts if i.venv is not None})
        for inst in insts:
            inst.home = work / f"home-{inst.label}"
            inst.home.mkdir()
            verify(inst, cwd)
            rev = {"new": new.commit, "own": inst.commit, "worktree": None}[args.scripts]
            inst.scripts = prepare_scripts(repo, rev, work / f"scripts-{inst.label}")

        jobs = jobs_for(only, args.quick, args.dask_address)
        series: dict[str, Series] = {}
        raw: list[dict[str, Any]] = []
        failures: list[str] = []
        fallbacks: list[str] = []
        own: dict[tuple[str, str], Path] = {}  # (label, script) -> the scripts dir to use
        for job in jobs:
            clusters: list[contextlib.AbstractContextManager[Any]] = []
            stack = contextlib.ExitStack()
            with stack:
                if job.key == "dask-cli":
                    if args.dask_address:
                        addresses = {"old": args.dask_address, "new": args.dask_address}
                    else:
                        addresses = {}
                        for inst in insts:
                            c = stack.enter_context(CliCluster(inst, cwd, logs))
                            clusters.append(c)
                            addresses[inst.label] = c.address
                for r in range(args.repeat):
                    for inst in insts:  # old, new, old, new, ...: the load hits both alike
                        extra = (["--address", addresses[inst.label]]
                                 if job.key == "dask-cli" else [])
                        run = Job(job.key, job.script, [*job.args, *extra], job.prefix)
                        log(f"{job.key}: repeat {r + 1}/{args.repeat}, {inst.label}")
                        rows = []
                        failed = f"{inst.label} {job.key} repeat {r + 1}: no rows printed"
                        try:
                            rows = run_job(inst, run, cwd, work, logs,
                                           own.get((inst.label, job.script)))
                        except JobFailed as e:
                            failed = f"{inst.label} {job.key} repeat {r + 1}: {e}"
                            if args.scripts == "new" and inst is old and \
                                    (inst.label, job.script) not in own:
                                # NEW's script cannot run against the old wheel: from now on
                                # the old revision runs its own copy of the script.
                                own_dir = prepare_scripts(repo, inst.commit,
                                                          work / "scripts-old-own")
                                if (own_dir / job.script).exists():
                                    own[(inst.label, job.script)] = own_dir
                                    fallbacks.append(
                                        f"{job.script}: {new.rev}'s copy failed against the "
                                        f"old wheel ({e}); the old revision ran its own "
                                        f"benchmarks/{job.script} instead")
                                    log(f"old {job.key}: retrying with the old revision's own "
                                        f"{job.script}")
                                    with contextlib.suppress(JobFailed):
                                        rows = run_job(inst, run, cwd, work, logs, own_dir)
                        if not rows:
                            failures.append(failed)
                        for row in rows:
                            for part in split_compound(row):
                                name = job.prefix + normalize(part["name"])
                                s = series.setdefault(name, Series(name))
                                s.samples[inst.label].append(Sample(
                                    part["value"], part["floor"], part["ratio"],
                                    part["target"], part["result"]))
                                raw.append({"rev": inst.label, "job": job.key, "repeat": r,
                                            **part})
        # failed runs of one revision (e.g. a script the old wheel cannot run): keep going,
        # say so under the table
        for f in failures:
            log(f"failed: {f} (see the logs above)")
        elapsed = time.monotonic() - started
        scripts_from = {"own": "each revision's own benchmarks/",
                        "worktree": f"this checkout's benchmarks/ ({HERE}) for both",
                        "new": f"{new.rev}'s benchmarks/ ({new.commit[:12]}) for both"
                        }[args.scripts]
        report = [
            f"ductwork {old.rev} vs {new.rev}: Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, {platform.machine()}; "
            f"{'--quick (a smoke test), ' if args.quick else ''}{args.repeat} alternating "
            f"repeats; load average {load_start} at the start, {load()} at the end; "
            f"{elapsed / 60:.1f} min",
            old.describe(),
            new.describe(),
            f"benchmark scripts: {scripts_from}; run from a scratch git repo outside the "
            "source tree",
            "",
            *render(list(series.values())),
        ]
        notes = ["medians over the repeats (min..max); new/old of the medians; verdict: "
                 "'slower' / 'faster' when the two ranges do not overlap; 'vs floor': the "
                 "script's own ratio column (median, range)."]
        if "dask" in only and not args.dask_address:
            notes.append("Dask CLI cluster: `dask scheduler` + `dask worker --nworkers 2 "
                         "--nthreads 1` on loopback, started from each revision's venv "
                         "(like scripts/services.sh up dask, whose workers would import the "
                         "checkout's ductwork instead of the wheel).")
        if any("no .pyc" in name for name in series):
            notes.append("rows saying 'no .pyc' keep the scripts' wording: they run with "
                         "PYTHONDONTWRITEBYTECODE=1 and no private .pyc dir, but an installed, "
                         "byte-compiled wheel has its .pyc files, so only the benchmarks' "
                         "generated modules are compiled there.")
        notes += fallbacks
        if failures:
            notes.append("FAILED runs (their rows are missing): " + "; ".join(failures))
        report += ["", *(f"* {n}" for n in notes)]
        text = "\n".join(report)
        print(text)
        if args.save:
            Path(args.save).write_text(text + "\n")
        if args.raw:
            Path(args.raw).write_text(json.dumps(raw, indent=1))
        keep = CACHE / "last-logs"  # every script's full output: its notes, its own table
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(logs, keep)
        log(f"the output of every run: {keep}")
        if failures:
            sys.exit(1)


if __name__ == "__main__":
    main()
