"""CNN builders from the five CIFAR-10 reports, registered by name.

Importing this package registers every builder (one module per report); it does not import
Keras. ``architectures.build(name)`` returns a fresh ``keras.Model``.
"""

from architectures import report_000, report_001, report_002, report_003, report_004, transfer  # noqa: F401  (registers their builders)
from architectures.registry import Architecture, build, get, names, register

__all__ = ["Architecture", "build", "get", "names", "register"]
