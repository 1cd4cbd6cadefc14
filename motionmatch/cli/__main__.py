"""``python -m motionmatch.cli``."""
import sys

from . import main

sys.exit(main())
