"""Test modules of training/'s subfolders that share phantom writers and configs across them.

The tests import each other by module name (``from test_pitvis_datamodule import
write_dataset``): the train command's and the DDP tests build their data with the data modules'
writers, the distributed tests reuse the Lightning modules' tiny configs. pytest puts only a
test file's own folder on ``sys.path``, so every folder of tests/training is put there before
any of them is collected, whichever file or folder a run starts from.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _folder in (_HERE, *(_HERE / name for name in ("data", "distributed", "models", "modules"))):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
