"""``python -m dip.bench [--quick]``: the benchmark's command line (:mod:`dip.bench.cli`)."""

from dip.bench.cli import main

if __name__ == "__main__":
    main()
