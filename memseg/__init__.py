"""MemSeg (arXiv 2205.00908) in plain PyTorch: model, anomaly simulation, training and evaluation.

This package knows nothing of Ray or of the harness; one job runs with `memseg.job.run(config)`.
"""

from memseg.revision import REVISION

__version__ = "0.1.0"
__all__ = ["REVISION", "__version__"]
