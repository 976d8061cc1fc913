"""``python -m steinlatent.experiments.m1``: the study's command line."""

from ._cli import main

raise SystemExit(main())
