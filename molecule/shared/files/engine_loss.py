"""Run one point on an engine of a given host and report, as JSON, what the client sees.

`hog HOST MB`: the point allocates and touches MB MiB (past the engine's MemoryMax where the
memory controller enforces it, the kernel kills it). `kill HOST`: the point SIGKILLs its own
engine process while it runs, as the OOM killer does. Run as the cluster account on the
controller host: `python engine_loss.py PROFILE hog|kill HOST [MB]`.
"""

from __future__ import annotations

import json
import socket
import sys
import time

import ipyparallel as ipp


def where() -> tuple[str, int]:
    import os
    import socket

    return socket.gethostname(), os.getpid()


def hog(mb: int) -> int:
    block = bytearray(mb * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block) // (1024 * 1024)


def die() -> None:
    import os
    import signal
    import time

    time.sleep(1)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    profile, mode, host = sys.argv[1:4]
    client = ipp.Client(profile=profile)
    placed = client[:].apply_async(where).get(timeout=60)
    engines = {engine: found for engine, found in zip(client.ids, placed, strict=True)}
    target = min(engine for engine, (name, _) in engines.items() if name == host)
    start = time.monotonic()
    result = client[target].apply_async(hog, int(sys.argv[4])) if mode == "hog" else client[target].apply_async(die)
    report: dict[str, object] = {"engine": target, "pid": engines[target][1], "engines": len(engines)}
    try:
        report["result"] = result.get(timeout=300)
    except Exception as error:  # what the client sees is the point of this script
        report["error"] = f"{type(error).__module__}.{type(error).__name__}: {error}"
    report["seconds"] = round(time.monotonic() - start, 1)
    report["client_host"] = socket.gethostname()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
