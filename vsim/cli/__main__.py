"""``python -m vsim.cli``: the vsim command."""

from vsim.cli import main

main()
