"""``python -m btob`` runs the command line."""

from btob._cli import main

raise SystemExit(main())
