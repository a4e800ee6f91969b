import sys

try:
    from mattestudio.cli.main import main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read
    print("mattestudio: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
