"""``python -m steinlatent.experiments.mnist``: the study's command line."""

from ._cli import main

raise SystemExit(main())
