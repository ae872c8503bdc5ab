from hpc_botan.cli import main

raise SystemExit(main())
