"""``python -m comparisons``: Table 1, then the extras (flags go to both)."""
import sys

from . import extras, table1


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    table1.main(argv)
    keep = [a for a in argv if a.split("=")[0] in ("--threads", "--rounds", "--out", "--quick")]
    for flag in ("--threads", "--rounds", "--out"):  # flags with a value
        if flag in argv and flag in keep:
            keep.insert(keep.index(flag) + 1, argv[argv.index(flag) + 1])
    extras.main(keep)


if __name__ == "__main__":
    main()
