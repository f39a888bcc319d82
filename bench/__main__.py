"""``python -m btob.bench``: the benchmark harness, exactly as ``btob bench``."""

from btob.bench.harness import main

raise SystemExit(main())
