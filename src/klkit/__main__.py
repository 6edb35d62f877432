"""``python -m klkit``: the ``klkit`` command line (same as the ``klkit`` console script)."""

from klkit.cli.app import main

if __name__ == "__main__":
    main()
