"""`derive sweep`: one command over a grid of options, as independent tasks on the executor
(:mod:`derive.executor`), each task's JSON kept in a table that survives a killed run.

* :mod:`.spec`: the TOML sweep file, read as data and checked against the command's options;
  the tasks, their keys and seeds;
* :mod:`.command`: one task, the command's handler run in-process with its JSON captured;
* :mod:`.store`: the task files, ``results.parquet``, resuming;
* :mod:`.plot`: ``derive sweep plot``.
"""
