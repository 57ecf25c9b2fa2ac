from recengine.cli import main

raise SystemExit(main())
