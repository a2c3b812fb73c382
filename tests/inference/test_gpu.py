"""GPU-only checks (skipped without CUDA): device choice, autocast results, out-of-memory fallbacks.

The out-of-memory cases are real: the CUDA caching allocator is capped with
``torch.cuda.set_per_process_memory_fraction`` so that a 16-slice batch cannot fit.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from medview.inference import networks, package, pipeline  # noqa: E402
from medview.io.volume import Volume  # noqa: E402

ARGS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [16, 32, 64, 128, 256],
        "strides": [2, 2, 2, 2], "num_res_units": 2}


@pytest.fixture
def unet_package(tmp_path):
    torch.manual_seed(0)
    net = networks.build_network("UNet", ARGS)
    m = {"schema_version": 1, "id": "gpu-unet", "name": "gpu unet", "version": "1", "task": "segmentation",
         "modality": ["*"], "network": {"architecture": "UNet", "args": ARGS},
         "input": {"dims": 2, "channels": "grey", "normalization": {"kind": "zscore"}},
         "output": {"labels": [{"value": 1, "name": "x"}]}}
    return package.write_package(tmp_path / "p", m, net.state_dict(), "# gpu test\n")


@pytest.fixture
def capped_memory():
    total = torch.cuda.get_device_properties(0).total_memory

    def cap(nbytes: float) -> None:
        pipeline.clear_network_cache()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, nbytes / total), 0)

    yield cap
    torch.cuda.set_per_process_memory_fraction(1.0, 0)
    pipeline.clear_network_cache()
    torch.cuda.empty_cache()


def _stack(n=16):
    rng = np.random.default_rng(0)
    return Volume(rng.normal(0, 1, (n, 512, 512)).astype(np.float32), meta={"Modality": "MR"})


def test_auto_device_is_cuda_and_matches_cpu(unet_package):
    vol = _stack(4)
    gpu = pipeline.run_model(unet_package, vol)
    cpu = pipeline.run_model(unet_package, vol, device="cpu")
    assert gpu.device.startswith("cuda") and cpu.device.startswith("cpu")
    agree = (gpu.labels.array == cpu.labels.array).mean()
    assert agree > 0.99  # float16 autocast may flip a few borderline voxels


def test_oom_halves_the_batch_then_succeeds(unet_package, capped_memory):
    vol = _stack(16)
    capped_memory(600e6)
    pred = pipeline.run_model(unet_package, vol, batch_size=16)
    assert pred.device.startswith("cuda")
    assert any("batch size reduced" in m for m in pred.messages), pred.messages
    capped_memory(1e12)
    ref = pipeline.run_model(unet_package, vol, batch_size=1)
    assert (pred.labels.array == ref.labels.array).mean() > 0.999


def test_oom_everywhere_falls_back_to_cpu_and_says_so(unet_package, capped_memory):
    vol = _stack(2)
    capped_memory(2e6)  # not even the weights fit
    pred = pipeline.run_model(unet_package, vol, batch_size=2)
    assert pred.device.startswith("cpu")
    assert any("CPU instead" in m for m in pred.messages), pred.messages
