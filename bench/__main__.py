"""``python -m bench``: the benchmark harness, exactly as ``btob bench``."""

from bench.harness import main

raise SystemExit(main())
