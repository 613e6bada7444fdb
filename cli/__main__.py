"""`python -m cli ...` runs the `beacon` command."""

import sys

from cli.main import main

sys.exit(main())
