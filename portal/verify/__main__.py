"""``python -m portal.verify``: the same as the ``portal-verify`` command."""

from portal.verify.cli import main

raise SystemExit(main())
