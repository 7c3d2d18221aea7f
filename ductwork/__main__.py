"""``python -m ductwork`` is the ``ductwork`` command."""

import sys

from ductwork.cli import main

sys.exit(main())
