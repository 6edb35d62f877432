"""The numbers of docs/guide/trl.md, computed on the page's own tiny model (its setup examples are run here)
or read from the tests the page cites; the numbers are read from the sentence."""

from __future__ import annotations

import ast
import doctest
import random
import re

import pytest

from _doc_numbers import ROOT, sentence_numbers
from _markdown_doctest import python_blocks

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")
claim = pytest.mark.doc_claim
DOC = "docs/guide/trl.md"
COUNTS = (
    "each accumulated batch trained on 22 generated tokens (12 and 10) and TRL divided each micro-batch's sum by 28"
)
SETUP = re.compile(r"(from|import|class|def|settings|words|backend|tok|chats)\b")


@pytest.fixture(scope="module")
def page() -> dict:
    """The page's setup (imports, tokenizer, ``gpt2``, ``chats``, ``train``, ``settings``), no training run."""
    namespace: dict = {"__name__": "__page__"}
    parser = doctest.DocTestParser()
    for _, block in python_blocks(ROOT / DOC):
        for example in parser.get_examples(block):
            source = example.source
            if SETUP.match(source) and not re.match(r"\w+ = train\(", source):
                exec(compile(source, DOC, "exec"), namespace)
            if "settings" in namespace:
                return namespace
    pytest.fail(f"{DOC} no longer defines `settings` where this test looks")


@claim(DOC, "and two 2-layer GPT-2s (the student, and a teacher")
def test_page_models_have_that_many_layers(page):
    layers, _ = sentence_numbers(DOC, "and two 2-layer GPT-2s")  # the second number is GPT-2's name
    assert page["gpt2"](0, 0.02).config.n_layer == layers
    assert page["gpt2"](1, 0.3).config.n_layer == layers


def _trl_cases() -> tuple[set[float], dict[str, float]]:
    source = (ROOT / "tests" / "test_integrations_trl.py").read_text(encoding="utf-8")
    betas = re.search(r"^CASES = \[.*for beta in \(([^)]*)\)", source, re.MULTILINE)
    rtol = re.search(r"rtol = ([0-9.e-]+) if dtype == torch\.float32 else ([0-9.e-]+)", source)
    assert betas and rtol, "tests/test_integrations_trl.py changed where this test reads it"
    return {float(b) for b in ast.literal_eval(f"({betas.group(1)},)")}, {
        "float32": float(rtol.group(1)),
        "bf16": float(rtol.group(2)),
    }


@claim(DOC, "(the test suite checks β ∈ {0, 0.5, 1},")
@claim(DOC, "to a relative 1e-5 in float32 and 2e-2 with bf16 weights")
def test_the_suite_checks_those_betas_and_tolerances():
    betas, rtol = _trl_cases()
    assert betas == set(sentence_numbers(DOC, "(the test suite checks β ∈ {0, 0.5, 1},"))
    f32, bf16 = sentence_numbers(DOC, "to a relative 1e-5 in float32 and 2e-2 with bf16 weights")
    assert (rtol["float32"], rtol["bf16"]) == (f32, bf16)


@claim(
    DOC,
    "each accumulated batch trained on 22 generated tokens (12 and 10) and TRL divided each micro-batch's sum by 28",
)
@claim(DOC, "its loss and gradients were 0.79 times the mean")
@pytest.mark.slow
def test_trl_on_policy_divisor_on_the_page_model(page):
    trained, first, second, divisor = sentence_numbers(DOC, COUNTS)
    (ratio,) = sentence_numbers(DOC, "its loss and gradients were 0.79 times the mean")
    setting = re.search(r"\(`lmbda=1`, `max_new_tokens=(\d+)`, two micro-batches of two\)", (ROOT / DOC).read_text())
    assert setting, "the page no longer states the run's settings where this test looks"

    class Recording(page["GKDTrainer"]):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self.seen.append((int(num_items_in_batch), int((inputs["labels"][:, 1:] != -100).sum())))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    random.seed(0)  # as the page's `train`
    args = page["GKDConfig"](**{**page["settings"], "lmbda": 1.0, "max_new_tokens": int(setting.group(1))})
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 2)
    run = Recording(
        model=page["gpt2"](0, 0.02),
        teacher_model=page["gpt2"](1, 0.3),
        args=args,
        train_dataset=page["chats"],
        processing_class=page["tok"],
    )
    run.remove_callback(page["PrinterCallback"])
    run.seen = []
    run.train()
    # every accumulated batch: TRL's divisor, and the generated targets each micro-batch trained on
    batches = [run.seen[i : i + 2] for i in range(0, len(run.seen), 2)]
    assert all([n for n, _ in b] == [divisor, divisor] for b in batches)
    assert all([k for _, k in b] == [first, second] for b in batches)
    assert first + second == trained
    assert round(trained / divisor, 2) == ratio
    # the divisor is the dataset's completion tokens (answer and <eos>) of the four examples, counted independently
    tok = page["tok"]
    answers = [m[1]["content"] for m in page["chats"]["messages"]]
    assert sum(len(tok(a + " <eos>")["input_ids"]) for a in answers) == divisor
