"""The Azure ML v1 how-to's scenario end to end: upload -> dataset -> run -> publish -> trigger.

    python examples/iris/run.py --backend inline      # or process, docker, dask
    python examples/iris/run.py --backend dask --address tcp://127.0.0.1:18786
    python examples/iris/run.py --store /tmp/iris-store

1. writes the iris table (scikit-learn's bundled copy: no download) to a CSV and uploads it
   to the store's datastore (``Datastore.upload_files``);
2. registers it as the tabular dataset ``iris`` (version 1, pinned to its content);
3. runs ``iris_training`` on the chosen backend, then again with another ``c``: only the
   logistic regression and the comparison rerun;
4. publishes the pipeline as ``iris``;
5. starts ``ductwork serve`` on a free loopback port (the same store and backend), makes a
   runner token and triggers the published pipeline over REST with ``dw.Client``, waits for
   the run and prints its steps; the server is stopped at the end.

``--store`` sets ``DUCTWORK_STORE`` for the script and the server it starts; the default is
ductwork's (``$DUCTWORK_STORE`` or ``./.ductwork``). Exit status 0 when every run succeeded.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ductwork as dw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # iris_pipeline beside this file, however the script is started

from iris_pipeline import DATASET, IRIS_CSV, iris_training  # noqa: E402

BACKENDS = ("inline", "process", "docker", "dask")


def write_iris_csv(folder: Path) -> Path:
    """scikit-learn's bundled iris table as ``iris.csv``: four features and ``target``."""
    from sklearn.datasets import load_iris

    path = folder / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(path, index=False)
    return path


def upload_and_register() -> dw.Dataset:
    """Upload the CSV to the store's datastore and register it as dataset ``iris``."""
    lake = dw.datastore()  # the run store's own datastore: <store>/datastore/
    with tempfile.TemporaryDirectory() as tmp:
        csv = write_iris_csv(Path(tmp))
        # overwrite=True: a second run of the script uploads the same bytes again.
        lake.upload_files([csv], target_path="iris", overwrite=True)
    print(f"uploaded: {lake.list('iris')}")
    # A version pins the content: dw.Dataset.get("iris", version=1) refuses changed files.
    version = dw.Dataset.tabular(IRIS_CSV).register(
        DATASET, description="Fisher's iris, from scikit-learn")
    print(f"dataset {DATASET!r} version {version.version}")
    return version


def free_port() -> int:
    """A TCP port nothing listens on now on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ductwork_cli(*args: str) -> str:
    """Run ``python -m ductwork ARGS`` and return its stdout (raise with stderr on failure)."""
    done = subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"ductwork {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


class Server:
    """``ductwork serve`` in a child process on a free loopback port, stopped on exit."""

    def __init__(self, backend: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="iris-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork", "serve", "--port", str(self.port),
             "--backend", backend, "--max-runs", "1"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise SystemExit(f"ductwork serve did not start:\n{self.output()}") from None
                time.sleep(0.1)

    def output(self) -> str:
        """What the server printed so far."""
        return Path(self.log.name).read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        os.unlink(self.log.name)


def show(run: dw.Run) -> None:
    """One line per step: state, duration, metrics."""
    for s in run.steps.values():
        state = "cached" if s.cached else s.status
        metrics = " ".join(f"{k}={v:.3f}" for k, v in sorted(s.metrics.items()))
        print(f"  {s.id:<18} {state:<10} {s.duration or 0:7.3f}s  {metrics}")


def trigger_over_rest(backend: str, parameters: dict, timeout: float) -> dict:
    """Serve the store, make a runner token, trigger ``iris`` with ``parameters``, wait."""
    token = ductwork_cli("token", "create", f"iris-{os.getpid()}-{time.time_ns()}",
                         "--role", "runner").strip()
    with Server(backend) as server, dw.Client(server.url, token=token) as client:
        print(f"serving at {server.url}; pipelines: "
              f"{[(p['name'], p['default_version']) for p in client.pipelines()]}")
        run_id = client.trigger("iris", parameters=parameters)
        print(f"triggered run {run_id} with {parameters}")
        record = client.wait(run_id, timeout=timeout)
        for s in record["steps"]:
            state = "cached" if s["cached"] else s["status"]
            print(f"  {s['id']:<18} {state:<10} {s['metrics']}")
        if record["status"] != "succeeded":
            failed = [s["id"] for s in record["steps"] if s["status"] == "failed"]
            logs = "\n".join(client.logs(run_id, step_id) for step_id in failed)
            raise SystemExit(f"the triggered run {record['status']}:\n{logs}\n{server.output()}")
        return {"run_id": run_id, **record}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, default="inline",
                        help="where the steps run (default: inline)")
    parser.add_argument("--store", help="artifact store: a folder or az://container/prefix "
                        "(default: $DUCTWORK_STORE or ./.ductwork)")
    parser.add_argument("--address", help="dask only: a scheduler such as "
                        "tcp://127.0.0.1:18786, whose workers share this filesystem "
                        "(default: a local cluster ductwork starts)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds to wait for the triggered run (default: 600)")
    args = parser.parse_args(argv)
    if args.store:
        os.environ["DUCTWORK_STORE"] = args.store  # for dw.datastore(), the CLI and the server
    options: dict = {"backend": args.backend, "progress": False}
    if args.backend == "dask" and args.address:
        options.update(address=args.address, shared_filesystem=True)

    upload_and_register()

    run = iris_training.run(**options)
    print(f"run {run.id} {run.status}: {run.outputs}")
    show(run)
    again = iris_training.run(c=0.3, **options)
    print(f"run {again.id} (c=0.3) {again.status}: {again.outputs}")
    show(again)

    published = iris_training.publish(name="iris", description="iris: prep, train two, compare")
    print(f"published {published.name} version {published.version}")

    record = trigger_over_rest(args.backend, {"c": 0.5, "max_depth": 2}, args.timeout)
    print(f"REST run {record['run_id']} {record['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
