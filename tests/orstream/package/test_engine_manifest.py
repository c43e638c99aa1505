"""Engine manifests: cache keys, round trips and every refusal before a plan is deserialised.

No TensorRT here: the plans are files of known bytes, which is all the checks read (nothing is
deserialised). The ONNX hash and input names are the shipped workflow package's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gpu_hosts import A100, H200

from orstream.errors import OrstreamError
from orstream.export.tensorrt.profiles import batch_profiles, parse_profile, parse_profiles
from orstream.package.engine_manifest import (
    ENGINES_DIR,
    EngineKey,
    EngineManifest,
    HostInfo,
    Precision,
    Profile,
    check_engine,
    engine_key,
    engine_paths,
    read_manifest,
    write_manifest,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file

PLAN_BYTES = b"stand-in for serialised engine bytes: hashed by the checks, never deserialised"
IMAGE = Profile(name="image", min=(1, 3, 112, 192), opt=(1, 3, 112, 192), max=(4, 3, 112, 192))
STATE = Profile(name="state_in.stage1_layer1", min=(1, 64, 2), opt=(1, 64, 2), max=(4, 64, 2))
NAMES = (IMAGE.name, STATE.name)
PRECISION: Precision = "fp16"


@pytest.fixture(scope="module")
def workflow(project_root: Path) -> ModelPackage:
    return load_package(project_root / "edge" / "packages" / "pitvis_workflow")


@pytest.fixture(scope="module")
def onnx_sha256(workflow: ModelPackage) -> str:
    return sha256_file(workflow.model_path)


@pytest.fixture()
def built(tmp_path: Path, onnx_sha256: str) -> tuple[EngineManifest, Path]:
    """A package folder with one plan and its manifest, as a build on the A100 leaves them."""
    key = engine_key(onnx_sha256, PRECISION, (IMAGE,), A100)
    plan, manifest_path = engine_paths(tmp_path / "package", key)
    plan.parent.mkdir(parents=True)
    plan.write_bytes(PLAN_BYTES)
    manifest = EngineManifest.for_engine(
        key, A100, sha256_file(plan), datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    )
    assert write_manifest(plan.parent, manifest) == manifest_path
    return manifest, plan


def refusal(
    manifest: EngineManifest,
    host: HostInfo,
    plan: Path,
    onnx_sha256: str,
    precision: Precision = PRECISION,
    profiles: tuple[Profile, ...] = (IMAGE,),
) -> str:
    with pytest.raises(OrstreamError) as error:
        check_engine(manifest, host, plan, onnx_sha256, precision, profiles)
    message = str(error.value)
    assert "\n" not in message
    assert message.endswith(f"orstream export trt --package {plan.parent.parent} --rebuild")
    return message


def key_fields(onnx_sha256: str) -> dict[str, Any]:
    return {
        "onnx_sha256": onnx_sha256,
        "precision": PRECISION,
        "profiles": (IMAGE, STATE),
        "gpu_name": A100.gpu_name,
        "compute_capability": A100.compute_capability,
        "sm_count": A100.sm_count,
        "tensorrt_version": A100.tensorrt_version,
    }


# --- the cache key ---------------------------------------------------------------------------


def test_key_is_stable_and_ignores_profile_order(onnx_sha256: str) -> None:
    fields = key_fields(onnx_sha256)
    first = EngineKey(**fields)
    again = EngineKey.model_validate_json(first.model_dump_json())
    reordered = EngineKey(**{**fields, "profiles": (STATE, IMAGE)})
    assert first.digest() == again.digest() == reordered.digest()
    assert len(first.digest()) == 64
    assert first.short == first.digest()[:16]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onnx_sha256", "0" * 64),
        ("precision", "int8"),
        ("profiles", (IMAGE,)),
        ("profiles", (IMAGE.model_copy(update={"opt": (2, 3, 112, 192)}), STATE)),
        ("gpu_name", "NVIDIA A100-SXM4-40GB"),
        ("compute_capability", (8, 6)),
        ("sm_count", 84),
        ("tensorrt_version", "10.3.1"),
    ],
)
def test_each_field_changes_the_key(onnx_sha256: str, field: str, value: object) -> None:
    fields = key_fields(onnx_sha256)
    assert EngineKey(**fields).digest() != EngineKey(**{**fields, field: value}).digest()


def test_cuda_and_driver_versions_are_recorded_not_keyed(onnx_sha256: str) -> None:
    other = replace(A100, cuda_version="12.8", driver_version="13.0")
    key = engine_key(onnx_sha256, PRECISION, (IMAGE,), A100)
    assert engine_key(onnx_sha256, PRECISION, (IMAGE,), other) == key
    manifest = EngineManifest.for_engine(key, other, "a" * 64, datetime.now(UTC))
    assert (manifest.cuda_version, manifest.driver_version) == ("12.8", "13.0")


def test_key_refuses_an_input_profiled_twice(onnx_sha256: str) -> None:
    with pytest.raises(ValueError, match="more than one profile"):
        EngineKey(**{**key_fields(onnx_sha256), "profiles": (IMAGE, IMAGE)})


# --- manifest files --------------------------------------------------------------------------


def test_manifest_round_trip_beside_the_plan(built: tuple[EngineManifest, Path]) -> None:
    manifest, plan = built
    path = plan.with_suffix(".json")
    assert plan.parent.name == ENGINES_DIR
    assert plan.name == manifest.plan_name == manifest.cache_key[:16] + ".plan"
    assert read_manifest(path) == manifest
    assert manifest.cache_key == manifest.key.digest()
    assert not list(plan.parent.glob("*.partial"))


@pytest.mark.parametrize("where", ["top", "key", "profile"])
def test_manifest_refuses_unknown_keys(built: tuple[EngineManifest, Path], where: str) -> None:
    _, plan = built
    path = plan.with_suffix(".json")
    data = json.loads(path.read_text())
    target = {"top": data, "key": data["key"], "profile": data["key"]["profiles"][0]}[where]
    target["gpu_nmae"] = "typo"
    path.write_text(json.dumps(data))
    with pytest.raises(OrstreamError, match=r"invalid engine manifest.*gpu_nmae"):
        read_manifest(path)


def test_manifest_refuses_bad_json_and_missing_file(built: tuple[EngineManifest, Path]) -> None:
    _, plan = built
    path = plan.with_suffix(".json")
    path.write_text('{"format": 1,')
    with pytest.raises(OrstreamError, match="not valid JSON"):
        read_manifest(path)
    with pytest.raises(OrstreamError, match="engine manifest not found"):
        read_manifest(plan.with_name("missing.json"))


# --- check_engine ----------------------------------------------------------------------------


def test_matching_engine_is_accepted(built: tuple[EngineManifest, Path], onnx_sha256: str) -> None:
    manifest, plan = built
    check_engine(manifest, A100, plan, onnx_sha256, PRECISION, (IMAGE,))
    # The CUDA and driver versions are not part of the key.
    check_engine(
        manifest, replace(A100, driver_version="13.0"), plan, onnx_sha256, "fp16", (IMAGE,)
    )


def test_refuses_another_gpu(built: tuple[EngineManifest, Path], onnx_sha256: str) -> None:
    manifest, plan = built
    message = refusal(manifest, H200, plan, onnx_sha256)
    assert (
        "engine built for NVIDIA A100 (sm_80, 108 SMs, TensorRT 10.3.0) but this host has "
        "NVIDIA H200 (sm_90, 132 SMs, TensorRT 10.5.0) "
        "(GPU, compute capability, SM count, TensorRT version differ)"
    ) in message
    assert "; " not in message  # the host is the only difference


def test_refuses_another_gpu_name_alone(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    message = refusal(manifest, replace(A100, gpu_name="NVIDIA A800"), plan, onnx_sha256)
    assert "this host has NVIDIA A800 (sm_80, 108 SMs, TensorRT 10.3.0) (GPU differs)" in message


def test_refuses_another_compute_capability(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    message = refusal(manifest, replace(A100, compute_capability=(8, 6)), plan, onnx_sha256)
    assert "(sm_86, 108 SMs, TensorRT 10.3.0) (compute capability differs)" in message


def test_refuses_another_tensorrt_version(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    message = refusal(manifest, replace(A100, tensorrt_version="10.5.0"), plan, onnx_sha256)
    assert "TensorRT 10.3.0) but this host has" in message
    assert "TensorRT 10.5.0) (TensorRT version differs)" in message


def test_refuses_tampered_plan_bytes(built: tuple[EngineManifest, Path], onnx_sha256: str) -> None:
    manifest, plan = built
    tampered = bytearray(PLAN_BYTES)
    tampered[10] ^= 0x01
    plan.write_bytes(bytes(tampered))
    message = refusal(manifest, A100, plan, onnx_sha256)
    assert f"is not the manifest's {manifest.engine_sha256[:12]}..." in message
    assert "tampered, truncated or replaced" in message


def test_refuses_a_truncated_or_missing_plan(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    plan.write_bytes(PLAN_BYTES[:-1])
    assert "tampered, truncated or replaced" in refusal(manifest, A100, plan, onnx_sha256)
    plan.unlink()
    assert f"plan file {plan} is missing" in refusal(manifest, A100, plan, onnx_sha256)


def test_refuses_a_manifest_whose_engine_hash_differs(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    _, plan = built
    path = plan.with_suffix(".json")
    data = json.loads(path.read_text())
    data["engine_sha256"] = "f" * 64
    path.write_text(json.dumps(data))
    message = refusal(read_manifest(path), A100, plan, onnx_sha256)
    assert f"plan sha256 {sha256_file(plan)[:12]}... is not the manifest's ffffffffffff..." in (
        message
    )


def test_refuses_a_manifest_edited_to_match_the_host(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    # Rewriting the recorded GPU does not make an A100 engine run on an H200.
    manifest, plan = built
    edited_key = manifest.key.model_copy(
        update={"gpu_name": H200.gpu_name, "compute_capability": (9, 0), "sm_count": 132}
    )
    edited = manifest.model_copy(update={"key": edited_key})
    host = replace(H200, tensorrt_version=A100.tensorrt_version)
    message = refusal(edited, host, plan, onnx_sha256)
    assert "this host has" not in message
    assert f"not its recorded {manifest.cache_key[:16]} (edited after the build)" in message


def test_refuses_a_plan_named_for_another_key(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    renamed = plan.rename(plan.with_name("0123456789abcdef.plan"))
    message = refusal(manifest, A100, renamed, onnx_sha256)
    assert f"plan file 0123456789abcdef.plan is not the manifest's {manifest.plan_name}" in message


def test_refuses_when_the_onnx_changed_since_the_build(
    built: tuple[EngineManifest, Path], onnx_sha256: str, tmp_path: Path, workflow: ModelPackage
) -> None:
    manifest, plan = built
    changed = tmp_path / "model.onnx"
    changed.write_bytes(workflow.model_path.read_bytes() + b"\0")
    now = sha256_file(changed)
    message = refusal(manifest, A100, plan, now)
    assert (
        f"engine built from ONNX sha256 {onnx_sha256[:12]}... but the package's model.onnx "
        f"is now {now[:12]}..."
    ) in message


def test_refuses_other_precision_and_profiles(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    assert "engine built for fp16, int8 asked for" in refusal(
        manifest, A100, plan, onnx_sha256, precision="int8"
    )
    message = refusal(manifest, A100, plan, onnx_sha256, profiles=(IMAGE, STATE))
    assert (
        "engine built with profiles image:1x3x112x192,1x3x112x192,4x3x112x192, "
        "image:1x3x112x192,1x3x112x192,4x3x112x192 "
        "state_in.stage1_layer1:1x64x2,1x64x2,4x64x2 asked for"
    ) in message


def test_names_every_difference_in_one_line(
    built: tuple[EngineManifest, Path], onnx_sha256: str
) -> None:
    manifest, plan = built
    plan.write_bytes(b"replaced")
    message = refusal(manifest, H200, plan, "1" * 64, precision="fp32", profiles=())
    for part in ("this host has NVIDIA H200", "model.onnx is now", "fp32 asked for"):
        assert part in message
    assert "none (static shapes) asked for" in message
    assert "tampered" in message


# --- --profile parsing -----------------------------------------------------------------------


def test_parses_profiles_against_the_card(workflow: ModelPackage) -> None:
    others = [p.describe() for p in batch_profiles(workflow.card, 4) if p.name not in NAMES]
    profiles = parse_profiles(
        [
            "state_in.stage1_layer1:1x64x2,1x64x2,4x64x2",
            *others,
            " image : 1x3x112x192, 1x3x112x192 ,4x3x112x192",
        ],
        workflow.card,
    )
    assert [p for p in profiles if p.name in NAMES] == [IMAGE, STATE]
    assert len(profiles) == len(workflow.card.graph_inputs())
    assert parse_profile(IMAGE.describe()) == IMAGE


def test_a_dynamic_batch_needs_a_profile_for_every_input(workflow: ModelPackage) -> None:
    assert workflow.card.dynamic_batch
    with pytest.raises(OrstreamError) as error:
        parse_profiles([IMAGE.describe(), STATE.describe()], workflow.card)
    message = str(error.value)
    assert message.startswith("--profile: pitvis_workflow takes a dynamic batch")
    assert "none for state_in.stage1_layer2, " in message and "\n" not in message


def test_batch_profiles_span_one_to_max_rows_of_every_input(workflow: ModelPackage) -> None:
    profiles = batch_profiles(workflow.card, 6)
    inputs = workflow.card.graph_inputs()
    assert sorted(p.name for p in profiles) == sorted(inputs)
    for profile in profiles:
        shape = inputs[profile.name][0]
        assert profile.min == shape and profile.opt == profile.max == (6, *shape[1:])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("image", "expected name:min,opt,max with shapes like 1x3x144x256"),
        (":1x3,1x3,1x3", "expected name:min,opt,max"),
        ("image:1x3x112x192,4x3x112x192", "expected three shapes (min,opt,max), got 2"),
        ("image:1x3xAx192,1x3x112x192,1x3x112x192", "shape '1x3xAx192' is not dimensions"),
        ("image:1x3x112x192,,1x3x112x192", "shape '' is not dimensions"),
        ("image:1x-3x112x192,1x3x112x192,1x3x112x192", "shape '1x-3x112x192' is not"),
        (
            "image:2x3x112x192,1x3x112x192,4x3x112x192",
            "need min <= opt <= max in every dimension, got 2x3x112x192, 1x3x112x192, ",
        ),
        ("image:1x3x112,1x3x112x192,1x3x112x192", "min, opt and max must have the same rank"),
        ("image:0x3x112x192,1x3x112x192,1x3x112x192", "every dimension must be at least 1"),
        ("images:1x3x112x192,1x3x112x192,1x3x112x192", "pitvis_workflow has no input 'images'"),
        ("image:1x3x112,1x3x112,1x3x112", "input 'image' has rank 4 (1x3x112x192), the profile"),
    ],
)
def test_profile_errors_are_one_line(workflow: ModelPackage, value: str, message: str) -> None:
    with pytest.raises(OrstreamError) as error:
        parse_profiles([value], workflow.card)
    assert message in str(error.value)
    assert str(error.value).startswith("--profile ")
    assert "\n" not in str(error.value)


def test_unknown_input_lists_the_graph_inputs(workflow: ModelPackage) -> None:
    with pytest.raises(OrstreamError) as error:
        parse_profiles(["frame:1x3,1x3,1x3"], workflow.card)
    assert "(its inputs: image, state_in.stage1_layer1, state_in.stage1_layer2," in str(error.value)


def test_profile_for_one_input_twice_is_refused(workflow: ModelPackage) -> None:
    with pytest.raises(OrstreamError, match="input 'image' is given more than once"):
        parse_profiles([IMAGE.describe(), IMAGE.describe()], workflow.card)
