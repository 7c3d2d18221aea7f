"""Build ductwork's base container image offline from the host's Debian Python 3.11.

There is no registry to pull a base image from, so the image is made in two stages:

1. rootfs -> ``TAG-root``: the files of the host's Debian packages for Python 3.11
   (interpreter, stdlib, venv, the pip/setuptools wheels ensurepip uses), dash, bash
   and coreutils, plus the shared-library closure of every ELF file among them (from
   ``ldd``), are copied into a merged-/usr tree with a CA bundle, /etc/passwd (root,
   nobody) and /tmp, then ``tar | docker import``. No network; a few seconds.
2. venv -> ``TAG``: ``docker build --force-rm`` FROM that image creates /opt/venv, puts
   it first on PATH, points SSL_CERT_FILE/PIP_CERT/REQUESTS_CA_BUNDLE at the bundle
   and pip-installs the exact versions of ductwork's runtime dependencies that the
   host's venv (this interpreter) has. ductwork itself is not installed: its source is
   bind-mounted by the docker backend.

The image carries those pins in the label ``org.ductwork.requirements``; when the
image exists with the same pins nothing is built. Run with the project's venv Python:

    .venv/bin/python scripts/docker/build_base_image.py [--tag T] [--ca-bundle F] [--rebuild]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCKERFILE = HERE / "python.Dockerfile"
LABEL = "org.ductwork.requirements"
CA_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"

# Debian packages whose files make up the interpreter and a shell; optional ones are
# taken when installed (ensurepip needs the wheels).
PACKAGES = [
    "python3.11",
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3.11-venv",
    "dash",
    "bash",
    "coreutils",
    # The manylinux baseline that binary wheels (blake3, numpy, ...) link against
    # without shipping it: all of glibc's libraries, libgcc_s, libstdc++.
    "libc6",
    "libgcc-s1",
    "libstdc++6",
]
OPTIONAL_PACKAGES = ["python3-pip-whl", "python3-setuptools-whl"]
SKIP_PREFIXES = (
    *(
        f"/usr/share/{d}/"
        for d in (
            "doc",
            "doc-base",
            "man",
            "info",
            "lintian",
            "locale",
            "bash-completion",
            "menu",
            "gdb",
            "i18n",
        )
    ),
    "/usr/lib/x86_64-linux-gnu/gconv/",
    "/lib/x86_64-linux-gnu/gconv/",
)
MERGED = ("bin", "sbin", "lib", "lib64")


def log(msg: str) -> None:
    print(f"[image] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, failing with its output if it fails."""
    return subprocess.run(cmd, check=True, text=True, **kw)


def runtime_pins(dist: str = "ductwork") -> list[str]:
    """Return ``name==version`` for dist's runtime requirements here, transitively.

    Extras are left out; markers are evaluated for this interpreter (the image has
    the same minor version). Each pin is the version installed in this environment.
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors it
        from pip._vendor.packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = [dist]
    while todo:
        for spec in importlib.metadata.requires(todo.pop()) or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = re.sub(r"[-_.]+", "-", req.name).lower()
            if key not in pins:
                pins[key] = importlib.metadata.version(req.name)
                todo.append(req.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def image_label(tag: str) -> str | None:
    """Return the requirements label of image tag, or None if it does not exist."""
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', tag],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def dpkg_files(packages: list[str]) -> list[str]:
    """Return the paths dpkg lists for the packages."""
    out = run(["dpkg", "-L", *packages], capture_output=True).stdout
    return [p for p in out.splitlines() if p.startswith("/") and p != "/."]


def installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True
    )
    return proc.returncode == 0 and proc.stdout.endswith(" installed")


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def ldd_closure(files: list[str]) -> set[str]:
    """Return every shared library (and the loader) the ELF files load."""
    libs: set[str] = set()
    for i in range(0, len(files), 200):
        proc = subprocess.run(["ldd", *files[i : i + 200]], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            line = line.strip()
            if "not found" in line:
                log(f"warning: ldd: {line}")
            m = re.search(r"=> (/\S+)", line) or re.match(r"(/\S+) \(0x", line)
            if m:
                libs.add(m.group(1))
    return libs


def in_rootfs(path: str) -> str:
    """Map a host path to its merged-/usr location (/bin/sh -> /usr/bin/sh)."""
    first = path.split("/")[1]
    return "/usr" + path if first in MERGED else path


def copy_tree(paths: set[str], rootfs: Path) -> tuple[int, set[str]]:
    """Copy paths into rootfs, recreating symlinks and following them to their targets."""
    todo = sorted(paths)
    done: set[str] = set()
    elves: set[str] = set()
    count = 0
    while todo:
        src = os.path.normpath(todo.pop())
        if src in done or src.startswith(SKIP_PREFIXES) or src.lstrip("/") in MERGED:
            continue
        done.add(src)
        if not os.path.lexists(src):
            continue
        dest = rootfs / in_rootfs(src).lstrip("/")
        if os.path.islink(src):
            target = os.readlink(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(dest):
                dest.symlink_to(target)
            todo.append(os.path.join(os.path.dirname(src), target))
            count += 1
        elif os.path.isdir(src):
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            count += 1
            if src.endswith(".py"):
                # Debian compiles bytecode at install time; ship it so containers
                # do not recompile the stdlib on every start.
                pyc = Path(src).parent / "__pycache__" / f"{Path(src).stem}.cpython-311.pyc"
                if pyc.exists():
                    todo.append(str(pyc))
            elif is_elf(src):
                elves.add(src)
    return count, elves


def make_rootfs(rootfs: Path, ca_bundle: Path) -> None:
    """Assemble the merged-/usr root file system from the host's packages."""
    for d in MERGED:
        (rootfs / "usr" / d).mkdir(parents=True, exist_ok=True)
        (rootfs / d).symlink_to(f"usr/{d}")
    packages = PACKAGES + [p for p in OPTIONAL_PACKAGES if installed(p)]
    missing = [p for p in packages if not installed(p)]
    if missing:
        raise SystemExit(f"[image] ERROR: Debian packages not installed: {' '.join(missing)}")
    log(f"packages: {' '.join(packages)}")
    count, elves = copy_tree(set(dpkg_files(packages)), rootfs)
    libs = ldd_closure(sorted(elves))
    seen_libs: set[str] = set()
    while libs - seen_libs:  # libraries are ELF too; ldd's closure is already transitive
        new = libs - seen_libs
        seen_libs |= new
        n, _ = copy_tree(new, rootfs)
        count += n
    log(f"copied {count} files and links, {len(seen_libs)} shared libraries")

    usr_bin = rootfs / "usr/bin"
    for name, target in (("sh", "dash"), ("python3", "python3.11"), ("python", "python3.11")):
        if not (usr_bin / name).exists():
            (usr_bin / name).symlink_to(target)
    etc = rootfs / "etc"
    (etc / "ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_bundle, rootfs / CA_IN_IMAGE.lstrip("/"))
    # OpenSSL's compiled-in defaults look here; point them at the bundle too.
    ssl_dir = rootfs / "usr/lib/ssl"
    ssl_dir.mkdir(parents=True, exist_ok=True)
    for name, target in (("certs", "/etc/ssl/certs"), ("cert.pem", CA_IN_IMAGE)):
        if not (ssl_dir / name).is_symlink():
            (ssl_dir / name).symlink_to(target)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    for name in ("hosts", "resolv.conf", "hostname"):  # docker bind-mounts over these
        (etc / name).touch()
    for d, mode in (
        ("tmp", 0o1777),
        ("var/tmp", 0o1777),
        ("root", 0o700),
        ("opt", 0o755),
        ("home", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
    ):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
        os.chmod(rootfs / d, mode)


def import_rootfs(rootfs: Path, tag: str) -> None:
    """Pipe the tree into ``docker import`` as tag."""
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "--owner=0", "--group=0", "-c", "."],
        stdout=subprocess.PIPE,
    )
    try:
        run(
            [
                "docker",
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3.11"]',
                "--message",
                "ductwork base rootfs from the host's Debian python3.11",
                "-",
                tag,
            ],
            stdin=tar.stdout,
            stdout=subprocess.DEVNULL,
        )
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise SystemExit("[image] ERROR: tar of the rootfs failed")


