"""Shared torch pieces: tokenising instruction examples, batching, the training loop, perplexity."""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from naviyam.llm.prompts import InstructionExample

IGNORE = -100


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None: leave as is). On a small, shared CPU one thread is
    steadier than two: the ops of a tiny model are too small to split, and a second thread spin-
    waits whenever another process holds a core (5x slower under load, measured). A fixed count
    also keeps float reductions, hence trained weights, the same from machine to machine."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]   # IGNORE on the prompt: only the answer is learnt and scored
    task: str = "nlg"

    @property
    def n_target(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def tokenize(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` with special-token lookalikes split into plain text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def encode(tokenizer, example: InstructionExample, max_length: int) -> Encoded | None:
    """Prompt and answer tokenised apart (as at inference, where the prompt is tokenised alone),
    the answer closed with EOS; None when the prompt alone does not fit."""
    prompt = tokenize(tokenizer, example.prompt)
    answer = tokenize(tokenizer, example.output) + [tokenizer.eos_token_id]
    room = max_length - len(prompt)
    if room < 8:
        return None
    answer = answer[:room]
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer, example.task)


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batches(data: Sequence[Encoded], batch_size: int, rng: random.Random | None = None) -> list[list[Encoded]]:
    """Length-bucketed batches (little padding), in random order when ``rng`` is given."""
    order = sorted(range(len(data)), key=lambda i: len(data[i].input_ids))
    groups = [[data[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    return groups


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def token_nll(model, batch: dict[str, torch.Tensor]) -> tuple[float, int]:
    """Summed negative log-likelihood of the labelled tokens, and their count."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                            ignore_index=IGNORE, reduction="sum")
    return float(nll), int((labels != IGNORE).sum())


@torch.no_grad()
def perplexity(model, data: Sequence[Encoded], pad_id: int, batch_size: int = 8) -> float:
    """exp(mean NLL per answer token) over ``data``; the model is put in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for group in batches(data, batch_size):
        nll, n = token_nll(model, _to(collate(group, pad_id), device))
        total += nll
        count += n
    model.train(was_training)
    return math.exp(total / max(count, 1))


def linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.05, (total - step) / max(total - warmup, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_steps(
    model,
    groups: Sequence[Sequence[Encoded]],
    pad_id: int,
    learning_rate: float,
    grad_accum: int = 1,
    warmup: int = 0,
    desc: str = "train",
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """One pass over ``groups`` (already in training order) with AdamW; returns the step losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    n_updates = max(1, math.ceil(len(groups) / grad_accum))
    scheduler = linear_schedule(optimizer, warmup, n_updates)
    device = next(model.parameters()).device
    model.train()
    losses: list[float] = []
    running = 0.0
    bar = tqdm(total=n_updates, desc=desc, unit="step", leave=False, mininterval=1.0)
    for i, group in enumerate(groups):
        batch = _to(collate(group, pad_id), device)
        loss = model(**batch).loss / grad_accum
        loss.backward()
        running += loss.item()
        if (i + 1) % grad_accum == 0 or i + 1 == len(groups):
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(running)
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
            if on_step:
                on_step(len(losses), running)
            running = 0.0
    bar.close()
    model.eval()
    return losses
