"""Logging, settings and the GPU status line (real files in the per-test MEDVIEW_HOME)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from medview import app_logging, config


def test_log_file_lives_in_the_user_log_folder_and_rotates(tmp_path):
    path = app_logging.setup_logging()
    assert path == config.user_log_dir() / "medview.log"
    assert Path(os.environ["MEDVIEW_HOME"]) in path.parents
    log = logging.getLogger("medview.test")
    log.info("hello from the test")
    assert "hello from the test" in path.read_text(encoding="utf-8")
    chunk = "x" * 1000
    for _ in range(app_logging.MAX_BYTES // 1000 + 50):
        log.info(chunk)
    assert (path.parent / "medview.log.1").is_file()
    assert path.stat().st_size < app_logging.MAX_BYTES


def test_setup_logging_twice_keeps_one_file_handler():
    app_logging.setup_logging()
    app_logging.setup_logging()
    files = [h for h in logging.getLogger("medview").handlers if isinstance(h, logging.FileHandler)]
    assert len(files) == 1


def test_log_follows_a_new_home(tmp_path, monkeypatch):
    first = app_logging.setup_logging()
    monkeypatch.setenv("MEDVIEW_HOME", str(tmp_path / "other"))
    second = app_logging.setup_logging()
    assert second != first and second.parent == tmp_path / "other" / "logs"
    logging.getLogger("medview").warning("goes to the new file")
    assert "goes to the new file" in second.read_text(encoding="utf-8")


def test_settings_round_trip_and_inference_device_reads_them():
    from medview.inference.device import configured_device

    assert app_logging.load_settings() == {}
    p = app_logging.save_settings({"inference_device": "cpu", "recent": ["a"]})
    assert p == config.user_config_dir() / "settings.json"
    assert app_logging.load_settings() == {"inference_device": "cpu", "recent": ["a"]}
    assert configured_device() == "cpu"
    app_logging.save_settings({"inference_device": None})
    assert "inference_device" not in app_logging.load_settings()


def test_unreadable_settings_are_ignored():
    p = app_logging.settings_file()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("{not json", encoding="utf-8")
    assert app_logging.load_settings() == {}


def test_gpu_status_says_running_on_cpu_when_cuda_is_not_usable():
    import torch

    st = app_logging.gpu_status()
    assert st.cuda == torch.cuda.is_available()
    assert st.torch_cuda == torch.version.cuda
    if not st.cuda:
        assert st.message.startswith("running on CPU: ")
        if torch.version.cuda is None:
            assert "CPU-only PyTorch" in st.message
        elif st.driver is None:
            assert "NVIDIA GPU driver not found" in st.message
    else:
        assert st.message.startswith("GPU: ")


def test_gpu_status_goes_to_the_log():
    path = app_logging.setup_logging()
    st = app_logging.log_gpu_status()
    assert st.message in path.read_text(encoding="utf-8")


def test_every_cpu_fallback_has_its_own_plain_message():
    cpu_build = app_logging.describe_gpu(False, None, None)
    no_driver = app_logging.describe_gpu(False, "12.4", None)
    old_driver = app_logging.describe_gpu(False, "12.4", "470.57.02")
    gpu = app_logging.describe_gpu(True, "12.4", "550.54", ["NVIDIA H100 80GB HBM3"])
    assert cpu_build.message == "running on CPU: this MedView build has a CPU-only PyTorch (no CUDA support)"
    assert no_driver.message.startswith("running on CPU: NVIDIA GPU driver not found")
    assert "470.57.02" in old_driver.message and old_driver.message.startswith("running on CPU")
    assert not (cpu_build.cuda or no_driver.cuda or old_driver.cuda)
    assert gpu.cuda and gpu.message == "GPU: NVIDIA H100 80GB HBM3 (CUDA 12.4)"


def test_driver_probe_agrees_with_the_machine():
    from pathlib import Path

    v = app_logging.nvidia_driver_version()
    if Path("/proc/driver/nvidia/version").is_file():
        assert v is not None
    elif v is None:
        import torch

        assert not torch.cuda.is_available()
