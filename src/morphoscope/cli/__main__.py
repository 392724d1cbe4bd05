"""``python -m morphoscope.cli``."""

import sys

from . import main

sys.exit(main())
