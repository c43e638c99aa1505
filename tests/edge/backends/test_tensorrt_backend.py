"""The TensorRT backend: which engine it picks and every refusal, on any machine; running an
engine only where TensorRT and a CUDA GPU are (marker ``tensorrt``).

Without TensorRT the plans are files of known bytes: selection and its checks read manifests
and hash plans, and never deserialise anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gpu_hosts import A100 as A100_TRT_10_3
from gpu_hosts import H200
from project_paths import PACKAGES

from orstream.edge.backends import create_backend
from orstream.edge.backends.reference_check import check_reference
from orstream.edge.backends.tensorrt_backend import TENSORRT_NOT_INSTALLED, TensorRTBackend
from orstream.edge.backends.tensorrt_engines import (
    EngineFile,
    engine_max_batch,
    list_engines,
    load_engine,
    select_engine,
)
from orstream.errors import OrstreamError
from orstream.export.tensorrt.profiles import batch_profiles
from orstream.package.engine_manifest import (
    ENGINES_DIR,
    TENSORRT_MISSING,
    EngineManifest,
    HostInfo,
    Precision,
    Profile,
    engine_key,
    engine_paths,
    write_manifest,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
WORKFLOW = PACKAGES / "pitvis_workflow"
A100 = replace(A100_TRT_10_3, tensorrt_version=H200.tensorrt_version)
H200_OLD_TRT = replace(H200, tensorrt_version="10.3.0")
IMAGE = (1, 3, 112, 192)


@pytest.fixture
def package(tmp_path: Path) -> ModelPackage:
    return load_package(Path(shutil.copytree(WORKFLOW, tmp_path / "pitvis_workflow")))


def write_engine(
    package: ModelPackage,
    host: HostInfo,
    precision: Precision,
    profiles: tuple[Profile, ...] | None = None,
    onnx_sha256: str | None = None,
) -> EngineFile:
    """A plan of stand-in bytes and its manifest, as ``orstream export trt`` writes them (by
    default with its profiles: none at batch 1, else 1 to max_batch rows of every input)."""
    if profiles is None:
        card = package.card
        profiles = batch_profiles(card, card.max_batch) if card.dynamic_batch else ()
    key = engine_key(onnx_sha256 or sha256_file(package.model_path), precision, profiles, host)
    plan, _ = engine_paths(package.root, key)
    plan.parent.mkdir(exist_ok=True)
    data = f"stand-in {precision} plan for {host.gpu_name}".encode()
    plan.write_bytes(data)
    manifest = EngineManifest.for_engine(
        key, host, hashlib.sha256(data).hexdigest(), datetime(2025, 1, 1, tzinfo=UTC)
    )
    write_manifest(plan.parent, manifest)
    return EngineFile(plan, manifest)


def refusal(package: ModelPackage, host: HostInfo, precision: Precision | None = None) -> str:
    with pytest.raises(OrstreamError) as info:
        select_engine(package, host, precision)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_without_engines_the_refusal_says_how_to_build_one(package: ModelPackage) -> None:
    assert refusal(package, H200) == (
        f"no TensorRT engine in {package.root / ENGINES_DIR}: build one with "
        f"orstream export trt --package {package.root}"
    )
    assert refusal(package, H200, "fp16").endswith(f"--package {package.root} --fp16")


def test_the_engine_for_this_host_is_chosen(package: ModelPackage) -> None:
    write_engine(package, A100, "int8")
    mine = write_engine(package, H200, "fp16")
    assert select_engine(package, H200) == mine


def test_int8_then_fp16_then_fp32_unless_a_precision_is_asked(package: ModelPackage) -> None:
    engines = {p: write_engine(package, H200, p) for p in ("fp32", "fp16", "int8")}
    assert select_engine(package, H200) == engines["int8"]
    assert select_engine(package, H200, "fp16") == engines["fp16"]
    assert select_engine(package, H200, "fp32") == engines["fp32"]
    engines["int8"].plan.unlink()
    engines["int8"].plan.with_suffix(".json").unlink()
    assert select_engine(package, H200) == engines["fp16"]
    assert len(list_engines(package)[0]) == 2


def test_a_precision_not_built_is_refused_naming_what_there_is(package: ModelPackage) -> None:
    built = write_engine(package, H200, "fp32")
    message = refusal(package, H200, "fp16")
    assert message.startswith(f"{package.root / ENGINES_DIR} holds no fp16 engine (it holds ")
    assert f"{built.plan.name} (fp32 for NVIDIA H200 (sm_90, 132 SMs, TensorRT 10.5.0))" in message
    assert message.endswith(f"build one with orstream export trt --package {package.root} --fp16")


def test_an_engine_for_another_gpu_is_refused(package: ModelPackage) -> None:
    built = write_engine(package, A100, "fp16")
    message = refusal(package, H200)
    assert message.startswith(f"refusing engine {built.plan}: engine built for NVIDIA A100")
    assert "but this host has NVIDIA H200 (sm_90, 132 SMs, TensorRT 10.5.0)" in message
    assert "(GPU, compute capability, SM count differ)" in message
    assert message.endswith(f"rebuild with orstream export trt --package {package.root} --rebuild")


def test_an_engine_for_another_tensorrt_release_is_refused(package: ModelPackage) -> None:
    write_engine(package, H200_OLD_TRT, "fp16")
    assert "(TensorRT version differs)" in refusal(package, H200)


def test_several_engines_none_for_this_host(package: ModelPackage) -> None:
    write_engine(package, A100, "fp16")
    write_engine(package, H200_OLD_TRT, "fp32")
    message = refusal(package, H200)
    assert message.startswith(f"none of the 2 engines in {package.root / ENGINES_DIR} is for ")
    assert "--rebuild" in message


def test_tampered_plan_bytes_are_refused_not_passed_over(package: ModelPackage) -> None:
    int8 = write_engine(package, H200, "int8")
    write_engine(package, H200, "fp16")  # valid, but a tampered engine must not go unnoticed
    data = bytearray(int8.plan.read_bytes())
    data[3] ^= 0xFF
    int8.plan.write_bytes(bytes(data))
    message = refusal(package, H200)
    assert f"refusing engine {int8.plan}: plan sha256" in message
    assert "(tampered, truncated or replaced)" in message
    assert message.endswith("--rebuild")


def test_a_manifest_recording_other_engine_bytes_is_refused(package: ModelPackage) -> None:
    built = write_engine(package, H200, "fp16")
    manifest_path = built.plan.with_suffix(".json")
    data = json.loads(manifest_path.read_text())
    data["engine_sha256"] = hashlib.sha256(b"another engine").hexdigest()
    manifest_path.write_text(json.dumps(data))
    message = refusal(package, H200)
    assert f"is not the manifest's {data['engine_sha256'][:12]}..." in message


def test_an_engine_of_an_older_model_onnx_is_refused(package: ModelPackage) -> None:
    write_engine(package, H200, "fp16", onnx_sha256=hashlib.sha256(b"older").hexdigest())
    message = refusal(package, H200)
    assert "engine built from ONNX sha256" in message
    assert f"model.onnx is now {sha256_file(package.model_path)[:12]}..." in message


def test_profiles_must_cover_the_cards_shapes_and_the_rows_asked(
    package: ModelPackage,
) -> None:
    assert package.card.dynamic_batch
    from_four = tuple(
        p.model_copy(update={"min": (4, *p.min[1:])}) for p in batch_profiles(package.card, 8)
    )
    write_engine(package, H200, "int8", from_four)  # no profile holds one row
    image_only = Profile(name="image", min=IMAGE, opt=IMAGE, max=(4, 3, 112, 192))
    write_engine(package, H200, "int8", (image_only,))  # the state inputs have none
    usable = write_engine(package, H200, "fp16", batch_profiles(package.card, 4))
    assert select_engine(package, H200) == usable
    assert engine_max_batch(usable, package) == 4
    assert select_engine(package, H200, profiles=from_four).manifest.key.precision == "int8"
    assert select_engine(package, H200, max_batch=4) == usable
    message = refusal_for_rows(package, 6)
    assert message.startswith(f"{package.root / ENGINES_DIR} holds no usable engine for 6 rows")
    assert message.endswith(f"orstream export trt --package {package.root}")
    assert refusal_for_rows(package, 12).endswith(f"--package {package.root} --max-batch 12")
    wide = write_engine(package, H200, "fp32", batch_profiles(package.card, 16))
    assert select_engine(package, H200, max_batch=12) == wide
    assert engine_max_batch(wide, package) == 16


def refusal_for_rows(package: ModelPackage, rows: int) -> str:
    with pytest.raises(OrstreamError) as info:
        select_engine(package, H200, max_batch=rows)
    return str(info.value)


def test_a_package_that_runs_batch_1_takes_engines_without_profiles(
    package: ModelPackage,
) -> None:
    card = package.card
    export = card.export.model_copy(update={"batch": 1, "max_batch": 1})
    batch_1 = ModelPackage(root=package.root, card=card.model_copy(update={"export": export}))
    static = write_engine(batch_1, H200, "fp16")
    assert static.manifest.key.profiles == ()
    assert select_engine(batch_1, H200) == static
    assert engine_max_batch(static, batch_1) == 1
    # the dynamic graph has no engine without profiles
    assert "holds no usable engine" in refusal(package, H200)
    with pytest.raises(OrstreamError, match="tensorrt backend: package 'pitvis_workflow' runs"):
        TensorRTBackend(max_batch=4).load(batch_1, "cuda")


def test_an_unreadable_manifest_is_skipped_and_named(package: ModelPackage) -> None:
    folder = package.root / ENGINES_DIR
    folder.mkdir()
    (folder / "0123456789abcdef.json").write_text("{not json")
    assert "not valid JSON" in refusal(package, H200)
    good = write_engine(package, H200, "fp16")
    assert select_engine(package, H200) == good
    engines, unreadable = list_engines(package)
    assert engines == [good] and len(unreadable) == 1


def test_availability_without_a_gpu_or_tensorrt() -> None:
    assert TensorRTBackend.unavailable_reason("cpu") == "TensorRT runs on CUDA devices only"
    if not HAS_TENSORRT:
        assert TensorRTBackend.unavailable_reason("cuda") == TENSORRT_NOT_INSTALLED
    with pytest.raises(OrstreamError, match="unknown device 'tpu'"):
        TensorRTBackend.unavailable_reason("tpu")


def test_the_decoder_graph_is_refused_in_one_line(package: ModelPackage) -> None:
    with pytest.raises(OrstreamError, match=r"built from model\.onnx only; the decoder graph"):
        TensorRTBackend(graph="decoder").load(package, "cuda")


def test_selection_passes_over_tensorrt_with_its_reason(package: ModelPackage) -> None:
    backend = create_backend(["tensorrt:cuda", "onnxruntime"], package)
    selection: str = backend.selection
    if not HAS_TENSORRT:
        assert selection == f"onnxruntime-cpu (tensorrt:cuda: {TENSORRT_NOT_INSTALLED})"
    else:
        assert selection.startswith(backend.label + " (tensorrt:cuda: ")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_loading_without_tensorrt_is_one_line(package: ModelPackage) -> None:
    write_engine(package, H200, "fp16")
    with pytest.raises(OrstreamError) as info:
        load_engine(package)
    assert str(info.value) == TENSORRT_MISSING


# --- where TensorRT and a CUDA GPU exist -----------------------------------------------------


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TENSORRT, reason="needs TensorRT")
def test_an_engine_built_here_runs_and_passes_the_golden_check(package: ModelPackage) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from orstream.export.tensorrt.build import build_engine

    build_engine(package, "fp16", batch_profiles(package.card, 4))
    backend = create_backend(["tensorrt:cuda", "onnxruntime"], package)
    assert backend.label == "tensorrt-cuda:0-fp16"
    assert backend.max_batch == 4  # the golden check ran a call of 4 rows too
    check = check_reference(backend, package)
    print(f"\ntensorrt fp16 golden check: {check}")
    assert check.max_abs_diff <= check.allowed
