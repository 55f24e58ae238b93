"""Overhead of the audit callback on a TRL reward-model run, and DP-SGD's own cost beside it.

For the tiny (~150k) and small (~3.4M parameter) local models: the same ``RewardTrainer`` run
with and without ``AuditCallback`` (events into a real SQLite log through ``LogSink``, the log's
loop in its own thread as in the worker), repetitions interleaved so that drift on a shared
machine hits both alike, and the time spent inside the callback's own hooks (immune to that
noise); then ``train()`` without and with DP (noise multiplier 1). Wall time of
``trainer.train()`` / ``train()`` only (imports and the model build are outside the timed part;
``train()`` includes TRL's dataset preparation).

    .venv/bin/python benchmarks/bench_callback.py [--reps 5] [--dp-reps 2] [--pairs 512] [--sizes tiny,small]
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

from app.core.database import Database  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _log_in_thread(home: Path):  # type: ignore[no-untyped-def]
    from ledger.log import Log
    from ledger.note import Signer
    from ledger.storage import Store

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def make() -> Log:
        store = Store(f"sqlite+aiosqlite:///{home / 'bench.db'}")
        await Database(store.engine).migrate()
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


def _timed(callback):  # type: ignore[no-untyped-def]
    """Accumulate the wall time spent inside the callback's hooks (the training thread's cost)."""
    callback.hook_seconds = 0.0
    for name in ("on_train_begin", "on_step_end", "on_log", "on_save", "on_train_end"):
        hook = getattr(callback, name)

        def timed(*args, _hook=hook, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return _hook(*args, **kwargs)
            finally:
                callback.hook_seconds += time.perf_counter() - start

        setattr(callback, name, timed)
    return callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dp-reps", type=int, default=2)
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
        print(f"{opts.pairs} pairs, batch 16, 1 epoch ({-(-opts.pairs // 16)} steps), logging every step; "
              f"{opts.reps} interleaved repetitions, wall seconds as min / median")
        for size in opts.sizes.split(","):
            model = build_tiny_model(home / size, size)
            _reward_run(model, data, home / "warm")  # first-run costs (imports, kernels) off the clock
            plain, audited, hooks = [], [], []
            for rep in range(opts.reps):
                plain.append(_reward_run(model, data, home / f"p{size}{rep}"))
                audit = _timed(AuditCallback(LogSink(log, loop), run=f"run_bench{size}{rep}"))
                audited.append(_reward_run(model, data, home / f"a{size}{rep}", audit))
                hooks.append(audit.hook_seconds / audited[-1])
            p, a = min(plain), min(audited)
            pm, am = statistics.median(plain), statistics.median(audited)
            print(f"{size}: TRL {p:.2f} / {pm:.2f}, TRL + audit {a:.2f} / {am:.2f}: overhead "
                  f"{100 * (a - p) / p:+.1f}% (min) / {100 * (am - pm) / pm:+.1f}% (median); time inside "
                  f"the callback's hooks {100 * statistics.median(hooks):.2f}% of the run", flush=True)
            nodp, dp = [], []
            for rep in range(opts.dp_reps):
                for sigma, times in ((None, nodp), (1.0, dp)):
                    spec = TrainingSpec.from_dict({
                        "kind": "reward_model", "base_model": str(model), "dataset": "ds_bench",
                        "learning_rate": 1e-3, "batch_size": 16,
                        "dp": {"noise_multiplier": sigma} if sigma else None})
                    start = time.perf_counter()
                    train(spec, pairs, home / f"t{size}{rep}{sigma}",
                          audit=AuditCallback(MemorySink(), run="run_b"))
                    times.append(time.perf_counter() - start)
            n, d = min(nodp), min(dp)
            print(f"{size}: train() without DP {n:.2f}, with DP (sigma 1, PRV) {d:.2f}: "
                  f"DP costs {d / n:.1f}x "
                  f"(including TRL's data preparation, ~{n - p:.1f} s, in both)", flush=True)
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
