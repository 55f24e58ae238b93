"""The ``rlhf-audit`` console script: the ledger's commands plus the server's and workers'."""

from __future__ import annotations

from ledger.cli import cli, run


def main() -> None:
    run(cli)


if __name__ == "__main__":
    main()
