from __future__ import annotations

import re

import pytest

from anyconc.__main__ import main


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_and_shows_parallelism(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--backend", backend]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"anyconc demo on {backend}:")
    fan_out = re.search(r"parallel fan-out .*\((\d+\.\d+) s\)", out)
    assert fan_out is not None
    # the three sources take 0.3 + 0.2 + 0.1 s one after another; in parallel ~0.3 s
    assert float(fan_out.group(1)) < 0.55
    assert "blocking_work(12) = 144" in out
    assert "winner: ['primary result']" in out
    assert "ran 1 computation" in out
    assert "returned 'posts data'" in out


def test_demo_rejects_unknown_backend() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--backend", "curio"])
    assert info.value.code == 2
