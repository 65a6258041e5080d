"""`python -m streaming` runs the obrady command."""

import sys

from streaming.cli import main

sys.exit(main())
