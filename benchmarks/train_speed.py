"""Training steps/s, simulation images/s and inference images/s at 64, 128 and 256 px, batch 8.

    python benchmarks/train_speed.py [--device auto]

The same measurement as `benchmarks/speed.py` (which also varies the batch size and compares
each speed measure with its straightforward version), restricted to the paper's batch size.
"""

import sys

from speed import main

if __name__ == "__main__":
    sys.argv[1:1] = [
        "--sizes",
        "64,128,256",
        "--batch-sizes",
        "8",
        "--skip-before-after",
        "--out",
        "results/benchmarks/train_speed.json",
    ]
    main()
