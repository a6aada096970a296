"""``python -m comparisons.scaling``: see :mod:`comparisons.scaling.cli`."""
from .cli import main

if __name__ == "__main__":
    main()
