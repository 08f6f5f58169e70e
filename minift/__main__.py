"""``python -m minift`` is the same as the ``minift`` console script."""

from minift.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
