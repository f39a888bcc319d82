"""The Trio runtime: a member driven for real (:func:`btob.open_node`), its durable store and
its transports (TCP between processes, memory within one). Import public names from
:mod:`btob`; the modules here are private."""
