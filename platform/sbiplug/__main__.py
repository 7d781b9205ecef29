"""``python -m sbiplug``: the same as the ``sbiplug`` command."""

from sbiplug.cli import main

raise SystemExit(main())
