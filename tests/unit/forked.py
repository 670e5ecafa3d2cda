"""Run test workers in forked processes, as gunicorn forks its workers from the master."""
import multiprocessing


def run_forked(target, args_of, processes: int, timeout: float = 120) -> tuple:
    """Start `processes` forked workers, each `target(*args_of(i), barrier, results)`, and
    collect what each put on `results` as (index, outcome). Returns ({index: outcome}, exit
    codes); workers still alive at the end are killed, so a hung one fails the test instead of
    outliving it."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args_of(i), barrier, results), daemon=True)
               for i in range(processes)]
    try:
        for worker in workers:
            worker.start()
        outcomes = dict(results.get(timeout=timeout) for _ in workers)
        for worker in workers:
            worker.join(timeout=30)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
    return outcomes, [worker.exitcode for worker in workers]
