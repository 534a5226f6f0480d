"""Exporters: one module per target, a table of what each supports, and one entry point.

``export(bundle_dir, target, precision, ...)`` checks the request against
``TARGETS`` before any work (images and text alike: the exporters read input
names and shapes from the bundle's input spec), lets the target's module write its files into a
temporary folder, proves the artifact against the PyTorch bundle (``parity``),
and only then renames the folder to ``BUNDLE/export/<target>-<precision>[...]``.
"""

from __future__ import annotations

from .api import Artifact, ExportOptions, export, export_all
from .targets import PRECISIONS, TARGETS, Target

__all__ = ["TARGETS", "PRECISIONS", "Target", "Artifact", "ExportOptions", "export", "export_all"]
