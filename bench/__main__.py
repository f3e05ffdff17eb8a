"""``python -m bench [--quick]``: the whole table (bench/orchestrate.py runs it)."""

from bench.orchestrate import main

if __name__ == "__main__":
    main()
