"""MotionMatch benchmarks (`make bench`): one module ``bench_<name>`` per benchmark, run and tabled by
bench/__main__.py; what they share (records, machine, memory, timing, children, vectors, Milvus, videos, the
long-video gallery) is in :mod:`bench.harness`."""
