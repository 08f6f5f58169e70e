"""``minift sft --init``: a real-layout checkpoint tuned through a chat template, every weight or LoRA,
then exported and prompted again (minift.runs.tune, the sft/export/generate commands)."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from minift import hf_llama, runs
from minift import lora as L
from minift.chat import chat_prompt_ids
from minift.checkpoint import latest_checkpoint, load_checkpoint
from minift.cli import main
from minift.config import get_config
from minift.model import init_params
from minift.runs import load_any, tune_buckets
from minift.tokenizer import load_tokenizer

ALPACA = [
    {"instruction": "Give the opposite of the word.", "input": "hot", "output": "cold"},
    {"instruction": "Dịch sang tiếng Anh.", "input": "con mèo", "output": "the cat"},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red."},
    {"instruction": "Count the words.", "input": "a b c", "output": "3"},
]
CONVERSATIONS = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4"}]},
    {"messages": [{"role": "user", "content": "Thủ đô của Pháp?"}, {"role": "assistant", "content": "Paris."}]},
]
TRAIN = ["--steps", "3", "--warmup", "0", "--batch-size", "2", "--lr", "1e-2", "--max-len", "96", "--no-progress"]


@pytest.fixture
def checkpoint(tmp_path, course_tokenizer):
    """A tiny random model in the Hugging Face Llama layout, with a SentencePiece tokenizer.model."""
    folder = tmp_path / "init"
    config = get_config("tiny", vocab_size=course_tokenizer.vocab_size, tie_embeddings=False)
    tok = course_tokenizer
    hf_llama.save_hf_llama(init_params(config, jax.random.PRNGKey(3)), config, folder,
                           bos_id=tok.bos_id, eos_id=tok.eos_id, pad_id=tok.pad_id)
    shutil.copyfile(tok.path, folder / "tokenizer.model")
    return folder


@pytest.fixture
def json_checkpoint(tmp_path, repo):
    """The same with a Llama-3-style tokenizer.json (its special tokens: <|eot_id|>, <|im_end|>, ...)."""
    folder, source = tmp_path / "init_json", repo / "tests" / "fixtures" / "tokenizers" / "llama3_style"
    tok = load_tokenizer(source)
    config = get_config("tiny", vocab_size=tok.vocab_size)
    hf_llama.save_hf_llama(init_params(config, jax.random.PRNGKey(4)), config, folder,
                           bos_id=tok.bos_id, eos_id=list(tok.stop_ids), pad_id=None)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(source / name, folder / name)
    return folder


@pytest.fixture
def data(tmp_path):
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps(ALPACA, ensure_ascii=False), encoding="utf-8")
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in CONVERSATIONS), encoding="utf-8")
    return alpaca, chats


def test_sft_init_tunes_every_weight_on_alpaca_data_with_a_chat_template(checkpoint, data, tmp_path, capsys):
    out = tmp_path / "tuned"
    assert main(["sft", "--init", str(checkpoint), "--data", str(data[0]), "--chat-template", "llama2",
                 "--out", str(out), *TRAIN]) == 0
    err = capsys.readouterr().err
    assert "4 of 4 conversations fit" in err and "parameters" in err and "GiB" in err  # counted, planned
    info = json.loads((out / "run.json").read_text())["info"]
    assert info["chat_template"] == "llama2" and info["init"] == str(checkpoint)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 3 and all(np.isfinite(r["loss"]) for r in history)
    tuned, _, _, template, _ = load_any(out)
    before, _ = hf_llama.load_hf_llama(checkpoint)
    assert template == "llama2"
    assert not np.allclose(np.asarray(tuned["layers"]["wq"]), np.asarray(before["layers"]["wq"]))  # it trained


def test_sft_init_lora_on_conversations_moves_only_the_adapters_and_exports_the_merge(json_checkpoint, data,
                                                                                     tmp_path):
    checkpoint, out, exported = json_checkpoint, tmp_path / "lora", tmp_path / "exported"
    assert main(["sft", "--init", str(checkpoint), "--data", str(data[1]), "--chat-template", "chatml",
                 "--lora-rank", "4", "--lora-targets", "wq,wv,w_down", "--out", str(out), *TRAIN]) == 0
    state = load_checkpoint(latest_checkpoint(out))
    before, config = hf_llama.load_hf_llama(checkpoint)
    assert set(state.params) == {"base", "lora"} and set(state.params["lora"]) == {"wq", "wv", "w_down"}
    for name in ("wq", "w_up"):  # the frozen base is bit for bit the checkpoint it started from
        np.testing.assert_array_equal(state.params["base"]["layers"][name], np.asarray(before["layers"][name]))
    assert np.abs(state.params["lora"]["wq"]["b"]).max() > 0  # the adapters moved

    assert main(["export", "--model", str(out), "--out", str(exported)]) == 0
    merged = L.merge(jax.tree.map(jnp.asarray, state.params["base"]), jax.tree.map(jnp.asarray, state.params["lora"]),
                     L.LoraConfig(4, 16.0, ("wq", "wv", "w_down")))
    reloaded, reloaded_config = hf_llama.load_hf_llama(exported)
    assert reloaded_config == config
    for a, b in zip(jax.tree.leaves(reloaded), jax.tree.leaves(merged)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the export is the merged model exactly
    assert (exported / "tokenizer.json").read_bytes() == (checkpoint / "tokenizer.json").read_bytes()
    assert load_tokenizer(exported).stop_ids == load_tokenizer(checkpoint).stop_ids  # EOS list kept


def test_generate_and_chat_prompt_a_loaded_model_with_its_chat_template(checkpoint, data, tmp_path, capsys,
                                                                          monkeypatch):
    out = tmp_path / "tuned"
    assert main(["sft", "--init", str(checkpoint), "--data", str(data[0]), "--chat-template", "llama2",
                 "--out", str(out), *TRAIN]) == 0
    capsys.readouterr()
    for model in (out, checkpoint):  # a tuned run (its template from run.json) and a plain HF folder
        assert main(["generate", "--model", str(model), "--instruction", "Name a colour", "--chat-template",
                     "llama2", "--max-new-tokens", "3"]) == 0
    lines, prompts = iter(["Hello || there", "And again?", ""]), []
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    monkeypatch.setattr("minift.commands.chat.reply", lambda model, ids, args: prompts.append(ids) or "Fine.")
    assert main(["chat", "--model", str(out), "--max-new-tokens", "3"]) == 0
    assert "llama2 template" in capsys.readouterr().out
    tok = load_tokenizer(checkpoint)
    assert tok.decode(prompts[0]) == "[INST] Hello\n\nthere [/INST]"  # instruction || input, Llama-2's way
    # the second turn is prompted with the whole conversation so far, the model's answer included
    history = [{"role": "user", "content": "Hello\n\nthere"}, {"role": "assistant", "content": "Fine."},
               {"role": "user", "content": "And again?"}]
    assert prompts[1] == chat_prompt_ids(history, tok, "llama2")


def test_a_run_that_does_not_fit_stops_before_the_first_step(checkpoint, data, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "device_memory", lambda: 1024**2)  # a 1 MiB "device"
    with pytest.raises(MemoryError, match="parameters .* optimizer state"):
        runs.tune(tmp_path / "run", checkpoint, runs.TrainConfig(steps=2, batch_size=2, warmup_steps=0),
                  data=data[0], max_len=96)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_tune_buckets_end_at_the_longest_pair():
    assert tune_buckets(513) == (64, 128, 256, 512)
    assert tune_buckets(300) == (64, 128, 256, 299)
    assert tune_buckets(40) == (39,)


def test_export_a_course_run_then_tune_it_as_a_real_model(tmp_path, course_tokenizer, data):
    """The README's path from the course model to a real one: course run -> HF folder -> sft --init."""
    base, exported, tuned = tmp_path / "base", tmp_path / "course-hf", tmp_path / "tuned"
    assert main(["pretrain", "--preset", "tiny", "--seq-len", "32", "--out", str(base), "--steps", "2",
                 "--warmup", "0", "--batch-size", "4", "--no-progress"]) == 0
    assert main(["export", "--model", str(base), "--out", str(exported)]) == 0
    params, config = runs.load_model(base)
    reloaded, reloaded_config = hf_llama.load_hf_llama(exported)
    assert reloaded_config == config
    for a, b in zip(jax.tree.leaves(reloaded), jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert load_tokenizer(exported).vocab_size == course_tokenizer.vocab_size  # its tokenizer.model came along
    assert main(["sft", "--init", str(exported), "--data", str(data[0]), "--out", str(tuned), *TRAIN]) == 0
    assert json.loads((tuned / "run.json").read_text())["info"]["chat_template"] == "compact"


def test_exports_carry_the_template_the_model_was_tuned_with(tmp_path, course_tokenizer, checkpoint, data, capsys):
    """A course run's HF and GGUF exports carry its instruction template as Jinja; a tuned run's export
    carries its chat template; the GGUF export reloads bit for bit (f32) and prompts as the run did."""
    from minift.chat_jinja import chat_jinja, render_jinja
    from minift.data import Example, format_prompt

    base, hf, gg = tmp_path / "base", tmp_path / "course-hf", tmp_path / "course.gguf"
    assert main(["pretrain", "--preset", "tiny", "--seq-len", "32", "--out", str(base), "--steps", "2",
                 "--warmup", "0", "--batch-size", "4", "--no-progress"]) == 0
    assert main(["export", "--model", str(base), "--out", str(hf)]) == 0
    assert main(["export", "--model", str(base), "--out", str(gg)]) == 0
    ex = Example("Reverse the words.", "mèo chó gà", "")
    messages = [{"role": "user", "content": f"{ex.instruction}\n\n{ex.input}"}]
    jinja = (hf / "chat_template.jinja").read_text(encoding="utf-8")
    assert json.loads((hf / "tokenizer_config.json").read_text())["chat_template"] == jinja
    assert render_jinja(jinja, messages) == "<s>" + format_prompt(ex, "inline")  # the course prompt
    course, gguf_model = load_any(base), load_any(gg)
    assert gguf_model.chat_jinja == jinja and gguf_model.config == course.config
    for a, b in zip(jax.tree.leaves(gguf_model.params), jax.tree.leaves(course.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    text = format_prompt(ex, "inline")
    assert gguf_model.tokenizer.encode(text, bos=True) == course_tokenizer.encode(text, bos=True)
    # a tuned run: its export says llama2, the template it was tuned with
    tuned, out = tmp_path / "tuned", tmp_path / "tuned-hf"
    assert main(["sft", "--init", str(checkpoint), "--data", str(data[0]), "--chat-template", "llama2",
                 "--out", str(tuned), *TRAIN]) == 0
    assert main(["export", "--model", str(tuned), "--out", str(out)]) == 0
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == chat_jinja("llama2")
    assert load_any(out).chat_template == "llama2"
    assert main(["export", "--model", str(base), "--out", str(tmp_path / "x"), "--dtype", "q8_0"]) == 2
    assert "--dtype q8_0: --format hf stores float32 or bfloat16" in capsys.readouterr().err


def test_a_course_export_loads_with_autotokenizer_and_prompts_as_minift(tmp_path, course_tokenizer):
    transformers = pytest.importorskip("transformers")
    from minift.data import Example, format_prompt

    base, hf = tmp_path / "base", tmp_path / "course-hf"
    assert main(["pretrain", "--preset", "tiny", "--seq-len", "32", "--out", str(base), "--steps", "1",
                 "--warmup", "0", "--batch-size", "2", "--no-progress"]) == 0
    assert main(["export", "--model", str(base), "--out", str(hf)]) == 0
    tok = transformers.AutoTokenizer.from_pretrained(hf)
    ex = Example("Reverse the words.", "mèo chó gà", "")
    messages = [{"role": "user", "content": f"{ex.instruction}\n\n{ex.input}"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<s>" + format_prompt(ex, "inline")
    ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)["input_ids"]
    assert ids == course_tokenizer.encode(format_prompt(ex, "inline"), bos=True)


def test_sft_init_and_generate_take_a_gguf_file(tmp_path, course_tokenizer, data, capsys):
    """`sft --init FILE.gguf` tunes through the file's own chat template; the run prompts with it."""
    from minift.chat_jinja import chat_jinja
    from minift.gguf_llama import save_gguf_llama

    config = get_config("tiny", vocab_size=course_tokenizer.vocab_size)
    path = save_gguf_llama(init_params(config, jax.random.PRNGKey(6)), config, tmp_path / "m.gguf", course_tokenizer,
                           chat_template=chat_jinja("llama2"))
    assert load_any(path).chat_template == "llama2"
    out = tmp_path / "tuned"
    assert main(["sft", "--init", str(path), "--data", str(data[0]), "--out", str(out), *TRAIN]) == 0
    info = json.loads((out / "run.json").read_text())["info"]
    assert info["chat_template"] == "llama2" and info["init"] == str(path)  # the file's own, by default
    tuned = load_any(out)
    assert tuned.chat_template == "llama2" and tuned.tokenizer.encode("mèo") == course_tokenizer.encode("mèo")
    capsys.readouterr()
    assert main(["generate", "--model", str(out), "--instruction", "Name a colour.", "--max-new-tokens", "4"]) == 0
