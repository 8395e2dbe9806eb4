"""``python -m hwnas.controller.cli``: the same entry point as the ``hwnas`` script."""

import sys

from hwnas.controller.cli.main import main

sys.exit(main())
