"""Data locality across real processes (issue 7, paper Scenario 3): a request
naming a dataset runs on the one island that holds it, with retrieval there."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from islandrun.node import api, index
from tests.mesh_procs import NodeProc, ask, mesh, wait_until

pytestmark = pytest.mark.slow

QUESTION = "when are deposits returned to the tenant"


def offers(viewer: NodeProc, holder: NodeProc, dataset: str) -> bool:
    view = next((p for p in viewer.peers_json() if p["device_id"] == holder.device_id), {})
    return view.get("liveness") == "alive" and view.get("datasets") == [dataset]


def chat(node: NodeProc, **islandrun: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": QUESTION}],
            "islandrun": islandrun}
    return httpx.post(f"{node.status()['api']}/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {api.load_token(node.home)}"})


def test_dataset_requests_run_where_the_index_lives(tmp_path: Path) -> None:
    docs = tmp_path / "caselaw"
    docs.mkdir()
    (docs / "smith.txt").write_text("Smith v Jones: a tenant's deposit is returned within "
                                    "thirty days of the end of the lease, with interest.")
    with mesh(tmp_path, ["laptop", "phone", "server"], "--defer") as (laptop, phone, server):
        index.build_index(server.home, "caselaw", docs)  # = `islandnode index add caselaw DIR`
        server.start()
        laptop.start("--bootstrap", server.address)
        phone.start("--bootstrap", server.address)
        wait_until(lambda: offers(laptop, server, "caselaw") and offers(phone, server, "caselaw"),
                   30, "the server's advert to name its dataset")

        out = ask(laptop, QUESTION, "--dataset", "caselaw")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == QUESTION  # the echo executor answers the question
        assert server.device_id[-8:] in out.stderr

        plain = chat(laptop, island=server.device_id)
        located = chat(laptop, dataset="caselaw")
        assert plain.status_code == located.status_code == 200, located.text
        assert located.headers["x-islandrun-island"] == server.device_id
        # The laptop holds no index: the extra prompt is the passage the
        # server retrieved and put in front of the question, on the server.
        words = len(QUESTION.split())
        assert plain.json()["usage"]["prompt_tokens"] == words
        assert located.json()["usage"]["prompt_tokens"] > words + 10
        assert "thirty days" not in located.text  # only the answer comes back

        refused = ask(phone, QUESTION, "--dataset", "medical")
        assert refused.returncode == 1
        assert "constraint (dataset: " in refused.stderr, refused.stderr
        assert chat(laptop, dataset="medical").status_code == 403
