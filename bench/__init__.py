"""MotionMatch benchmarks (`make bench`): decoding, embedding and search; see bench/__main__.py."""
