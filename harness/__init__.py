"""The Ray benchmarking harness: sweeps of MemSeg jobs, Parquet results, resume and reports."""
