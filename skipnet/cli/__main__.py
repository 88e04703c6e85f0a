"""``python -m skipnet.cli`` is ``python -m skipnet``."""

from . import main

raise SystemExit(main())
