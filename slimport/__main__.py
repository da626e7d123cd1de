"""``python -m slimport``."""

import sys

from slimport.cli import main

sys.exit(main())
