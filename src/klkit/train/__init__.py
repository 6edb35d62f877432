"""Training loops whose every KL comes from klkit: ``vae``, ``ppo``, ``trpo``.

Each module has a ``Config`` dataclass, ``train(cfg, run_dir)`` and ``evaluate(run_dir)``;
a run directory holds ``config.json`` (with an ``"algorithm"`` field), ``metrics.jsonl``
and atomically written checkpoints. Import the submodule you need (they pull in torch).
"""
