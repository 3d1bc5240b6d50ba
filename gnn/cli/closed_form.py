"""``python -m gnn.train --model gfcf`` (or bspm, itemknn): a closed-form model fitted once and
evaluated like a trained one (gnn/training/closed_form.py), with the flags that apply to a run
without training; ``--fit-options JSON`` passes the model's own hyperparameters."""
from __future__ import annotations

import json

import torch

# The flags (TrainConfig fields) a closed-form run takes; any other one given is refused.
APPLIES = {"model", "dataset", "data_root", "split", "min_rating", "seed", "ks", "json",
           "save_model", "threads", "on_bad_line", "device", "progress"}


def run(args, given: dict, refuse) -> int:
    """Fit, evaluate, print, write the summary / model file; ``given``: the fields set by
    flags; ``refuse(message)``: the CLI's one-line error."""
    from gnn.data import DatasetFormatError, DatasetNotFoundError, DownloadError, load_dataset
    from gnn.model_io import save_model
    from gnn.training import write_json
    from gnn.training.closed_form import fit_closed_form, split_for

    extra = sorted(set(given) - APPLIES)
    if extra:
        flags = ", ".join("--" + f.replace("_", "-") for f in extra)
        return refuse(f"{flags} do{'es' * (len(extra) == 1)} not apply to {args.model}, a "
                      f"closed-form model (fitted once, no training)")
    if args.device not in ("auto", "cpu"):
        return refuse(f"{args.model} runs on the CPU; --device {args.device} is not available")
    try:
        options = json.loads(args.fit_options) if args.fit_options else {}
        if not isinstance(options, dict):
            raise ValueError(f"--fit-options must be a JSON object, but got {args.fit_options!r}")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        ds = load_dataset(args.dataset, args.data_root, split=split_for(args.dataset, args.split),
                          min_rating=args.min_rating, seed=args.seed,
                          on_bad_line="skip" if args.skip_bad_lines else "error")
        ks = sorted(set(args.k) | {20})
        model, summary = fit_closed_form(args.model, options, ds, ks)
    except json.JSONDecodeError as exc:
        return refuse(f"--fit-options is not JSON: {exc}")
    except (DatasetFormatError, DatasetNotFoundError, DownloadError, ValueError,
            FileNotFoundError) as exc:
        return refuse(exc)
    shown = "  ".join(f"{k}={summary[k]:.4f}" for k in
                      ("recall@20", "precision@20", "ndcg@20", "hit@20"))
    print(f"test ({summary['protocol']} protocol): {shown}  [fit {summary['fit_seconds']:.1f} s, "
          f"evaluation {summary['eval_seconds']:.1f} s]")
    if args.json:
        write_json(summary, args.json)
    if args.save_model:
        save_model(model, args.save_model, dataset=ds)
        print(f"model saved to {args.save_model}")
    return 0
