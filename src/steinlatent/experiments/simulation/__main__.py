"""``python -m steinlatent.experiments.simulation``: the study's command line."""

from ._cli import main

raise SystemExit(main())
