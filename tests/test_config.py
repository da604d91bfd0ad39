from __future__ import annotations

from pathlib import Path

import pytest

from islandrun.node import config
from islandrun.node.errors import ConfigError

ID = "12D3KooWBjxd6XiN5vmP7YcijsMpEAcnGoGBojza6nCdzVo9jv6o"
P = Path("config.toml")


def test_full_config() -> None:
    text = f"""
[node]
name = "laptop"

[mesh]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
allow = ["{ID}"]
"""
    cfg = config.parse_config(text, P)
    assert cfg.node.name == "laptop"
    assert cfg.mesh.listen == ("/ip4/127.0.0.1/tcp/0",) and not cfg.mesh.mdns
    assert cfg.mesh.allow == (ID,)


def test_defaults() -> None:
    cfg = config.parse_config('[node]\nname = "x"\n', P)
    assert cfg.mesh.mdns and cfg.mesh.allow == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[node]\nname = "a"\ncolour = "blue"\n', 3, "unknown key [node].colour"),
        ('[node]\nname = "a"\n[mesh]\nmdns = "yes"\n', 4, "true or false"),
        ('[node]\nname = "a"\n[mesh]\nallow = ["bob"]\n', 4, "not a device id"),
        ('[node]\nname = "a"\n[meshh]\nmdns = true\n', 3, "unknown section [meshh]"),
        ('[node]\nname = ""\n', 2, "printable"),
        ('[node]\nname = "a"\n[mesh]\nlisten = "/ip4/1.2.3.4"\n', 4, "list of strings"),
    ],
)
def test_errors_name_file_line_and_fix(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse_config(text, P)
    assert f"config.toml:{line}:" in str(info.value)
    assert words in str(info.value)


def test_bad_toml() -> None:
    with pytest.raises(ConfigError, match=r"config.toml:2: invalid TOML.*fix the syntax"):
        config.parse_config('[node]\nname = "unterminated\n', P)


def test_missing_node_section() -> None:
    with pytest.raises(ConfigError, match="islandnode init"):
        config.parse_config("[mesh]\nmdns = true\n", P)


def test_initial_config_round_trips(tmp_path: Path) -> None:
    config.write_initial_config(tmp_path, "phone", mdns=False, allow=(ID,))
    cfg = config.load_config(tmp_path)
    assert cfg.node.name == "phone" and cfg.mesh.allow == (ID,) and not cfg.mesh.mdns
    assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o600


CLOUD_TEXT = """[node]
name = "laptop"

[[cloud]]
name = "openai"
url = "https://api.openai.com/v1/"
model = "gpt-4o-mini"
price_in = 0.15
price_out = 1
api_key_env = "OPENAI_API_KEY"
daily_budget = 2

[[cloud]]
name = "ollama"
url = "http://127.0.0.1:11434/v1"
model = "llama3.2"
trust = 0.5
privacy = 0.3
"""


def test_cloud_islands() -> None:
    openai, ollama = config.parse_config(CLOUD_TEXT, P).cloud
    assert openai == config.CloudSection(
        name="openai", url="https://api.openai.com/v1", model="gpt-4o-mini", price_in=0.15,
        price_out=1.0, api_key_env="OPENAI_API_KEY", daily_budget=2.0,
    )
    assert (openai.trust, openai.privacy, openai.monthly_budget) == (0.4, 0.4, None)  # cloud tier
    assert openai.device_id == "cloud:openai" and isinstance(openai.price_out, float)
    assert (ollama.trust, ollama.privacy, ollama.api_key_env) == (0.5, 0.3, "")


def _cloud(line: str) -> str:
    """A config with one cloud entry, ``line`` replacing the base line of its key."""
    base = {"name": '"c"', "url": '"https://x.io"', "model": '"m"'}
    key, _, value = line.partition(" = ")
    lines = [f"{k} = {v}" for k, v in (base | {key: value}).items()]
    return '[node]\nname = "a"\n[[cloud]]\n' + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("trust = 1.5", "[cloud].trust: must be between 0 and 1"),
        ("privacy = -0.1", "[cloud].privacy: must be between 0 and 1"),
        ("price_in = -1", "[cloud].price_in: must not be negative"),
        ("price_out = nan", "expected a number"),
        ("daily_budget = true", "expected a number"),
        ("monthly_budget = -5", "[cloud].monthly_budget: must not be negative"),
        ("timeout = 0", "[cloud].timeout: must be more than 0"),
        ('api_key_env = "sk-123"', "environment variable name"),
        ('url = "ftp://x.io"', "http:// or https://"),
        ('url = "https://user:sk-secret@x.io"', "must not hold credentials"),
        ('url = "https://x.io/v1?key=sk-secret"', "must not hold credentials or a query"),
        ('url = "https://x.io:99999"', "https://host[:port]/path"),
        ('name = "a b"', "letters, digits"),
        ("api_key = 3", "unknown key [cloud].api_key"),
    ],
)
def test_cloud_errors_name_line_and_fix(line: str, words: str) -> None:
    text = _cloud(line)
    line_no = text.splitlines().index(line) + 1
    with pytest.raises(ConfigError) as info:
        config.parse_config(text, P)
    assert words in str(info.value)
    assert "sk-secret" not in str(info.value) and "sk-123" not in str(info.value)
    assert str(info.value).startswith(f"config.toml:{line_no}:")


