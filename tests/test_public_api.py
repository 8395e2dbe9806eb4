"""``import hwnas``: the public names resolve, and importing it (or reaching ``hwnas.Lab``) stays light."""

import hwnas
from tests.conftest import modules_loaded_by

HEAVY = ("torch", "torch_geometric", "pymoo", "ortools", "onnx", "pandas", "sklearn", "matplotlib")


def test_every_public_name_resolves() -> None:
    for name in hwnas.__all__:
        assert getattr(hwnas, name) is not None, name
    assert issubclass(hwnas.UserError, hwnas.HwnasError) and issubclass(hwnas.DeviceError, hwnas.HwnasError)
    assert issubclass(hwnas.SettingError, hwnas.UserError) and issubclass(hwnas.UserError, ValueError)
    assert hwnas.predictors.get_predictor("ridge").kind == "ridge"  # the design's packages, under hwnas


def test_import_hwnas_loads_nothing_of_the_controller() -> None:
    assert modules_loaded_by("import hwnas", ("hwnas.controller", "hwnas.device_agent", "grpc", "numpy",
                                              "sqlalchemy", *HEAVY)) == []
    # the class itself: the fleet, the store and their libraries load when a lab first needs them
    assert modules_loaded_by("import hwnas; hwnas.Lab", ("hwnas.controller.fleet", "hwnas.controller.store",
                                                         "grpc", "numpy", "sqlalchemy", *HEAVY)) == []


def test_a_lab_is_made_without_the_ml_stack(tmp_path) -> None:
    code = f"import hwnas\nlab = hwnas.Lab({str(tmp_path / 'lab.db')!r}, agents={{'cpu': '127.0.0.1:1'}})\nlab.close()"
    assert modules_loaded_by(code, HEAVY) == []
