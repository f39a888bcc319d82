"""``python -m btob`` runs the command line."""

from btob.cli.main import main

raise SystemExit(main())
