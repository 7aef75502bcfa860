"""``python -m adcli``: the same as the ``adcli`` command.

Ctrl-C while the modules are still being imported (the first tenth of a second)
ends adcli quietly with status 130, like Ctrl-C at any later moment.
"""

import gc
import sys


def main() -> None:
    """The ``adcli`` console script (see :func:`adcli.cli.app.main`)."""
    # Importing makes many long-lived objects and no garbage: the collector's
    # passes meanwhile would only scan them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        from adcli.cli.app import main as app_main
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if collecting:
            gc.enable()
    app_main()


if __name__ == "__main__":
    main()
