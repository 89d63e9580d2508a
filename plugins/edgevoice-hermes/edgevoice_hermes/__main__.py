"""`python -m edgevoice_hermes`: the same as `edgevoice-hermes`."""

import sys

from edgevoice_hermes.cli import main

sys.exit(main())
