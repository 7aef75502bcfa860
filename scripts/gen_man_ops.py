"""Regenerate the list of public ops in man/adcli-lang.7 from the op table's declarations.

python scripts/gen_man_ops.py          # rewrite the page
python scripts/gen_man_ops.py --check  # exit 1 if the page is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adcli.lang import manual

PAGE = ROOT / "man" / "adcli-lang.7"


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    new = manual.rewrite(text)
    if "--check" in argv:
        if new != text:
            print(f"{PAGE} is out of date: run python scripts/gen_man_ops.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
