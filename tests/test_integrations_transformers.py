"""A plain ``transformers.Trainer`` that distils with klkit, on a tiny GPT-2 built offline: a user-written
``compute_loss`` around ``divergence_loss``, and ``KLKitDistillationTrainer`` (its accumulated loss
against a float64 reference on the same batches, its fused mode)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import PrinterCallback, Trainer, TrainingArguments  # noqa: E402

from _tiny_lm import chat_dataset, model, reference, tokenizer  # noqa: E402
from klkit.distill import divergence_loss  # noqa: E402
from klkit.integrations.transformers import DistillationOptions, KLKitDistillationTrainer  # noqa: E402

TOK = tokenizer()


def examples() -> list[dict]:
    """Token ids of each conversation, labels −100 on the prompt (the completion is the target)."""
    rows = []
    for messages in chat_dataset()["messages"]:
        prompt = TOK.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
        full = TOK.apply_chat_template(messages, tokenize=False)
        ids, n_prompt = TOK(full)["input_ids"], len(TOK(prompt)["input_ids"])
        rows.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    return rows


def collate(rows: list[dict]) -> dict:
    """Right-padded batch: pad tokens, attention mask 0 and labels −100 after each row's end."""
    width = max(len(r["input_ids"]) for r in rows)
    pad = [width - len(r["input_ids"]) for r in rows]
    return {
        "input_ids": torch.tensor([r["input_ids"] + [TOK.pad_token_id] * p for r, p in zip(rows, pad, strict=True)]),
        "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * p for r, p in zip(rows, pad, strict=True)]),
        "labels": torch.tensor([r["labels"] + [-100] * p for r, p in zip(rows, pad, strict=True)]),
    }


def arguments(tmp_path, **overrides) -> TrainingArguments:
    options = {
        "output_dir": str(tmp_path),
        "per_device_train_batch_size": 4,
        "max_steps": 8,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
    }
    return TrainingArguments(**{**options, **overrides})


def losses(run) -> list[float]:
    run.remove_callback(PrinterCallback)
    run.train()
    return [entry["loss"] for entry in run.state.log_history if "loss" in entry]


class UserDistillation(Trainer):
    """What a user writes: the teacher's logits, the shift, klkit's divergence."""

    def __init__(self, *args, teacher, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        with torch.no_grad():
            teacher = self.teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        loss = divergence_loss(
            outputs.logits[:, :-1],
            teacher[:, :-1],
            divergence="reverse_kl",
            temperature=2.0,
            labels=inputs["labels"][:, 1:],
            num_items_in_batch=num_items_in_batch,
        )
        return (loss, outputs) if return_outputs else loss


def test_plain_trainer_with_divergence_loss_brings_the_student_to_the_teacher(tmp_path):
    teacher = model(TOK, 1, scale=0.3)
    run = UserDistillation(
        model=model(TOK, 0), args=arguments(tmp_path), train_dataset=examples()[:4], data_collator=collate,
        teacher=teacher,
    )  # fmt: skip
    seen = losses(run)
    assert len(seen) == 8
    assert seen[-1] < 0.7 * seen[0] and min(seen[4:]) < min(seen[:4])


class Capturing(KLKitDistillationTrainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.state.global_step == 0:
            self.first_step.append({k: v.clone() for k, v in inputs.items()})
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


@pytest.mark.parametrize("fused", [False, True], ids=["logits", "fused"])
def test_accumulated_loss_is_the_mean_over_the_accumulated_batch(tmp_path, fused):
    """Two padded micro-batches of different target counts: the first step's loss is the float64 forward
    KL averaged over every target of both (not the mean of the two micro-batches' means); then it falls."""
    student, teacher = model(TOK, 0), model(TOK, 1, scale=0.3)
    initial = copy.deepcopy(student).eval()
    options = DistillationOptions(divergence="forward_kl", temperature=2.0, fused=fused)
    run = Capturing(
        model=student, teacher_model=teacher, args=arguments(tmp_path, per_device_train_batch_size=3,
        gradient_accumulation_steps=2, max_steps=4), train_dataset=examples()[:6], data_collator=collate,
        distillation=options,
    )  # fmt: skip
    run.first_step = []
    seen = losses(run)
    assert len(run.first_step) == 2
    teacher.eval()
    logits = {"s": [], "t": [], "labels": []}
    with torch.no_grad():
        for batch in run.first_step:
            kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            logits["s"].append(initial(**kwargs).logits[:, :-1].flatten(0, 1))
            logits["t"].append(teacher(**kwargs).logits[:, :-1].flatten(0, 1))
            logits["labels"].append(batch["labels"][:, 1:].flatten())
    counts = [int((x != -100).sum()) for x in logits["labels"]]
    assert counts[0] != counts[1]  # so a mean of means would differ
    expected = reference(*(torch.cat(v) for v in logits.values()), "forward_kl", temperature=2.0)
    assert seen[0] == pytest.approx(expected, rel=1e-5)
    assert seen[-1] < seen[0]


def test_import_klkit_never_imports_the_hf_stack():
    import subprocess
    import sys

    code = (
        "import sys, klkit, klkit.distill, klkit.integrations; "
        "print(sorted(m for m in ('transformers', 'trl', 'tokenizers', 'datasets') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
