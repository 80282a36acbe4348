"""The fast tier: the engine, ordering, lifecycle, estimates and delivery rules run
in-process on a temporary SQLite file; no server process, no sockets."""

from __future__ import annotations

import pytest

from harness.local import LocalCentre, provisioned_store


@pytest.fixture(scope="session")
def centre_file(tmp_path_factory):
    return provisioned_store(tmp_path_factory.mktemp("template") / "centre.sqlite3")


@pytest.fixture
def local(centre_file, tmp_path):
    centre = LocalCentre(centre_file, tmp_path / "motcua.sqlite3")
    yield centre
    centre.close()
