from __future__ import annotations

import sys

from edgevoice.cli import main

sys.exit(main())