def test_cloud_needs_url_and_model_and_unique_names() -> None:
    with pytest.raises(ConfigError, match=r"\[cloud\] is missing model, url"):
        config.parse_config('[node]\nname = "a"\n[[cloud]]\nname = "c"\n', P)
    twice = _cloud('model = "m"') + '[[cloud]]\nname = "c"\nurl = "http://y"\nmodel = "m"\n'
    with pytest.raises(ConfigError, match=r"config.toml:8: .*name 'c' appears twice"):
        config.parse_config(twice, P)


MODELS = """
[node]
name = "laptop"

[[models]]
name = "small"
path = "/m/small.gguf"

[[models]]
name = "big"
path = "/m/big.gguf"
context = 8192
threads = 4
gpu_layers = -1
"""


def test_models_array_of_tables() -> None:
    cfg = config.parse_config(MODELS, P)
    small, big = cfg.models
    assert (small.name, small.path, small.context, small.threads, small.gpu_layers) == (
        "small", "/m/small.gguf", 2048, 0, 0)
    assert (big.context, big.threads, big.gpu_layers) == (8192, 4, -1)
    assert config.parse_config('[node]\nname = "x"\n', P).models == ()


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("context = 8192", "context = 0"), 12, "[models].context: must be at least 1"),
        (("threads = 4", "threads = true"), 13, "expected a whole number"),
        (("threads = 4", "threads = 4.5"), 13, "expected a whole number"),
        (("gpu_layers = -1", "gpu_layers = -2"), 14, "must be at least -1"),
        (('name = "big"', 'name = "small"'), 10, "'small' appears twice"),
        (('path = "/m/big.gguf"', 'path = ""'), 11, "must not be empty"),
        (('path = "/m/big.gguf"', 'path = "/m/big.gguf"\ncolour = 1'), 12, "unknown key"),
        (('name = "big"\n', ""), 9, "[models] is missing name"),
    ],
)
def test_model_errors_point_at_the_entry(change: tuple[str, str], line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse_config(MODELS.replace(*change), P)
    assert f"config.toml:{line}:" in str(info.value)
    assert words in str(info.value)


def test_models_must_be_tables() -> None:
    with pytest.raises(ConfigError, match=r"write models as \[\[models\]\] tables"):
        config.parse_config('models = "x"\n[node]\nname = "a"\n', P)


def test_update_config_validates_before_writing(tmp_path: Path) -> None:
    config.write_initial_config(tmp_path, "phone")
    before = (tmp_path / "config.toml").read_text()

    def bad(data: dict[str, object]) -> None:
        data["models"] = [{"name": "m", "path": "/x.gguf", "context": -5}]

    with pytest.raises(ConfigError, match="at least 1"):
        config.update_config(tmp_path, bad)
    assert (tmp_path / "config.toml").read_text() == before
    cfg = config.update_config(
        tmp_path, lambda data: data.update(models=[{"name": "m", "path": "/x.gguf"}]))
    assert cfg.models[0].name == "m" and config.load_config(tmp_path).models == cfg.models
    assert (tmp_path / "config.toml").stat().st_mode & 0o777 == 0o600
