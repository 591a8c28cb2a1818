"""`python -m qaemb_cli ...` is `qaemb-fast ...`."""

import sys

from qaemb_cli.main import main

sys.exit(main())
