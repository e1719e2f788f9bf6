"""The simulator and the KVM backend on the same experiment: predictions for measured points
(``migration``, ``cpu``, ``memory``), error tables (``errors``), fitting the models' free
parameters (``calibrate``), and the steps the command line runs (``session``).

The public part, for notebooks and scripts that check vsim's models against measurements:

>>> from vsim.validate import default_calibration, read_measured, validate
>>> measured = read_measured(Path("results/validation/cpu"), "cpu")
>>> validate("cpu", measured, default_calibration(), model="timeslice").errors
"""

from vsim.validate.session import Validation, default_calibration, read_measured, validate

__all__ = ["Validation", "default_calibration", "read_measured", "validate"]
