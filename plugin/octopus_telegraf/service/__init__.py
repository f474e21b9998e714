"""The service around the core and the extras: the command line, the wiring of one process, the execd
loop (stdin, signals, EOF), one gather in a fixed order with a budget (collector.py), and the
comparison report.

May import everything below it; nothing imports it."""
