"""A Hydra callback (conf/hydra/default.yaml) that tells config errors from failed runs."""

from __future__ import annotations

from hydra.experimental.callback import Callback


class HydraStarted(Callback):
    """Hydra callback: marks that the config composed and a run or multirun began, so an exit 1
    from Hydra before it is a config error (exit 2), and one after it a failed run (exit 1)."""

    started = False

    def on_run_start(self, config, **kwargs) -> None:  # noqa: ANN001 - Hydra's signature
        HydraStarted.started = True

    def on_multirun_start(self, config, **kwargs) -> None:  # noqa: ANN001
        HydraStarted.started = True
