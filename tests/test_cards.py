"""Model cards are generated from recorded evals: shipped cards are current and their numbers
equal the eval JSON; the generator and `snnzoo card` on a synthetic card folder."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from huggingface_hub import ModelCard

from snnzoo.cli import cli
from snnzoo.zoo import cards, registry

from conftest import NAME, register, tiny_cfg, write_card_inputs

SHIPPED = registry.list_models(pretrained=True)


def recorded_numbers(card_dir: Path) -> list[float]:
    facts = json.loads((card_dir / "card.json").read_text())
    return [json.loads((card_dir / e["file"]).read_text())["accuracy"] for e in facts["evaluations"]
            if e.get("model_index", True)]


def card_numbers(text: str) -> list[float]:
    return [r.metric_value for r in ModelCard(text).data.eval_results]


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_checkpoint_has_a_current_card(model_id):
    card_dir = cards.DEFAULT_CARDS_DIR / model_id
    readme = card_dir / "README.md"
    assert readme.is_file(), f"{readme}: missing; write card.json + eval.json and run `snnzoo card {model_id}`"
    text = readme.read_text()
    assert card_numbers(text) == recorded_numbers(card_dir)
    assert cards.generate_card(model_id) == text, f"{readme}: out of date; run `snnzoo card {model_id}`"


def test_every_card_folder_is_a_shipped_checkpoint():
    folders = sorted(p.name for p in cards.DEFAULT_CARDS_DIR.iterdir() if p.is_dir()) \
        if cards.DEFAULT_CARDS_DIR.is_dir() else []
    assert set(folders) <= set(SHIPPED), "card folders for models without weights in the registry"


@pytest.fixture
def card_dir(tmp_path, monkeypatch):
    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": "ab" * 32, "hf_hub_id": "org/tiny"}))
    d = tmp_path / "cards" / NAME
    write_card_inputs(d, {"model": NAME, "dataset": "nmnist", "split": "test", "n": 1000, "correct": 991,
                          "accuracy": 0.991, "ci95": [0.98297, 0.99526], "per_class": {"0": 1.0, "1": 0.98},
                          "per_class_n": {"0": 98, "1": 113}})
    return d


def test_card_command_writes_checks_and_matches_eval(card_dir):
    run = CliRunner().invoke
    r = run(cards.card_command, [NAME, "--cards-dir", str(card_dir.parent)])
    assert r.exit_code == 0, r.output
    text = (card_dir / "README.md").read_text()
    assert card_numbers(text) == recorded_numbers(card_dir) == [0.991]
    meta = ModelCard(text).data.to_dict()
    assert meta["library_name"] == "snnzoo" and meta["datasets"] == ["nmnist"]
    assert meta["model-index"][0]["results"][0]["dataset"]["name"] == "N-MNIST test"
    for needle in ("99.10 %", "98.30 % – 99.53 %", "n = 1000", "Nothing: random initialisation.", "SGD, 2 epochs",
                   "snnzoo eval tiny_events --dataset nmnist --format json", "- Not a trained model.",
                   "sha256 `" + "ab" * 32 + "`", "24,912 parameters", "| 1 | 113 | 98.00 % |",
                   'create_model("tiny_events", pretrained=True)', 'create_model("hf-hub:org/tiny")'):
        assert needle in text, needle
    assert run(cards.card_command, [NAME, "--cards-dir", str(card_dir.parent), "--check"]).exit_code == 0
    # regenerating reproduces the file byte for byte; a hand edit is caught
    assert cards.generate_card(NAME, card_dir.parent) == text
    (card_dir / "README.md").write_text(text.replace("99.10 %", "99.50 %"))
    r = run(cli, ["card", NAME, "--cards-dir", str(card_dir.parent), "--check"])
    assert r.exit_code == 1 and "README.md: out of date; run `snnzoo card tiny_events`" in r.output
    # a new measurement changes the card's numbers
    result = json.loads((card_dir / "eval.json").read_text())
    (card_dir / "eval.json").write_text(json.dumps({**result, "accuracy": 0.5, "ci95": [0.4, 0.6]}))
    assert card_numbers(cards.generate_card(NAME, card_dir.parent)) == [0.5]


@pytest.mark.parametrize("edit,message", [
    (lambda c, e: c.pop("training_data"), "card.json: missing training_data"),
    (lambda c, e: e.update(accuracy=99.1), "eval.json: accuracy and ci95 must be fractions in [0, 1], got 99.1"),
    (lambda c, e: e.pop("n"), "eval.json: missing n"),
    (lambda c, e: e.update(ci95=0.01), "eval.json: ci95 must be [low, high]"),
    (lambda c, e: e.update(classes=["a", "b"]), "eval.json: its classes differ from tiny_events's"),
    (lambda c, e: c["evaluations"][0].pop("command"), "each evaluation needs a file and the command"),
    (lambda c, e: c.update(model="other"), "card.json: describes other, not tiny_events"),
])
def test_bad_card_inputs_fail_with_the_file_named(card_dir, edit, message):
    facts = json.loads((card_dir / "card.json").read_text())
    result = json.loads((card_dir / "eval.json").read_text())
    edit(facts, result)
    (card_dir / "card.json").write_text(json.dumps(facts))
    (card_dir / "eval.json").write_text(json.dumps(result))
    with pytest.raises(cards.CardError, match=re.escape(message)):
        cards.generate_card(NAME, card_dir.parent)
    r = CliRunner().invoke(cli, ["card", NAME, "--cards-dir", str(card_dir.parent)])
    assert r.exit_code == 1 and r.output.startswith("snnzoo: error: ") and "Traceback" not in r.output


def test_card_needs_published_weights(card_dir, monkeypatch):
    register(monkeypatch, tiny_cfg(None))
    with pytest.raises(cards.CardError, match="tiny_events has no weights"):
        cards.generate_card(NAME, card_dir.parent)


def test_card_shows_the_confusion_png_and_the_hardest_strips(card_dir):
    import numpy as np

    from snnzoo.zoo.training.strips import write_hardest

    assert "Confusion matrix" not in cards.generate_card(NAME, card_dir.parent)  # only when card.json names them
    rng = np.random.default_rng(0)
    rows = write_hardest(card_dir / "hardest", (rng.random((5, 2, 2, 34, 34)) < 0.2).astype(np.uint8),
                         np.array([0, 1, 2, 3, 4]), rng.random((5, 10)), np.arange(100, 105),
                         [str(c) for c in range(10)], 3)
    (card_dir / "cm.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    facts = json.loads((card_dir / "card.json").read_text())
    facts["evaluations"][0].update(confusion_png="cm.png", hardest_dir="hardest",
                                   figures_command="snnzoo eval tiny_events --plot cm.png --hardest 3")
    (card_dir / "card.json").write_text(json.dumps(facts))
    text = cards.generate_card(NAME, card_dir.parent)
    assert "![Confusion matrix on N-MNIST test](cm.png)" in text and "The 3 hardest samples, by lowest margin" in text
    assert "snnzoo eval tiny_events --plot cm.png --hardest 3\n" in text
    for r in rows:
        assert f"![#{r['index']}: true {r['label']}, predicted {r['predicted']}](hardest/{r['png']})" in text
        assert (f"| {r['rank']} | #{r['index']} | {r['label']} | {r['predicted']} | "
                f"{r['scores'][r['label']]:.3f} | {r['scores'][r['predicted']]:.3f} |") in text
    _, evaluations = cards.load_card_inputs(card_dir)
    assert cards.card_files(evaluations) == ["card.json", "eval.json", "cm.png", "hardest/index.json",
                                             *(f"hardest/{r['png']}" for r in rows)]
    (card_dir / "hardest" / rows[1]["png"]).unlink()
    with pytest.raises(cards.CardError, match=f"lists a strip that is missing: {rows[1]['png']}"):
        cards.generate_card(NAME, card_dir.parent)
    (card_dir / "cm.png").unlink()
    with pytest.raises(cards.CardError, match=r"cm.png: missing \(confusion_png\)"):
        cards.generate_card(NAME, card_dir.parent)


def test_card_shows_the_training_curves(card_dir):
    assert "Training curves" not in cards.generate_card(NAME, card_dir.parent)  # only when card.json names them
    facts = json.loads((card_dir / "card.json").read_text())
    (card_dir / "card.json").write_text(json.dumps({**facts, "curves_png": "curves.png"}))
    with pytest.raises(cards.CardError, match=r"curves.png: missing \(curves_png\)"):
        cards.generate_card(NAME, card_dir.parent)
    (card_dir / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    text = cards.generate_card(NAME, card_dir.parent)
    recipe_at, curves_at = text.index("## Training recipe and compute"), text.index("![Training curves](curves.png)")
    assert recipe_at < curves_at < text.index("## How the numbers were measured")
    facts, evaluations = cards.load_card_inputs(card_dir)
    assert cards.card_files(evaluations, facts) == ["card.json", "curves.png", "eval.json"]


def test_a_kfold_estimate_renders_as_one_with_its_folds(tmp_path, monkeypatch):
    """A `kfold-summary` JSON as an evaluation: the card says how it was pooled and lists the folds."""
    from snnzoo.zoo.training.kfold import summarize

    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": "ab" * 32}))
    d = tmp_path / "cards" / NAME
    write_card_inputs(d, summarize([{"fold": f, "k": 2, "n": 50, "correct": c} for f, c in ((0, 49), (1, 47))]))
    text = cards.generate_card(NAME, d.parent)
    assert "Top-1 accuracy 96.00 % on n = 100 samples" in text
    assert "held-out counts pooled over 2 folds" in text and "snnzoo eval`" not in text.split("## How")[1]
    assert "| 0 | 50 | 49 | 98.00 % |\n| 1 | 50 | 47 | 94.00 % |" in text
    assert card_numbers(text) == [0.96]


def test_numbers_of_other_weights_stay_out_of_the_model_index(tmp_path, monkeypatch):
    """An evaluation marked `model_index: false` is in the card's tables, not in the Hub metadata."""
    from snnzoo.zoo.training.kfold import summarize

    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": "ab" * 32}))
    d = tmp_path / "cards" / NAME
    write_card_inputs(d, summarize([{"fold": f, "k": 2, "n": 50, "correct": c} for f, c in ((0, 49), (1, 47))]))
    other = summarize([{"fold": f, "k": 2, "n": 50, "correct": c} for f, c in ((0, 50), (1, 49))])
    (d / "other.json").write_text(json.dumps(other))
    facts = json.loads((d / "card.json").read_text())
    facts["evaluations"].append({**facts["evaluations"][0], "file": "other.json", "model_index": False})
    (d / "card.json").write_text(json.dumps(facts))
    text = cards.generate_card(NAME, d.parent)
    assert card_numbers(text) == [0.96] == recorded_numbers(d)
    assert "| 0 | 50 | 50 | 100.00 % |" in text and "99.00 %" in text


def test_the_neuron_line_names_the_surrogate_the_weights_were_trained_with(card_dir):
    """The Model section gives the config's surrogate (what `create_model` builds, used only when training
    further) and, where the card's recipe trained with another one, that one beside it."""
    line = next(x for x in cards.generate_card(NAME, card_dir.parent).splitlines() if x.startswith("- Neurons:"))
    default = re.search(r"surrogate gradient `(\w+)`", line).group(1)
    assert line.endswith(f"`{default}`")
    facts = json.loads((card_dir / "card.json").read_text())
    for trained, said in ((default, False), ("gauss" if default != "gauss" else "sigmoid", True)):
        (card_dir / "card.json").write_text(json.dumps({**facts, "recipe": {"surrogate": trained}}))
        line = next(x for x in cards.generate_card(NAME, card_dir.parent).splitlines() if x.startswith("- Neurons:"))
        assert (f"these weights were trained with `{trained}`" in line) is said
        assert line.count(f"surrogate gradient `{default}`") == 1
