"""``python -m processor`` is the ``cxone-processor`` command."""

import sys

from processor.cli import main

sys.exit(main())
