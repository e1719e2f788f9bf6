"""The real execution backend: tiny Linux guests under QEMU (KVM where it boots, TCG otherwise)
running the experiments vsim's models predict.

``image`` builds the guest; ``qemu`` and ``qmp`` start and drive guests in a workspace that cleans
up after itself; ``cpu``, ``migration``, ``memory`` and ``overcommit`` are the experiments, each
producing rows of a measured table; ``probe`` says what the host offers; ``hostcpu`` and
``hostmem`` are the cgroup and swap controls the experiments need.
"""
