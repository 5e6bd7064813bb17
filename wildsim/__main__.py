"""`python -m wildsim` is the `wildsim` command."""

from wildsim.cli import main

raise SystemExit(main())
