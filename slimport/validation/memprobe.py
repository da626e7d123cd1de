"""Child process for :func:`slimport.validation.latency.measure_peak_memory` (prints one JSON line)."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def _status_mb(field: str) -> float:
    """A field of /proc/self/status in MB (VmHWM is this process's peak; ru_maxrss is not reset by
    exec on Linux and can report the parent's peak instead)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)


def _decoder(argv: list[str]) -> dict[str, float]:
    """``--decoder RUNNER MODEL THREADS PROMPT.npz NEW_TOKENS``: prefill and greedy generation."""
    spec, model, threads, npz, new_tokens = argv
    import numpy as np

    from slimport.validation.generation import greedy
    from slimport.validation.runners import load_runner_class

    prompt = [int(t) for t in np.load(npz)["prompt"]]
    baseline = _status_mb("VmRSS")
    greedy(load_runner_class(spec)(Path(model), int(threads)), prompt, int(new_tokens))
    peak = _status_mb("VmHWM")
    return {"peak_rss_mb": peak, "baseline_rss_mb": baseline, "model_rss_mb": peak - baseline}


def main(argv: list[str]) -> int:
    """``memprobe FORMAT MODEL THREADS FEEDS.npz RUNS``; FORMAT may instead name a runner class as
    ``module:Class`` (e.g. the platform runtime's, see ``NATIVE_RUNNERS``). ``memprobe --decoder ...``
    measures a decoder's generation instead (:func:`_decoder`)."""
    if argv and argv[0] == "--decoder":
        print(json.dumps(_decoder(argv[1:])))
        return 0
    fmt, model, threads, npz, runs = argv
    import numpy as np

    from slimport.validation.runners import get_runner, load_runner_class

    feeds = dict(np.load(npz))
    baseline = _status_mb("VmRSS")
    if ":" in fmt:
        runner = load_runner_class(fmt)(Path(model), int(threads))
    else:
        runner = get_runner(fmt, Path(model), int(threads))
    for _ in range(int(runs)):
        runner.run(feeds)
    peak = _status_mb("VmHWM")
    print(json.dumps({"peak_rss_mb": peak, "baseline_rss_mb": baseline, "model_rss_mb": peak - baseline}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
