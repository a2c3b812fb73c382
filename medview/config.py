"""Where MedView finds things: shared data, user folders. One place, no Qt."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Real test/training data: $MEDVIEW_DATA, default ../shared/data beside the project."""
    env = os.environ.get("MEDVIEW_DATA")
    if env:
        return Path(env)
    return PROJECT_ROOT.parent / "shared" / "data"


def resources_dir() -> Path:
    """Bundled resources (sample study, presets, icons); works frozen too."""
    import sys

    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return PROJECT_ROOT / "resources"


def bundled_models_dir() -> Path:
    import sys

    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "models"
    return PROJECT_ROOT / "models"


def sample_study_dir() -> Path:
    return resources_dir() / "sample"


def user_data_dir() -> Path:
    """Per-user writable folder (models, workspaces, autosave)."""
    env = os.environ.get("MEDVIEW_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("MedView", "MedView"))


def user_config_dir() -> Path:
    env = os.environ.get("MEDVIEW_HOME")
    if env:
        return Path(env) / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir("MedView", "MedView"))


def user_log_dir() -> Path:
    env = os.environ.get("MEDVIEW_HOME")
    if env:
        return Path(env) / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir("MedView", "MedView"))
