"""The ``btob`` command line (``btob demo``, ``sim``, ``sweep``, ``check``, ``faults``,
``keygen``, ``node``, ``bench``)."""
