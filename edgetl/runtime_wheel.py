"""Build the ``edgetl-runtime`` wheel: the torch-free package a device installs (and the SSH benchmark ships).

The wheel's metadata is ``packaging/edgetl-runtime.toml``; its code is ``edgetl_runtime/``
as it is in this checkout. The build runs setuptools offline (no build isolation, no index)
and is cached by the hash of its sources, so a benchmark does not rebuild it each time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .atomic import atomic_path
from .errors import EdgetlError

PACKAGE = "edgetl_runtime"
PYPROJECT = Path(__file__).resolve().parent.parent / "packaging" / "edgetl-runtime.toml"


def _sources() -> tuple[Path, list[Path]]:
    import edgetl_runtime

    root = Path(edgetl_runtime.__file__).resolve().parent
    return root, sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _digest(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256(PYPROJECT.read_bytes())
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def build_wheel(out_dir: str | Path | None = None) -> Path:
    """The wheel file (``edgetl_runtime-<version>-py3-none-any.whl``), built if this source has none yet."""
    from edgetl_runtime import __version__

    if not PYPROJECT.is_file():
        raise EdgetlError(f"{PYPROJECT} is missing: the edgetl-runtime wheel can be built only from an edgetl checkout")
    root, files = _sources()
    cache = (
        Path(out_dir)
        if out_dir
        else Path(os.environ.get("EDGETL_CACHE", Path.home() / ".cache" / "edgetl")) / "wheels" / _digest(root, files)
    )
    wheel = cache / f"{PACKAGE}-{__version__}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgetl-runtime-build-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(root, project / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(PYPROJECT, project / "pyproject.toml")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(Path(tmp) / "dist"),
            str(project),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        built = list((Path(tmp) / "dist").glob("*.whl"))
        if proc.returncode != 0 or len(built) != 1:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgetlError(f"building the edgetl-runtime wheel failed ({tail[:200]}); is setuptools installed?")
        with atomic_path(wheel) as dest:
            shutil.copy2(built[0], dest)
    return wheel


def device_venv(root: Path, packages: tuple[str, ...], dists: tuple[str, ...]) -> Path:
    """A venv at ``root`` holding only the runtime wheel and ``packages`` (with their ``dists``' metadata), linked
    from this interpreter's site-packages: a device's install, made offline (tests and benchmarks)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p, "numpy").is_dir()))
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for name in packages:
        if (ours / name).exists():
            (site / name).symlink_to(ours / name)
    for dist in dists:
        for info in ours.glob(f"{dist.replace('-', '_')}-*.dist-info"):
            (site / info.name).symlink_to(info)
    cmd = [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "--no-deps", "--no-index",
           "--disable-pip-version-check", "-q", str(build_wheel())]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EdgetlError(
            f"installing the edgetl-runtime wheel into {root} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    return root
