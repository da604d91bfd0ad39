"""Reading a GGUF file's quantisation from its header (for adverts)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from islandrun.node.config import ModelSection
from islandrun.node.ggufinfo import file_type_name, quantization
from islandrun.node.shore import Shore


def write_gguf(path: Path, file_type: int | None) -> Path:
    """A small GGUF whose file type comes after keys of every kind the walker skips."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("test")
    writer.add_context_length(128)
    writer.add_float32("test.scale", 0.5)
    writer.add_array("test.words", ["a", "bb", "ccc"])
    writer.add_array("test.numbers", [1, 2, 3])
    writer.add_bool("test.flag", True)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tensor("t", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    ("file_type", "name"),
    [
        (gguf.LlamaFileType.MOSTLY_Q4_K_M, "Q4_K_M"),
        (gguf.LlamaFileType.MOSTLY_Q8_0, "Q8_0"),
        (gguf.LlamaFileType.ALL_F32, "F32"),
    ],
)
def test_the_file_type_is_read_past_other_keys(
    tmp_path: Path, file_type: int, name: str
) -> None:
    path = write_gguf(tmp_path / "m.gguf", file_type)
    assert quantization(path) == name
    reader = gguf.GGUFReader(str(path))  # the package's own full parse agrees
    assert reader.get_field("general.file_type").contents() == file_type


def test_the_tiny_model_is_f16(tiny_model: Path) -> None:
    assert quantization(tiny_model) == "F16"


def test_unknown_or_missing_gives_empty(tmp_path: Path) -> None:
    assert quantization(write_gguf(tmp_path / "none.gguf", None)) == ""
    assert quantization(tmp_path / "absent.gguf") == ""
    (tmp_path / "text.gguf").write_text("not a model")
    assert quantization(tmp_path / "text.gguf") == ""
    truncated = write_gguf(tmp_path / "cut.gguf", gguf.LlamaFileType.MOSTLY_Q4_0).read_bytes()
    (tmp_path / "cut2.gguf").write_bytes(truncated[:60])
    assert quantization(tmp_path / "cut2.gguf") == ""


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", gguf.LlamaFileType.MOSTLY_Q4_0)
    assert quantization(path) == "Q4_0"
    write_gguf(tmp_path / "m2.gguf", gguf.LlamaFileType.MOSTLY_Q6_K).replace(path)
    assert quantization(path) == "Q6_K"


def test_codes_without_a_name_are_shown_by_number() -> None:
    assert file_type_name(9999) == "file type 9999"


def test_shore_adverts_carry_the_quantization(tiny_model: Path) -> None:
    models = Shore([ModelSection(name="tiny", path=str(tiny_model))]).models()
    assert [(m.name, m.quantization) for m in models] == [("tiny", "F16")]
