"""``python -m budai_gateway``: the same command line as ``budai-gateway``."""

from budai_gateway.cli import main

if __name__ == "__main__":
    main()
