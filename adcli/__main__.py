"""``python -m adcli``: the same as the ``adcli`` command."""

from adcli.cli.app import main

if __name__ == "__main__":
    main()
