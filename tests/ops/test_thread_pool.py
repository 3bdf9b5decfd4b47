"""cargohold.thread_pool: results and errors come back, no more than max_workers threads run
and the rest wait their turn, light load stays on the threads that went idle last even after
a burst grew the pool, and shutdown cancels what waits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import CancelledError, Future, wait

import pytest

from cargohold.thread_pool import LifoThreadPool


def _burst(pool, size: int) -> None:
    """Run `size` items at once, each holding its thread until all have started."""
    barrier = threading.Barrier(size, timeout=10)
    futures = [pool.submit(barrier.wait) for _ in range(size)]
    wait(futures, timeout=10)
    assert all(future.exception() is None for future in futures)


def _share_of_two_busiest(pool, count: int) -> float:
    """Of `count` items submitted one after another, the share the two threads that ran the
    most of them ran."""
    threads = Counter(pool.submit(threading.get_ident).result(timeout=10) for _ in range(count))
    return sum(runs for _, runs in threads.most_common(2)) / count


def test_results_and_errors_come_back() -> None:
    pool = LifoThreadPool(max_workers=4, thread_name_prefix="test")
    try:
        assert pool.submit(pow, 2, 10).result(timeout=10) == 1024
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=10)
        assert pool.submit(sorted, [3, 1, 2], reverse=True).result(timeout=10) == [3, 2, 1]
    finally:
        pool.shutdown()


def test_light_load_after_a_burst_stays_on_one_thread() -> None:
    pool = LifoThreadPool(max_workers=16, thread_name_prefix="test")
    try:
        _burst(pool, 16)
        assert pool.thread_count == 16
        # The thread that ran an item may still be finishing it when the next one comes:
        # that item goes to the thread that went idle before it.
        assert _share_of_two_busiest(pool, 200) >= 0.95
    finally:
        pool.shutdown()


def test_at_most_max_workers_run_and_the_rest_wait_their_turn() -> None:
    pool = LifoThreadPool(max_workers=3, thread_name_prefix="test")
    running = 0
    peak = 0
    lock = threading.Lock()

    def task(number: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return number

    try:
        futures = [pool.submit(task, number) for number in range(20)]
        assert [future.result(timeout=10) for future in futures] == list(range(20))
        assert peak == 3
        assert pool.thread_count == 3
    finally:
        pool.shutdown()


def test_shutdown_cancels_waiting_items_and_refuses_new_ones() -> None:
    pool = LifoThreadPool(max_workers=1, thread_name_prefix="test")
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(10)
        return "done"

    holding = pool.submit(hold)
    assert started.wait(10)
    waiting: Future = pool.submit(str, "never")
    pool.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(CancelledError):
        waiting.result(timeout=10)
    with pytest.raises(RuntimeError):
        pool.submit(str, "late")
    release.set()
    assert holding.result(timeout=10) == "done"


def test_shutdown_without_cancelling_runs_the_backlog_and_ends_the_threads() -> None:
    pool = LifoThreadPool(max_workers=2, thread_name_prefix="draining")
    futures = [pool.submit(time.sleep, 0.01) for _ in range(10)]
    pool.shutdown(wait=True)
    assert all(future.done() and future.exception() is None for future in futures)
    names = {thread.name for thread in threading.enumerate()}
    assert not any(name.startswith("draining_") for name in names)


def test_serves_as_the_default_executor_of_an_asyncio_loop() -> None:
    pool = LifoThreadPool(max_workers=4, thread_name_prefix="loop-default")

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        calls = [loop.run_in_executor(None, pow, 3, power) for power in range(8)]
        return await asyncio.gather(*calls)

    # On a thread of its own: the suite's thread may have an event loop set already.
    # asyncio.run shuts the default executor down when the loop ends.
    results: list[list[int]] = []
    runner = threading.Thread(target=lambda: results.append(asyncio.run(main())))
    runner.start()
    runner.join(30)
    assert results == [[3**power for power in range(8)]]
    with pytest.raises(RuntimeError):
        pool.submit(str, "after the loop")
