"""Anchor: fine-tune the MiniLM-L6 checkpoint for extractive question answering (SQuAD v1.1 format) with Hugging
Face transformers + PyTorch on the CPU, so tfpipe's EM/F1 and speed can be put side by side with the standard
stack (same data, same hyper-parameters, same machine). It does not import tfpipe: it runs in its own venv.

Install it in its own virtual environment (PyTorch 2.13.0's CPU wheel is on this machine's disk; Python 3.11,
as the wheel is cp311):
    python3.11 -m venv /tmp/hf-anchor && /tmp/hf-anchor/bin/pip install \\
        /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl "transformers>=5,<6" safetensors
Run from the project root (train/dev files from benchmarks/make_squad_conll.py, say):
    /tmp/hf-anchor/bin/python benchmarks/hf_torch_squad.py --train /tmp/sq/train.json --dev /tmp/sq/dev.json \\
        --output /tmp/sq/hf_predictions.json
Score the predictions with tfpipe's official-rules scorer (in tfpipe's venv):
    .venv/bin/python -c "import json, sys; from tfpipe.text.readers.base import ErrorLog; \\
        from tfpipe.text.readers.squad import read_squad; from tfpipe.training.squad_metrics import squad_scores; \\
        print(squad_scores(json.load(open(sys.argv[1])), read_squad(sys.argv[2], ErrorLog())))" PRED DEV

The recipe is the one of transformers' `examples/pytorch/question-answering/run_qa.py`: a fast tokenizer,
question then context with `truncation="only_second"`, `return_overflowing_tokens` + `stride` (windows over long
contexts), `return_offsets_mapping`; a training window whose context part does not hold the whole first answer
points at [CLS]; at prediction, the 20 best start and 20 best end logits of every window are paired (end not
before start, at most 30 tokens, both inside the context), the best start + end sum over the example's windows
wins, and its text is sliced from the context by the character offsets. Questions longer than
`--max-query-length` tokens are cut (as BERT's run_squad.py does). Batches are padded to their longest window.
Optimizer as the HF Trainer's: AdamW (eps 1e-8, weight decay 0.01 except biases and LayerNorm weights), gradient
norm clipped at 1.0, linear warmup over the first 10% of the steps, then linear decay to 0; seeded shuffling.

Prints one JSON line: examples (questions) and windows, train examples/s and windows/s (the training loop only),
eval examples/s (forward passes and answer extraction), and the seconds of each stage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network: the checkpoint is local
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup  # noqa: E402

CHECKPOINT = "/work/shared/checkpoints/minilm-l6-h384-uncased"
N_BEST = 20
MAX_ANSWER_LENGTH = 30


def load_squad(path: str) -> list[dict[str, Any]]:
    """Flat questions `{id, question, context, answers: [{"text", "answer_start"}]}` from a SQuAD v1.1 JSON file
    (or JSON Lines in the Hugging Face layout)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "data" in doc:
        return [{"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                 "answers": qa.get("answers", [])}
                for article in doc["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    examples = []
    for line in text.splitlines():
        if line.strip():
            obj = json.loads(line)
            answers = obj.get("answers") or {"text": [], "answer_start": []}
            if isinstance(answers, dict):
                answers = [{"text": t, "answer_start": s} for t, s in zip(answers["text"], answers["answer_start"])]
            examples.append({"id": obj["id"], "question": obj["question"], "context": obj["context"],
                             "answers": answers})
    return examples


def cut_questions(tokenizer, questions: list[str], max_query_length: int) -> list[str]:
    """Each question stripped of leading spaces (as run_qa.py does) and cut after `max_query_length` tokens."""
    questions = [q.lstrip() for q in questions]
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    return [q if len(offsets) <= max_query_length else q[:offsets[max_query_length - 1][1]]
            for q, offsets in zip(questions, encoded["offset_mapping"])]


def windows(tokenizer, examples: list[dict], args: argparse.Namespace, train: bool) -> dict[str, list]:
    """The tokenized windows of `examples`: input ids, token type ids, attention masks, and for training the
    answer's start/end token (the [CLS] index when a window does not hold it), for prediction the window's
    example and the character offsets of its context tokens (None elsewhere)."""
    questions = cut_questions(tokenizer, [e["question"] for e in examples], args.max_query_length)
    encoded = tokenizer(questions, [e["context"] for e in examples], truncation="only_second",
                        max_length=args.max_seq_length, stride=args.doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    features: dict[str, list] = {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
                                 "attention_mask": encoded["attention_mask"]}
    if train:
        features["start_positions"], features["end_positions"] = [], []
    else:
        features["example_index"], features["offset_mapping"] = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        example = examples[encoded["overflow_to_sample_mapping"][i]]
        sequence_ids = encoded.sequence_ids(i)
        if not train:
            features["example_index"].append(encoded["overflow_to_sample_mapping"][i])
            features["offset_mapping"].append([o if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)])
            continue
        cls_index = encoded["input_ids"][i].index(tokenizer.cls_token_id)
        start = end = cls_index
        if example["answers"]:
            answer = example["answers"][0]
            start_char = answer["answer_start"]
            end_char = start_char + len(answer["text"])
            first = sequence_ids.index(1)
            last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                while first < len(offsets) and offsets[first][0] <= start_char:
                    first += 1
                while offsets[last][1] >= end_char:
                    last -= 1
                start, end = first - 1, last + 1
        features["start_positions"].append(start)
        features["end_positions"].append(end)
    return features


def batch(tokenizer, features: dict[str, list], index: list[int], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The windows at `index`, padded to the longest of them."""
    padded = tokenizer.pad({key: [features[key][i] for i in index] for key in
                            ("input_ids", "token_type_ids", "attention_mask")}, return_tensors="pt")
    for key in keys:
        padded[key] = torch.tensor([features[key][i] for i in index])
    return dict(padded)


def train(model, tokenizer, features: dict[str, list], args: argparse.Namespace) -> tuple[float, float]:
    """Fine-tunes `model` on the windows; returns (seconds, mean loss of the last 10 steps)."""
    n = len(features["input_ids"])
    steps = args.epochs * math.ceil(n / args.batch_size)
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    groups = [
        {"params": [p for name, p in model.named_parameters() if not name.endswith(no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for name, p in model.named_parameters() if name.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, eps=1e-8)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(0.1 * steps), steps)
    losses: list[float] = []
    model.train()
    started = time.perf_counter()
    for epoch in range(args.epochs):
        order = np.random.RandomState(args.seed + epoch).permutation(n).tolist()
        for i in range(0, n, args.batch_size):
            inputs = batch(tokenizer, features, order[i:i + args.batch_size], ("start_positions", "end_positions"))
            loss = model(**inputs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    return time.perf_counter() - started, float(np.mean(losses[-10:])) if losses else float("nan")


def predict(model, tokenizer, examples: list[dict], features: dict[str, list], batch_size: int) -> dict[str, str]:
    """`{id: answer text}`: the best valid span over each example's windows (n-best 20, at most 30 tokens)."""
    model.eval()
    best: dict[int, tuple[float, str]] = {}
    n = len(features["input_ids"])
    with torch.no_grad():
        for i in range(0, n, batch_size):
            index = list(range(i, min(n, i + batch_size)))
            out = model(**batch(tokenizer, features, index, ()))
            for row, f in enumerate(index):
                start_logits, end_logits = out.start_logits[row].numpy(), out.end_logits[row].numpy()
                offsets = features["offset_mapping"][f]
                length = len(offsets)  # the window's own tokens, not the batch padding
                starts = np.argsort(start_logits[:length])[-1:-N_BEST - 1:-1]
                ends = np.argsort(end_logits[:length])[-1:-N_BEST - 1:-1]
                example = features["example_index"][f]
                for s in starts:
                    for e in ends:
                        if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > MAX_ANSWER_LENGTH:
                            continue
                        score = float(start_logits[s] + end_logits[e])
                        if example not in best or score > best[example][0]:
                            text = examples[example]["context"][offsets[s][0]:offsets[e][1]]
                            best[example] = (score, text)
    return {e["id"]: best.get(k, (0.0, ""))[1] for k, e in enumerate(examples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="SQuAD v1.1 JSON (or HF JSON Lines) to fine-tune on")
    parser.add_argument("--dev", required=True, help="SQuAD v1.1 JSON (or HF JSON Lines) to predict on")
    parser.add_argument("--output", required=True, help="predictions.json to write: {id: answer text}")
    parser.add_argument("--checkpoint", default=CHECKPOINT, help="a local HF checkpoint folder")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-train", type=int, default=None, help="the first N training questions only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)  # before loading: the new QA head's initialization is seeded too
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint, local_files_only=True)
    if not tokenizer.is_fast or tokenizer.padding_side != "right":
        raise SystemExit("the recipe needs a fast tokenizer that pads on the right (offsets, question first)")
    model = AutoModelForQuestionAnswering.from_pretrained(args.checkpoint, local_files_only=True)
    train_examples = load_squad(args.train)[:args.max_train]
    dev_examples = load_squad(args.dev)
    started = time.perf_counter()
    train_features = windows(tokenizer, train_examples, args, train=True)
    dev_features = windows(tokenizer, dev_examples, args, train=False)
    prepare_s = time.perf_counter() - started
    train_s, final_loss = train(model, tokenizer, train_features, args)
    started = time.perf_counter()
    predictions = predict(model, tokenizer, dev_examples, dev_features, args.eval_batch_size)
    eval_s = time.perf_counter() - started
    Path(args.output).write_text(json.dumps(predictions, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    train_windows = len(train_features["input_ids"])
    print(json.dumps({
        "anchor": "hf-transformers-pytorch-squad", "train_examples": len(train_examples),
        "train_windows": train_windows, "dev_examples": len(dev_examples),
        "dev_windows": len(dev_features["input_ids"]), "epochs": args.epochs,
        "train_examples_per_s": round(args.epochs * len(train_examples) / train_s, 2),
        "train_windows_per_s": round(args.epochs * train_windows / train_s, 2),
        "eval_examples_per_s": round(len(dev_examples) / eval_s, 2), "final_loss": round(final_loss, 4),
        "prepare_s": round(prepare_s, 2), "train_s": round(train_s, 2), "eval_s": round(eval_s, 2),
        "max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride, "threads": args.threads,
        "torch": torch.__version__, "transformers": transformers.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
