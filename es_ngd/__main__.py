"""``python -m es_ngd …`` is the ``es-ngd`` command."""

from es_ngd.cli import main

raise SystemExit(main())
