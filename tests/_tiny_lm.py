"""A tiny chat language model built offline: a word-level tokenizer trained in memory with `tokenizers`,
a chat template, GPT-2 students and teachers of a few thousand weights, a chat dataset with prompts and
completions of different lengths (so batches are padded), and float64 reference divergences."""

from __future__ import annotations

import torch

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "birds sing at dawn",
    "rain falls on the roof",
    "what does the cat do",
    "where did the dog run",
    "when do birds sing",
    "what falls on the roof",
    "tell me about the cat please",
    "why",
]
SPECIAL = ["<pad>", "<unk>", "<eos>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|> ' + m['content'] + "
    "(' <eos> ' if m['role'] == 'assistant' else ' ') }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


def tokenizer():
    """A ``PreTrainedTokenizerFast`` over the words of SENTENCES, with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model(tok, seed: int, *, scale: float = 0.02, vocab: int | None = None, dtype=torch.float32):
    """A 2-layer GPT-2 (n_embd 32) with weights drawn at ``seed`` (``scale``: the init's standard deviation)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        n_positions=64,
        vocab_size=vocab or len(tok),
        initializer_range=scale,
        resid_pdrop=0.0,  # no dropout: a step's loss is a function of the weights and the batch
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(config).to(dtype)


def chat_dataset():
    """Eight conversations; the completions have 1 to 6 words and the prompts 1 to 5."""
    from datasets import Dataset

    questions, answers = SENTENCES[4:], SENTENCES[:4] + SENTENCES[:2]
    rows = []
    for i, (q, a) in enumerate(zip(questions + questions[:2], answers + answers[:2], strict=True)):
        words = a.split()
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": " ".join(words[: 1 + i % len(words)])},
                ]
            }
        )
    return Dataset.from_list(rows)


def reference(
    student_logits,
    teacher_logits,
    labels,
    divergence: str,
    *,
    temperature=1.0,
    beta=0.5,
    skew=0.1,
    alpha=None,
    top_k=None,
) -> float:
    """The mean over targets (labels != -100) of D(teacher, student) in float64, from the formulas."""
    keep = labels != -100
    s = torch.log_softmax(student_logits.double()[keep] / temperature, -1)
    t = torch.log_softmax(teacher_logits.double()[keep] / temperature, -1)
    if top_k is not None:  # collapse both onto the teacher's top k tokens and one tail bucket
        idx = t.topk(top_k, -1).indices

        def collapse(x):
            head = x.gather(-1, idx)
            return torch.cat([head, torch.log1p(-head.exp().sum(-1, keepdim=True))], -1)

        s, t = collapse(s), collapse(t)
    p, q = t.exp(), s.exp()

    def kl(a, log_a, log_b):
        return (a * (log_a - log_b)).sum(-1)

    if divergence == "forward_kl":
        d = kl(p, t, s)
    elif divergence == "reverse_kl":
        d = kl(q, s, t)
    elif divergence in ("jsd", "jsd_continuous"):
        m = torch.log((1 - beta) * q + beta * p)
        d = beta * kl(p, t, m) + (1 - beta) * kl(q, s, m)
        if divergence == "jsd_continuous":
            d = d / (beta * (1 - beta))
    elif divergence == "skew_forward_kl":
        d = kl(p, t, torch.log(skew * p + (1 - skew) * q))
    elif divergence == "skew_reverse_kl":
        d = kl(q, s, torch.log(skew * q + (1 - skew) * p))
    elif divergence == "tvd":
        d = 0.5 * (p - q).abs().sum(-1)
    elif divergence == "alpha_beta":  # ABKD (Cichocki's α-β divergence), α, β, α + β all nonzero
        a, b = alpha, beta
        d = -(p**a * q**b - a / (a + b) * p ** (a + b) - b / (a + b) * q ** (a + b)).sum(-1) / (a * b)
    else:
        raise ValueError(divergence)
    return float(d.mean())
