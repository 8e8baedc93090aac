"""`python -m gptoss_operator` runs the CLI."""

import sys

from gptoss_operator.cli import main

sys.exit(main())
