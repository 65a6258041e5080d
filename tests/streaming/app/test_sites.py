"""The ports' own limits (streaming/app/sites.py): the open-files limit a service gets by
default is raised, and the connections a port holds leave files free for capture."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from streaming.app.sites import (
    CONTROL_CONNECTIONS,
    GATEWAY_CONNECTIONS,
    GATEWAY_FILES_FREE,
    connection_limit,
    control_connections,
    raise_open_files_limit,
)


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """This process's soft open-files limit at 1024 (Debian's default), restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard open-files limit here is {hard}: nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_open_files_limit_is_raised_to_the_hard_one(low_soft_limit: int) -> None:
    # 1,500 slow-header connections took all 1,024 files of obrady serve, and capture could
    # not start ffmpeg again: 57 s of a session lost (bench/hostile_load.py).
    assert connection_limit(GATEWAY_CONNECTIONS, GATEWAY_FILES_FREE).most == 1024 - 256
    assert control_connections().most == 512
    soft = raise_open_files_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 1024
    if low_soft_limit != resource.RLIM_INFINITY:
        assert soft == low_soft_limit
    assert control_connections().most == CONTROL_CONNECTIONS
    assert connection_limit(GATEWAY_CONNECTIONS, GATEWAY_FILES_FREE).most == min(
        GATEWAY_CONNECTIONS, soft - GATEWAY_FILES_FREE
    )
