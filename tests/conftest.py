import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from medview.config import data_dir  # noqa: E402


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (or $MEDVIEW_DATA); tests that need it skip with the reason when absent."""
    d = data_dir()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d} (set MEDVIEW_DATA)")
    return d


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Never touch the real user's settings, models or autosave folders from a test."""
    monkeypatch.setenv("MEDVIEW_HOME", str(tmp_path / "medview-home"))
