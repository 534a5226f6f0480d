"""``python -m edgetl_runtime`` is ``edgetl-run``."""

import sys

from .cli import main

sys.exit(main())
