"""The simulator and the KVM backend on the same experiment: predictions for measured points
(``migration``, ``cpu``, ``memory``), error tables (``errors``), fitting the models' free
parameters (``calibrate``), and the steps the command line runs (``session``).
"""
