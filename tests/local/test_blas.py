"""numpy's BLAS on one thread while an engine runs, and as it was once none does."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from speechmatics_modes.local._blas import one_blas_thread


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_blas_keeps_one_thread_until_the_last_holder_lets_go() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}, "numpy's BLAS is not visible to threadpoolctl"
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        assert blas_threads() == {1}
        second.__enter__()
        first.__exit__(None, None, None)  # overlapping, not nested: the first to start stops
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == {2}


def test_blas_limit_is_let_go_when_the_block_fails() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        try:
            with one_blas_thread():
                raise LookupError
        except LookupError:
            pass
        assert blas_threads() == {2}
