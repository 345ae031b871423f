"""ONNX export of the Wide&Deep ranker, so serving needs onnxruntime only (no torch)."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from naviyam.ranking.features import INPUT_NAMES, OUTPUT_NAME
from naviyam.ranking.model import WideAndDeep

log = logging.getLogger(__name__)

OPSET = 17
BATCH_AXIS = "batch"


def example_inputs(model: WideAndDeep, batch: int = 2) -> tuple[torch.Tensor, ...]:
    cfg = model.config
    return (
        torch.zeros(batch, cfg.wide_dim, dtype=torch.float32),
        torch.zeros(batch, dtype=torch.int64),
        torch.zeros(batch, dtype=torch.int64),
        torch.zeros(batch, dtype=torch.int64),
    )


def export_onnx(model: WideAndDeep, path: Path, opset: int = OPSET) -> Path:
    """Writes ``path`` with inputs wide/user_idx/shop_idx/category_idx and output ``score`` [N]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()  # dropout off: the exported graph is the inference graph
    try:
        # The TorchScript exporter (dynamo=False) writes one self-contained file with a
        # dynamic batch axis; the model is small, so no external-data side files are needed.
        # It is deprecated in favour of the dynamo exporter, hence the silenced warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model, example_inputs(model), str(path),
                input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                dynamic_axes={**{name: {0: BATCH_AXIS} for name in INPUT_NAMES}, OUTPUT_NAME: {0: BATCH_AXIS}},
                opset_version=opset, dynamo=False, do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    log.info("exported ranker to %s (opset %d)", path, opset)
    return path
