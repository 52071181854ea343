from __future__ import annotations

import pytest

from tests.reliability.cli_forkserver import CliForkServer


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """`vitgallery` CLI runs in forked children of one warm process (see cli_forkserver)."""
    base = tmp_path_factory.mktemp("cli-user-dirs")
    server = CliForkServer({var: str(base / var.lower()) for var in
                            ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")})
    yield server
    server.close()
