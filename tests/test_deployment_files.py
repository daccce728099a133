"""The container deployment (Dockerfile, docker-compose.yml, .env.example, caddy/Caddyfile)
names only commands, options and settings gridbot has, and what it mounts exists. Docker is
not run here: the files are read and their gridbot parts are tried through the CLI."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import prepare_database
from bot.cli import app
from bot.deployment import load_deployment
from bot.settings import ENV_PREFIX, Settings, load_settings
from reports.fonts import DEBIAN_FONTS
from storage.db import create_engine, session_factory
from storage.models import Station

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
CADDYFILE = (ROOT / "caddy" / "Caddyfile").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")

# What the operator writes into .env besides the example's defaults (placeholders, not secrets).
FILLED_IN = {
    "GRIDBOT_BOT_TOKEN": "123456:placeholder-token-for-tests",
    "GRIDBOT_WEBHOOK_SECRET": "placeholder_secret",
    "POSTGRES_PASSWORD": "placeholder",
}
# The font file each Debian package installs (`dpkg -L`), for the packages reports/fonts.py uses.
FONT_OF_PACKAGE = {
    "fonts-wqy-microhei": Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    "fonts-wqy-zenhei": Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def dotenv(text: str) -> dict[str, str]:
    """KEY=value lines as docker compose reads .env (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against an .env."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        found = env.get(name)
        if op in (":-", "-") and not found:
            return arg
        if op in (":?", "?") and not found:
            raise AssertionError(f"docker compose would stop: {arg}")
        return found or ""

    return _VARIABLE.sub(one, value)


def operator_env() -> dict[str, str]:
    return {**dotenv(ENV_EXAMPLE), **FILLED_IN}


def gridbot_services() -> dict[str, dict[str, Any]]:
    """The services that run the gridbot image."""
    return {name: service for name, service in SERVICES.items()
            if str(service.get("image", "")).startswith("gridbot")}


def service_environment(name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as compose gives it, with the operator's .env (or `env`)."""
    environment = SERVICES[name].get("environment") or {}
    env = operator_env() if env is None else env
    return {key: interpolate(str(value), env) for key, value in environment.items()}


def mount_source(name: str, target: str) -> Path:
    """The host directory a gridbot service mounts at `target` (with the example's .env)."""
    for volume in SERVICES[name]["volumes"]:
        source, mounted, *_ = interpolate(volume, operator_env()).split(":")
        if mounted == target:
            return ROOT / source
    raise AssertionError(f"{name} mounts nothing at {target}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined as docker does (the backslash
    and the line break removed) and comments dropped."""
    joined = re.sub(r"\\\n", "", "\n".join(
        line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")
    ))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def gridbot_command_lines() -> list[list[str]]:
    """Every gridbot invocation the image and the compose file make."""
    lines = [list(service["command"]) for service in gridbot_services().values()]
    for instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            for call in re.findall(r"(?:^|&&|;)\s*gridbot\b([^&;|>]*)", arguments):
                lines.append(shlex.split(call))
    return lines


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out of the build."""
    ignored = False
    for pattern in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate, pattern = pattern.startswith("!"), pattern.lstrip("!")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        pattern = pattern.removeprefix("**/")
        hit = any(fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(Path(prefix).name, pattern)
                  for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


# --- docker-compose.yml ------------------------------------------------------------------------


def test_the_compose_file_has_the_whole_deployment() -> None:
    assert {"postgres", "redis", "webhook", "scheduler", "check-config", "proxy"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"].startswith("postgres:16")
    assert SERVICES["redis"]["image"].startswith("redis:7")
    assert SERVICES["webhook"]["deploy"]["replicas"] >= 2
    assert SERVICES["webhook"]["command"][:2] == ["webhook", "--no-scheduler"]
    assert SERVICES["scheduler"]["command"] == ["scheduler"]


def test_postgres_keeps_its_data_in_a_named_volume_and_reports_health() -> None:
    postgres = SERVICES["postgres"]
    volume = postgres["volumes"][0].split(":")
    assert volume[0] in COMPOSE["volumes"] and volume[1] == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_redis_keeps_nothing_on_disk_and_the_file_says_why() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "no"
    assert command[command.index("--save") + 1] == ""
    assert "Nothing is kept on disk" in COMPOSE_TEXT


def test_the_bot_starts_after_the_databases_are_healthy_and_the_config_is_checked() -> None:
    for name in ("webhook", "scheduler"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["check-config"]["condition"] == "service_completed_successfully"
    assert SERVICES["check-config"]["command"] == ["check-config"]
    assert SERVICES["check-config"]["restart"] == "no"


def test_every_gridbot_command_is_a_real_command_with_real_options() -> None:
    lines = gridbot_command_lines()
    assert ["webhook", "--no-scheduler"] in lines and ["scheduler"] in lines
    runner = CliRunner()
    for words in lines:
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"gridbot {' '.join(words)}: {result.output}"


def test_every_gridbot_variable_is_a_setting() -> None:
    named = set(re.findall(r"\bGRIDBOT_[A-Z0-9_]+", COMPOSE_TEXT + ENV_EXAMPLE + DOCKERFILE))
    assert named, "the deployment files name no settings"
    unknown = sorted(name for name in named
                     if name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields)
    assert not unknown, f"not settings of bot/settings.py: {unknown}"


def test_each_gridbot_service_gets_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in gridbot_services():
        for key in list(os.environ):
            if key.startswith(ENV_PREFIX):
                monkeypatch.delenv(key)
        for key, value in service_environment(name).items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.database_url and settings.database_url.startswith("postgresql+asyncpg://")
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.data_dir == Path("/data")


def test_workers_listen_where_the_proxy_sends_and_only_telegram_is_public() -> None:
    environment = service_environment("webhook")
    assert environment["GRIDBOT_WEBHOOK_HOST"] == "0.0.0.0"
    port = environment["GRIDBOT_WEBHOOK_PORT"]
    assert SERVICES["webhook"]["expose"] == [port]
    assert re.search(rf"dynamic a \{{\s*name webhook\s*port {port}\b", CADDYFILE)
    assert "handle /telegram/* {" in CADDYFILE and "respond 404" in CADDYFILE
    assert "./caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in SERVICES["proxy"]["volumes"]


def test_workers_and_scheduler_share_the_data_volume() -> None:
    for name in ("webhook", "scheduler"):
        assert "gridbot-data:/data" in SERVICES[name]["volumes"]
        assert service_environment(name)["GRIDBOT_DATA_DIR"] == "/data"


def test_the_deployment_directory_is_mounted_read_only_and_holds_a_valid_file() -> None:
    for name in gridbot_services():
        mounts = [v for v in SERVICES[name]["volumes"] if ":/etc/gridbot" in v]
        assert mounts and all(mount.endswith(":ro") for mount in mounts), name
    source = mount_source("webhook", "/etc/gridbot")
    assert source.resolve() == (ROOT / "bot" / "sample").resolve()
    configured = Path(service_environment("webhook")["GRIDBOT_CONFIG"])
    on_host = source / configured.relative_to("/etc/gridbot")
    assert on_host.is_file()
    load_deployment(on_host)  # the gazetteer and grids it names resolve beside it
    assert not dockerignored(str(source.relative_to(ROOT)))


def test_the_one_shot_check_passes_with_the_example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    source = mount_source("check-config", "/etc/gridbot")
    for key, value in service_environment("check-config").items():
        monkeypatch.setenv(key, value.replace("/etc/gridbot", str(source)))
    result = CliRunner().invoke(app, SERVICES["check-config"]["command"])
    assert result.exit_code == 0, result.output


# --- .env.example ------------------------------------------------------------------------------


def test_the_example_env_holds_no_secret_and_names_every_variable_compose_needs() -> None:
    example = dotenv(ENV_EXAMPLE)
    for secret in ("GRIDBOT_BOT_TOKEN", "GRIDBOT_WEBHOOK_SECRET", "POSTGRES_PASSWORD"):
        assert example[secret] == "", f"{secret} must be empty in .env.example"
    assert not re.search(r"\d{6,}:[A-Za-z0-9_-]{30,}", ENV_EXAMPLE)  # nothing like a token
    used = {match["name"] for match in _VARIABLE.finditer(COMPOSE_TEXT)}
    commented = set(re.findall(r"^# ?([A-Z_]+)=", ENV_EXAMPLE, re.MULTILINE))
    assert used <= set(example) | commented, sorted(used - set(example) - commented)


def test_the_real_env_stays_out_of_git_and_of_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert dockerignored(".env") and not dockerignored(".env.example")


def test_a_missing_secret_stops_compose_with_its_name() -> None:
    copied = {**dotenv(ENV_EXAMPLE), "POSTGRES_PASSWORD": "set"}  # the token not filled in
    with pytest.raises(AssertionError, match="GRIDBOT_BOT_TOKEN"):
        service_environment("webhook", copied)


# --- Dockerfile --------------------------------------------------------------------------------


def test_the_image_is_python_311_slim_and_installs_the_project_without_dev_extras() -> None:
    instructions = dockerfile_instructions()
    bases = [arguments.split()[0] for instruction, arguments in instructions
             if instruction == "FROM"]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases)
    installs = [arguments for instruction, arguments in instructions
                if instruction == "RUN" and "pip install" in arguments]
    assert any(re.search(r"pip install \.(\s|$)", arguments) for arguments in installs)
    assert not any("[dev]" in arguments for arguments in installs)


def test_the_image_installs_the_font_the_digest_looks_for() -> None:
    installs = " ".join(arguments for instruction, arguments in dockerfile_instructions()
                        if instruction == "RUN" and "apt-get install" in arguments)
    packages = {word for word in installs.split() if word.startswith("fonts-")}
    assert "fonts-wqy-microhei" in packages
    assert DEBIAN_FONTS[0] == FONT_OF_PACKAGE["fonts-wqy-microhei"]


def test_the_image_runs_gridbot_as_a_user_with_its_data_in_a_volume() -> None:
    instructions = dict(dockerfile_instructions())  # the last of each kind
    assert instructions["USER"] not in ("root", "0")
    assert instructions["ENTRYPOINT"] == '["gridbot"]'
    assert '"/data"' in instructions["VOLUME"]
    assert "GRIDBOT_DATA_DIR=/data" in instructions["ENV"]
    assert "/healthz" in instructions["HEALTHCHECK"]


def test_the_health_check_is_python_that_asks_a_webhook_worker_for_healthz() -> None:
    exec_form = json.loads(dict(dockerfile_instructions())["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert exec_form[:2] == ["python", "-c"]
    compile(exec_form[2], "HEALTHCHECK", "exec")  # no curl in the slim image: Python's urllib
    assert "/proc/1/cmdline" in exec_form[2] and "GRIDBOT_WEBHOOK_PORT" in exec_form[2]
    assert f"'{Settings.model_fields['webhook_port'].default}'" in exec_form[2]


def test_what_the_image_copies_is_in_the_build_context() -> None:
    copied = [arguments.split()[:-1] for instruction, arguments in dockerfile_instructions()
              if instruction == "COPY" and not arguments.startswith("--from")]
    sources = [source for sources in copied for source in sources]
    assert {"pyproject.toml", "README.md", "bot", "handlers", "storage", "reports"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists() and not dockerignored(source), source
    assert dockerignored(".venv") and dockerignored("tests") and dockerignored("data")
    assert dockerignored("bot/__pycache__") and dockerignored("bot/locales/en/LC_MESSAGES/x.mo")


# --- README ------------------------------------------------------------------------------------


def test_the_readme_tells_operators_how_to_run_back_up_upgrade_and_rotate() -> None:
    operations = README.split("## Operations", 1)[1].split("\n## ", 1)[0]
    for needle in ("docker compose up", "pg_dump", ".backup", "/revoke", "GRIDBOT_WEBHOOK_SECRET",
                   "--scale webhook="):
        assert needle in operations, needle


def test_the_readme_runs_only_real_commands_in_containers() -> None:
    """`docker compose run --rm SERVICE ARGS...` in the README: SERVICE runs the gridbot image
    (whose entrypoint is gridbot) and ARGS are a gridbot command."""
    runs = re.findall(r"docker compose run --rm ([a-z][a-z-]*) ([^\n`#]*)", README)
    assert runs
    runner = CliRunner()
    for service, arguments in runs:
        assert service in gridbot_services(), service
        result = runner.invoke(app, [*shlex.split(arguments), "--help"])
        assert result.exit_code == 0, f"{service} {arguments}: {result.output}"


# --- containers starting together --------------------------------------------------------------


async def test_processes_starting_together_on_a_new_database_all_start(database_url: str) -> None:
    """`docker compose up` starts the workers and the scheduler at the same moment on an empty
    database: they take turns migrating and writing the stations, and none of them fails."""
    deployment = load_deployment(ROOT / "bot" / "sample" / "deployment.yaml")
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        await asyncio.gather(
            *(prepare_database(engine, session_factory(engine), deployment) for engine in engines)
        )
        async with session_factory(engines[0])() as session:
            stations = (await session.exec(select(Station))).all()
        assert sorted(s.key for s in stations) == sorted(s.key for s in deployment.stations)
    finally:
        for engine in engines:
            await engine.dispose()
