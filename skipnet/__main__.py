"""``python -m skipnet`` runs the skipnet command line."""

from .cli import main

raise SystemExit(main())