def build_venv_stage(root_tag: str, tag: str, pins: list[str]) -> None:
    """docker build the venv stage FROM root_tag with the pinned requirements."""
    with tempfile.TemporaryDirectory(prefix="ductwork-build-") as ctx:
        shutil.copyfile(DOCKERFILE, Path(ctx) / "Dockerfile")
        run(
            [
                "docker",
                "build",
                "--force-rm",
                "--network",
                "host",
                "--build-arg",
                f"BASE={root_tag}",
                "--build-arg",
                f"REQUIREMENTS={' '.join(pins)}",
                "--build-arg",
                f"CA_BUNDLE={CA_IN_IMAGE}",
                "--label",
                f"{LABEL}={' '.join(pins)}",
                "-t",
                tag,
                ctx,
            ],
            env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the legacy builder, as the SDK uses
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="ductwork/python:3.11")
    parser.add_argument(
        "--ca-bundle",
        default="/etc/ssl/certs/ca-certificates.crt",
        help="CA bundle to trust inside the image (default: the host's)",
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild both stages")
    args = parser.parse_args()
    root_tag = f"{args.tag}-root"
    ca_bundle = Path(args.ca_bundle)
    if not ca_bundle.is_file():
        raise SystemExit(
            f"[image] ERROR: CA bundle {ca_bundle} not found: pass --ca-bundle "
            "or set DUCTWORK_CA_BUNDLE"
        )
    pins = runtime_pins()
    log(f"runtime pins from {sys.prefix}: {' '.join(pins)}")

    if not args.rebuild and image_label(args.tag) == " ".join(pins):
        log(f"{args.tag} is present with these pins: nothing to build")
    else:
        total = time.perf_counter()
        if args.rebuild or not image_exists(root_tag):
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="ductwork-rootfs-") as tmp:
                rootfs = Path(tmp) / "rootfs"
                rootfs.mkdir()
                make_rootfs(rootfs, ca_bundle)
                size = run(["du", "-sm", str(rootfs)], capture_output=True).stdout.split()[0]
                t1 = time.perf_counter()
                log(f"rootfs: {t1 - t0:.1f} s ({size} MB)")
                import_rootfs(rootfs, root_tag)
                log(f"import -> {root_tag}: {time.perf_counter() - t1:.1f} s")
        else:
            log(f"{root_tag} present: reusing it")
        t0 = time.perf_counter()
        build_venv_stage(root_tag, args.tag, pins)
        log(f"venv stage -> {args.tag}: {time.perf_counter() - t0:.1f} s")
        log(f"built in {time.perf_counter() - total:.1f} s")

    info = run(
        ["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", args.tag],
        capture_output=True,
    ).stdout.split()
    log(f"{args.tag} {info[0]} ({int(info[1]) / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
