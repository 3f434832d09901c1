"""``python -m dip``: the ``dip`` command (:mod:`dip.cli.main`)."""

from dip.cli.main import main

if __name__ == "__main__":
    main()
