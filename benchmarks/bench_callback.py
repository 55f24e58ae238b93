"""Overhead of the audit callback on a TRL reward-model run, and DP-SGD's own cost beside it.

For the tiny (~150k) and small (~3.4M parameter) local models: the same ``RewardTrainer`` run
with and without ``AuditCallback`` (events into a real SQLite log through ``LogSink``, the log's
loop in its own thread as in the worker), repetitions interleaved so that drift on a shared
machine hits both alike; then ``train()`` without and with DP (noise multiplier 1). Wall time
of ``trainer.train()`` / ``train()`` only (imports, model build and dataset tokenisation are
outside the timed part).

    .venv/bin/python benchmarks/bench_callback.py [--reps 3] [--pairs 512] [--sizes tiny,small]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _log_in_thread(home: Path):  # type: ignore[no-untyped-def]
    from ledger._internal.store import Store
    from ledger.log import Log
    from ledger.note import Signer

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def make() -> Log:
        store = Store(f"sqlite+aiosqlite:///{home / 'bench.db'}")
        await store.migrate()
        return Log(store, Signer.generate("bench.example/log"), interval=0.5)

    return loop, asyncio.run_coroutine_threadsafe(make(), loop).result()


def _reward_run(model: Path, data, out: Path, audit=None, batch: int = 16) -> float:  # type: ignore[no-untyped-def]
    from transformers import PrinterCallback
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=1,
                        logging_steps=1, save_strategy="steps", save_steps=10**9, report_to=[], bf16=False,
                        use_cpu=True, activation_checkpointing=False, disable_tqdm=True, seed=0)
    trainer = RewardTrainer(model=str(model), args=args, train_dataset=data)
    trainer.remove_callback(PrinterCallback)
    if audit is not None:
        trainer.add_callback(audit)
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--sizes", default="tiny,small")
    opts = parser.parse_args()

    from datasets import Dataset
    from transformers.utils import logging as hf_logging

    from trainers.callback import AuditCallback
    from trainers.sinks import LogSink, MemorySink
    from trainers.spec import TrainingSpec
    from trainers.tiny import build_tiny_model, synthetic_pairs
    from trainers.training import PreferencePair, train

    hf_logging.set_verbosity_error()
    records = synthetic_pairs(opts.pairs, annotators=4)
    data = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in records])
    pairs = [PreferencePair(r["prompt"], r["chosen"], r["rejected"]) for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        loop, log = _log_in_thread(home)
        print(f"{opts.pairs} pairs, batch 16, 1 epoch ({-(-opts.pairs // 16)} steps), logging every step, "
              f"{opts.reps} interleaved repetitions; median wall seconds")
        print(f"{'model':<6} {'TRL':>7} {'TRL+audit':>10} {'overhead':>9} {'train()':>8} {'train()+DP':>11} "
              f"{'DP cost':>8}")
        for size in opts.sizes.split(","):
            model = build_tiny_model(home / size, size)
            _reward_run(model, data, home / "warm")  # first-run costs (imports, kernels) off the clock
            plain, audited, nodp, dp = [], [], [], []
            for rep in range(opts.reps):
                plain.append(_reward_run(model, data, home / f"p{size}{rep}"))
                sink = LogSink(log, loop)
                audited.append(_reward_run(model, data, home / f"a{size}{rep}",
                                           AuditCallback(sink, run=f"run_bench{size}{rep}")))
                for sigma, times in ((None, nodp), (1.0, dp)):
                    spec = TrainingSpec.from_dict({
                        "kind": "reward_model", "base_model": str(model), "dataset": "ds_bench",
                        "learning_rate": 1e-3, "batch_size": 16,
                        "dp": {"noise_multiplier": sigma} if sigma else None})
                    start = time.perf_counter()
                    train(spec, pairs, home / f"t{size}{rep}{sigma}",
                          audit=AuditCallback(MemorySink(), run="run_b"))
                    times.append(time.perf_counter() - start)
            p, a = statistics.median(plain), statistics.median(audited)
            n, d = statistics.median(nodp), statistics.median(dp)
            print(f"{size:<6} {p:7.2f} {a:10.2f} {100 * (a - p) / p:8.1f}% {n:8.2f} {d:11.2f} {d / n:7.1f}x",
                  flush=True)
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
