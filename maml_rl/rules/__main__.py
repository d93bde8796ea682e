"""``python -m maml_rl.rules``: see :mod:`maml_rl.rules.cli`."""

import sys

from .cli import main

sys.exit(main())
