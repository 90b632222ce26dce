"""The later-veto stages, one module per stage (each defines ``STAGE``, a
:class:`vasco.filters.veto_stage.VetoStage`); their order is that of
:data:`vasco.filters.registry.STAGES`.  The vetoes themselves are the pure
functions of :mod:`vasco.filters.vetoes`."""
