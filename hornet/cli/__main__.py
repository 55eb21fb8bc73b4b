"""``python -m hornet.cli``: the same as the ``hornet`` command."""

from hornet.cli.app import main

raise SystemExit(main())
