"""``python -m synthscope.cli``: what the ``synthscope`` command runs."""

import sys

from synthscope.cli import main

sys.exit(main())
