"""Target profiles: one TOML file per machine to benchmark on (``targets/*.toml``).

A profile says how to reach the machine (``local`` or ``ssh``), which runtimes,
devices and precisions it runs, how many threads, and its budgets.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl_runtime import RUNTIMES, DeviceOptions

from ..errors import EdgetlError
from ..modality import MODALITIES  # each may have its own [budgets.<modality>]

BUDGET_KEYS = {"p90_ms": "p90 latency (ms)", "model_mb": "model size (MB)", "ram_mb": "peak RAM (MB)"}
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
PROFILE_RUNTIMES = (*RUNTIMES, "ctranslate2")  # ctranslate2: transcription artifacts only
BUDGET_SECTIONS = (*MODALITIES, "transcription")  # [budgets.transcription]: per clip, instead of the general ones


@dataclass
class Connection:
    kind: str = "local"  # "local" | "ssh"
    host: str | None = None
    user: str | None = None
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    python: str = "python3"
    workdir: str = "/tmp/edgetl-bench"

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}" if self.user else str(self.host)


@dataclass
class Profile:
    name: str
    path: Path
    description: str = ""
    accelerator: bool = False  # missing device -> skip with a reason instead of failing
    connection: Connection = field(default_factory=Connection)
    threads: int = 0
    runtimes: list[str] = field(default_factory=lambda: list(RUNTIMES))
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    device: DeviceOptions = field(default_factory=DeviceOptions)
    budgets: dict[str, float] = field(default_factory=dict)
    modality_budgets: dict[str, dict[str, float]] = field(default_factory=dict)  # [budgets.text] etc. override

    def budgets_for(self, modality: str) -> dict[str, float]:
        """The profile's budgets for a bundle of this modality (image, text, audio)."""
        return {**self.budgets, **self.modality_budgets.get(modality, {})}

    def resolved_threads(self) -> int:
        """0 means every core this process may use (locally); a device's own count otherwise."""
        if self.threads:
            return self.threads
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def targets_dirs() -> list[Path]:
    """Where profiles are looked up: $EDGETL_TARGETS, ./targets, then the ones shipped with edgetl."""
    dirs = [Path(d) for d in os.environ.get("EDGETL_TARGETS", "").split(os.pathsep) if d]
    dirs += [Path.cwd() / "targets", Path(__file__).resolve().parents[2] / "targets"]
    seen, out = set(), []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            out.append(d)
    return out


def list_profiles() -> list[Profile]:
    found: dict[str, Profile] = {}
    for d in targets_dirs():
        for f in sorted(d.glob("*.toml")):
            profile = load_profile(f)
            found.setdefault(profile.name, profile)
    return list(found.values())


def find_profile(name_or_path: str) -> Profile:
    """A profile by name (``cpu``) or by path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise EdgetlError(f"target profile {p} does not exist")
        return load_profile(p)
    for d in targets_dirs():
        if (d / f"{name_or_path}.toml").is_file():
            return load_profile(d / f"{name_or_path}.toml")
    known = ", ".join(pr.name for pr in list_profiles()) or "none found"
    raise EdgetlError(f"unknown target '{name_or_path}' (known: {known}); run `edgetl targets` or pass a .toml path")


def _take(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    value = table.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise EdgetlError(f"{where}: '{key}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def load_profile(path: Path) -> Profile:
    """Parse and validate one profile; every mistake is a one-line error naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgetlError(f"{path}: not valid TOML ({exc}); fix the file") from None
    where = str(path)
    known = {"name", "description", "accelerator", "connection", "runtime", "budgets"}
    if unknown := set(data) - known:
        raise EdgetlError(f"{where}: unknown section or key {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    conn_t = _take(data, "connection", dict, where, {})
    kind = _take(conn_t, "kind", str, where, "local")
    if kind not in ("local", "ssh"):
        raise EdgetlError(f"{where}: connection.kind must be 'local' or 'ssh', not '{kind}'")
    conn = Connection(
        kind=kind,
        host=_take(conn_t, "host", str, where),
        user=_take(conn_t, "user", str, where),
        port=_take(conn_t, "port", int, where, 22),
        key=_take(conn_t, "key", str, where),
        known_hosts=_take(conn_t, "known_hosts", str, where),
        python=_take(conn_t, "python", str, where, "python3"),
        workdir=_take(conn_t, "workdir", str, where, "/tmp/edgetl-bench"),
    )
    if kind == "ssh" and not conn.host:
        raise EdgetlError(f"{where}: an ssh target needs connection.host")
    rt = _take(data, "runtime", dict, where, {})
    runtimes = _take(rt, "runtimes", list, where, list(RUNTIMES))
    if bad := [r for r in runtimes if r not in PROFILE_RUNTIMES]:
        raise EdgetlError(f"{where}: unknown runtime {', '.join(bad)} (known: {', '.join(PROFILE_RUNTIMES)})")
    precisions = _take(rt, "precisions", list, where, list(PRECISIONS))
    if bad := [p for p in precisions if p not in PRECISIONS]:
        raise EdgetlError(f"{where}: unknown precision {', '.join(bad)} (known: {', '.join(PRECISIONS)})")
    device = DeviceOptions(
        onnxruntime_providers=_take(rt, "onnxruntime_providers", list, where, ["CPUExecutionProvider"]),
        openvino_device=_take(rt, "openvino_device", str, where, "CPU"),
        torch_device=_take(rt, "torch_device", str, where, "cpu"),
    )
    budgets = _take(data, "budgets", dict, where, {})
    per_modality = {m: budgets.pop(m) for m in BUDGET_SECTIONS if isinstance(budgets.get(m), dict)}
    for section, values in [("budgets", budgets)] + [(f"budgets.{m}", v) for m, v in per_modality.items()]:
        if bad := set(values) - set(BUDGET_KEYS):
            raise EdgetlError(
                f"{where}: unknown budget {', '.join(sorted(bad))} in [{section}] (known: {', '.join(BUDGET_KEYS)}; "
                f"per modality or task: [budgets.{'] / [budgets.'.join(BUDGET_SECTIONS)}])"
            )
        if bad := [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0]:
            raise EdgetlError(f"{where}: budget {', '.join(bad)} in [{section}] must be a positive number")
    threads = _take(rt, "threads", int, where, 0)
    if threads < 0:
        raise EdgetlError(f"{where}: runtime.threads must be 0 (all cores) or more")
    return Profile(
        name=_take(data, "name", str, where, path.stem),
        path=path,
        description=_take(data, "description", str, where, ""),
        accelerator=bool(_take(data, "accelerator", bool, where, False)),
        connection=conn,
        threads=threads,
        runtimes=runtimes,
        precisions=precisions,
        device=device,
        budgets={k: float(v) for k, v in budgets.items()},
        modality_budgets={m: {k: float(v) for k, v in b.items()} for m, b in per_modality.items()},
    )
