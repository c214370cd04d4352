"""Watch an ``llmaug augment`` run from inside: where its memory peaks, and which children it starts.

Python imports a ``sitecustomize`` module at start-up from the path, so this watches a run started
any way (the benchmark's child too) without changing llmaug:

    LLMAUG_WATCH=watch.log PYTHONPATH=benchmarks/watch python benchmarks/bench_scale.py --sizes 1M

Every 20 ms a thread reads the process's ``/proc/self/status``; at each new high of resident memory
above ``LLMAUG_WATCH_MB`` (default 1700) it logs the main thread's stack. Every child process found
(each second), every ``subprocess.Popen`` and ``os.fork`` is logged with the memory at that moment,
and at exit the process's own peak (``VmHWM``) beside ``ru_maxrss`` of itself and its children:
a child's ``ru_maxrss`` starts at its parent's peak, so a benchmark's number can be its parent's.
Other processes (the benchmark itself, a generator) are not watched.
"""

import os

_command = open("/proc/self/cmdline", "rb").read().split(b"\0")
if b"augment" in _command and os.environ.get("LLMAUG_WATCH"):
    import atexit
    import resource
    import subprocess
    import sys
    import threading
    import time
    import traceback

    _log = open(os.environ["LLMAUG_WATCH"], "a", buffering=1)
    _above_mb = int(os.environ.get("LLMAUG_WATCH_MB", "1700"))
    _main = threading.main_thread().ident

    def _status() -> dict:
        wanted = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")
        return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith(wanted)}

    def _children() -> set:
        found = set()
        for task in os.listdir("/proc/self/task"):
            try:
                found |= set(open(f"/proc/self/task/{task}/children").read().split())
            except OSError:
                pass
        return found

    def _watch() -> None:
        high, seen, looked = 0, set(), 0.0
        while True:
            status, now = _status(), time.time()
            if status["VmRSS"] > max(high + 20, _above_mb):
                high = status["VmRSS"]
                _log.write(f"\n{now:.2f} HIGH {status}\n" + "".join(traceback.format_stack(sys._current_frames().get(_main))[-12:]))
            if now - looked > 1:
                looked = now
                for child in _children() - seen:
                    seen.add(child)
                    try:
                        command = open(f"/proc/{child}/cmdline", "rb").read().replace(b"\0", b" ")[:300]
                    except OSError:
                        command = b"?"
                    _log.write(f"{now:.2f} CHILD {child} {command!r}\n")
            time.sleep(0.02)

    threading.Thread(target=_watch, daemon=True, name="llmaug-watch").start()

    _popen_init = subprocess.Popen.__init__

    def _logged_popen(self, *args, **kwargs):
        _log.write(f"{time.time():.2f} POPEN {_status()} {args[0] if args else kwargs.get('args')!r}\n"
                   + "".join(traceback.format_stack()[-8:]))
        return _popen_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = _logged_popen
    _fork = os.fork

    def _logged_fork():
        _log.write(f"{time.time():.2f} FORK {_status()}\n" + "".join(traceback.format_stack()[-8:]))
        return _fork()

    os.fork = _logged_fork

    @atexit.register
    def _at_exit() -> None:
        _log.write(f"{time.time():.2f} ATEXIT {_status()} self {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} "
                   f"children {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024}\n")
