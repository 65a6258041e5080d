"""`python -m streaming` runs the obrady command."""

import sys

from streaming.app.cli import main

sys.exit(main())
