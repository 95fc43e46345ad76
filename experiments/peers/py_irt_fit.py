"""Fit py-irt's 2PL or "4PL" model to 0/1 answers and write its parameters as JSON (a peer for issue 25).

Runs inside its own virtual environment (py-irt 0.7 needs pandas < 3, which this package does not use; see
:func:`experiments.peers.irt.py_irt_python`), so it reads and writes plain files only:

    python py_irt_fit.py ANSWERS.npz OUT.json --model 2pl --epochs 2000 --lr 0.1 --seed 0

``ANSWERS.npz`` holds ``subject`` and ``item`` (int codes), ``correct`` (0/1), ``subject_ids`` and ``item_ids``
(str). ``OUT.json``: ``{"model", "epochs", "lr", "seed", "seconds", "ability": {subject id: θ}, "items": {item id:
[discrimination, difficulty, ceiling]}}``; py-irt's "4pl" is ``ceiling · σ(a (θ − b))`` (no guessing floor), its
2pl the same with ceiling 1. The fit is py-irt's own (``IrtModelTrainer``, hierarchical priors, SVI).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("answers")
    parser.add_argument("out")
    parser.add_argument("--model", choices=("2pl", "4pl"), default="2pl")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pyro
    from ordered_set import OrderedSet
    from py_irt.config import IrtConfig
    from py_irt.dataset import Dataset
    from py_irt.training import IrtModelTrainer

    data = np.load(args.answers, allow_pickle=False)
    subject_ids, item_ids = [str(s) for s in data["subject_ids"]], [str(s) for s in data["item_ids"]]
    dataset = Dataset(
        item_ids=OrderedSet(item_ids), subject_ids=OrderedSet(subject_ids),
        item_id_to_ix={name: ix for ix, name in enumerate(item_ids)}, ix_to_item_id=dict(enumerate(item_ids)),
        subject_id_to_ix={name: ix for ix, name in enumerate(subject_ids)},
        ix_to_subject_id=dict(enumerate(subject_ids)),
        observation_subjects=data["subject"].astype(int).tolist(), observation_items=data["item"].astype(int).tolist(),
        observations=data["correct"].astype(float).tolist(), training_example=[True] * len(data["correct"]))
    pyro.set_rng_seed(args.seed)
    config = IrtConfig(model_type=args.model, epochs=args.epochs, lr=args.lr, seed=args.seed,
                       log_every=max(args.epochs, 1))
    started = time.perf_counter()
    trainer = IrtModelTrainer(data_path=None, config=config, dataset=dataset, verbose=False)
    trainer.train(epochs=args.epochs)
    exported = trainer.irt_model.export()
    ceiling = exported.get("lambdas", [1.0] * len(item_ids))
    result = {"model": args.model, "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
              "seconds": time.perf_counter() - started,
              "ability": dict(zip(subject_ids, exported["ability"])),
              "items": {name: [disc, diff, lam] for name, disc, diff, lam in
                        zip(item_ids, exported["disc"], exported["diff"], ceiling)}}
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
