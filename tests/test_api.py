"""The OpenAI-compatible local API of a real node, with the official client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from islandrun.node import api
from tests.mesh_procs import NodeProc, mesh, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NodeProc]]:
    root = tmp_path_factory.mktemp("api")
    with mesh(root, ["laptop", "server"], "--echo-model", "echo") as nodes:
        laptop, server = nodes
        wait_until(lambda: laptop.peers().get(server.device_id) == "alive", 20, "adverts")
        yield nodes


def client(node: NodeProc, token: str | None = None) -> openai.OpenAI:
    url = node.status()["api"]
    return openai.OpenAI(base_url=f"{url}/v1", api_key=token or api.load_token(node.home),
                         max_retries=0)


def test_chat_completion(two_nodes: list[NodeProc]) -> None:
    laptop, server = two_nodes
    raw = client(laptop).chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "hello through the API"}],
        extra_body={"islandrun": {"island": server.device_id}},
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "hello through the API"
    assert raw.headers["x-islandrun-island"] == server.device_id
    assert raw.headers["x-islandrun-sanitized"] == "false"
    extra = reply.model_extra or {}
    assert extra["islandrun"]["island_name"] == "server"
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_streaming(two_nodes: list[NodeProc]) -> None:
    laptop, _ = two_nodes
    stream = client(laptop).chat.completions.create(
        model="echo", stream=True, messages=[{"role": "user", "content": "one two three"}],
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "one two three"


def test_models(two_nodes: list[NodeProc]) -> None:
    laptop, _ = two_nodes
    models = client(laptop).models.list()
    entry = next(m for m in models.data if m.id == "echo")
    assert set((entry.model_extra or {})["islands"]) == {"laptop", "server"}


def test_refusal_names_the_constraint(two_nodes: list[NodeProc]) -> None:
    laptop, _ = two_nodes
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(laptop).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}],
        )
    assert "model" in str(info.value) and "no island satisfies" in str(info.value)


def test_token_required(two_nodes: list[NodeProc]) -> None:
    laptop, _ = two_nodes
    with pytest.raises(openai.AuthenticationError):
        client(laptop, token="wrong").models.list()
    assert (laptop.home / api.TOKEN_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "body",
    [{"messages": []}, {"messages": [{"role": "wizard", "content": "x"}]},
     {"messages": [{"role": "user", "content": 3}]},
     {"messages": [{"role": "user", "content": "x"}], "islandrun": {"tier": "gold"}}],
)
def test_bad_requests_are_400(two_nodes: list[NodeProc], body: dict) -> None:
    laptop, _ = two_nodes
    url = laptop.status()["api"]
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {api.load_token(laptop.home)}"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_not_json_is_400(two_nodes: list[NodeProc]) -> None:
    laptop, _ = two_nodes
    url = laptop.status()["api"]
    reply = httpx.post(f"{url}/v1/chat/completions", content=b"\xff{", timeout=30,
                       headers={"authorization": f"Bearer {api.load_token(laptop.home)}"})
    assert reply.status_code == 400


def test_loopback_only_by_default(tmp_path: Path) -> None:
    node = NodeProc(tmp_path, "exposed")
    node.configure([])
    import subprocess

    from tests.mesh_procs import ISLANDNODE

    out = subprocess.run([ISLANDNODE, "--home", str(node.home), "run", "--api", "0.0.0.0:0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "--api-remote" in out.stderr
