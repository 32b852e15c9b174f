"""`python tests/run_fixture_pipeline.py [forge.submit args]`: forge.submit with the fixture phases."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ray import cloudpickle  # noqa: E402

import tests.fixture_phases as fixture_phases  # noqa: E402
from forge.submit import main  # noqa: E402

cloudpickle.register_pickle_by_value(fixture_phases)  # workers cannot import tests/

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
