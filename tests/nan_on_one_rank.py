"""Launched by tests/integration/test_multiprocess.py: runs recipes/train.py with the token-target loss turned NaN
on one rank only (T2T_TEST_NAN_RANK) from its T2T_TEST_NAN_AT-th training batch on, writing the time of
the first NaN to T2T_TEST_NAN_MARK. A test-only wrapper: nothing in text2token reads these variables."""

import dataclasses
import os
import runpy
import sys
import time
from pathlib import Path

from text2token.losses import TokenTargetLoss

ROOT = Path(__file__).resolve().parents[1]
_forward, _calls = TokenTargetLoss.forward, []


def forward(self, features):
    result = _forward(self, features)
    if self.model.training and int(os.environ.get("RANK", "0")) == int(os.environ["T2T_TEST_NAN_RANK"]):
        _calls.append(1)
        if len(_calls) >= int(os.environ["T2T_TEST_NAN_AT"]):
            if len(_calls) == int(os.environ["T2T_TEST_NAN_AT"]):
                Path(os.environ["T2T_TEST_NAN_MARK"]).write_text(str(time.time()))
            return dataclasses.replace(result, loss=result.loss * float("nan"))
    return result


TokenTargetLoss.forward = forward
sys.argv = [str(ROOT / "recipes" / "train.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
